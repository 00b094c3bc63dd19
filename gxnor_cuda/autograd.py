"""Autograd for ternary-weight matrix products (used by the modules).

The weight is a DiscreteWeight (gxnor_cuda.weight): the kernels read its storage ``w.packed``
(packed int32, or int8 states), and its float gradient (O, K) is returned to autograd, which
accumulates it in ``w.grad`` like any weight's.

- float input (first layer):  y = x @ W.T;   saves x (float) and the packed W.
- ternary input (fused phi_r): y = q(h) @ W.T with q = phi_r; saves the packed activations
  (2 bits/value) and a packed window mask (r - a <= |h| <= r + a), never the float h.
"""

from __future__ import annotations

import torch

from . import functional as F


def _dense(w: torch.Tensor, K: int, n_states: int, dtype=torch.float32) -> torch.Tensor:
    if n_states == 1:
        return F.unpack_ternary(w, K, dtype)
    scale = 1.0 if n_states == 0 else 2.0 ** (n_states - 1)
    return w.to(dtype) / scale


def ternary_input_matmul(h: torch.Tensor, w: torch.Tensor, K: int, r: float) -> tuple[torch.Tensor, torch.Tensor]:
    """phi_r(h) packed in one pass, then xnor_gemm to float32. h: (M, K) float, w: (N, 2, W).
    returns: y (M, N) float32, and the packed activations (M, 2, W) int32."""
    hq = F.quantize_pack(h.contiguous(), r)
    return F.xnor_gemm(hq, w, K, torch.ones(w.shape[0], device=h.device), None), hq


class TernaryWeightMatmul(torch.autograd.Function):
    """y (M, N) = x (M, K) @ W_dense.T for real-valued x."""

    @staticmethod
    def forward(ctx, x, weight, K, n_states):
        w = weight.packed
        ctx.save_for_backward(x, w)
        ctx.K, ctx.n_states = K, n_states
        if n_states == 1:
            return F.ternary_matmul(x.contiguous(), w, K)
        return x @ _dense(w, K, n_states, x.dtype).T

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        gy = gy.contiguous()
        if ctx.n_states == 1:
            gx = F.ternary_matmul(gy, w, ctx.K, layout="nn")
        else:
            gx = gy @ _dense(w, ctx.K, ctx.n_states, gy.dtype)
        return gx, gy.T @ x if ctx.needs_input_grad[1] else None, None, None


class TernaryInputMatmul(torch.autograd.Function):
    """y (M, N) = phi_r(h) (M, K) @ W_dense.T with the rectangular surrogate window of half-width a."""

    @staticmethod
    def forward(ctx, h, weight, K, r, a):
        w = weight.packed
        y, hq = ternary_input_matmul(h, w, K, r)
        ah = h.abs()
        window = ((ah >= r - a) & (ah <= r + a)).to(torch.int8)
        ctx.save_for_backward(hq, F.pack_ternary(window), w)
        ctx.K, ctx.a = K, a
        return y

    @staticmethod
    def backward(ctx, gy):
        hq, win, w = ctx.saved_tensors
        gy = gy.contiguous()
        gx = F.ternary_matmul(gy, w, ctx.K, layout="nn")
        gx = gx.mul_(F.unpack_ternary(win, ctx.K, torch.float32))  # in place: gx is this call's own
        if ctx.a != 0.5:
            gx = gx.mul_(1.0 / (2 * ctx.a))
        gw = F.ternary_matmul(gy.T.contiguous(), hq, ctx.K, layout="nn") if ctx.needs_input_grad[1] else None
        return gx, gw, None, None, None
