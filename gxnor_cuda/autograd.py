"""Autograd for ternary-weight matrix products (used by the modules).

The weight is a DiscreteWeight (gxnor_cuda.weight): the kernels read its storage ``w.packed``
(packed int32, or int8 states), and its float gradient (O, K) is returned to autograd, which
accumulates it in ``w.grad`` like any weight's.

- float input (first layer):  y = x @ W.T;   saves x (float) and the packed W.
- ternary input (fused phi_r): y = q(h) @ W.T with q = phi_r; saves the packed activations
  (2 bits/value) and a packed window mask (r - a <= |h| <= r + a), never the float h.

``lowp``: the autocast dtype the layer was called under (None without autocast). The ternary x
ternary products are exact and stay integer; the float x ternary ones (a float-input layer's
forward, every backward product) run in lowp, as autocast runs nn.Linear, which on a GPU puts
them on the bf16 tensor cores (ternary_matmul's bf16 kernel reads the 2-bit operand directly).
Results come back as float32.
"""

from __future__ import annotations

import struct

import torch

from . import functional as F
from .weight import decode


def _next_float32(x: float) -> float:
    """The float32 just above x > 0 rounded to float32 (host arithmetic: no tensor, so fake and traced
    calls need no data)."""
    bits = struct.unpack("<I", struct.pack("<f", x))[0]
    return struct.unpack("<f", struct.pack("<I", bits + 1))[0]


def window_mask(h: torch.Tensor, r: float, a: float) -> torch.Tensor:
    """The rectangular surrogate window r - a <= |h| <= r + a (float32 comparisons), packed along h's
    last dim as gate bits: from two threshold packs (|h| >= r - a, and |h| > r + a as |h| >= the next
    float32 above r + a) and bitwise ops on the packed words, not four passes over float h. With
    r - a <= 0 the lower bound holds for every value but NaN."""
    hi = _next_float32(r + a)
    gate = ~F.quantize_pack(h, hi).select(-2, 0)
    if r - a > 0:
        gate &= F.quantize_pack(h, r - a).select(-2, 0)
    else:
        gate &= F.pack_ternary((~torch.isnan(h)).to(torch.int8)).select(-2, 0)  # clears the padding past K too
    return torch.stack((gate, torch.zeros_like(gate)), dim=-2)


def lowp_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The autocast dtype on x's device, or None (read before a layer disables autocast)."""
    dev = x.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else None


def matmul_lowp(x: torch.Tensor, w: torch.Tensor, K: int, layout: str, lowp) -> torch.Tensor:
    """ternary_matmul in lowp (when set), float32 out."""
    if lowp is None:
        return F.ternary_matmul(x.contiguous(), w, K, layout)
    return F.ternary_matmul(x.to(lowp).contiguous(), w, K, layout).float()


def ternary_input_matmul(h: torch.Tensor, w: torch.Tensor, K: int, r: float) -> tuple[torch.Tensor, torch.Tensor]:
    """phi_r(h) packed in one pass, then xnor_gemm to float32. h: (M, K) float, w: (N, 2, W).
    returns: y (M, N) float32, and the packed activations (M, 2, W) int32."""
    hq = F.quantize_pack(h.contiguous(), r)
    return F.xnor_gemm(hq, w, K, torch.ones(w.shape[0], device=h.device), None), hq


class TernaryWeightMatmul(torch.autograd.Function):
    """y (M, N) = x (M, K) @ W_dense.T for real-valued x."""

    @staticmethod
    def forward(ctx, x, weight, K, n_states, lowp=None):
        w = weight.packed
        ctx.save_for_backward(x, w)
        ctx.K, ctx.n_states, ctx.lowp = K, n_states, lowp
        if n_states == 1:
            return matmul_lowp(x, w, K, "nt", lowp)
        dt = lowp or x.dtype
        return (x.to(dt) @ decode(w, K, n_states, dt).T).to(x.dtype)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        lowp = ctx.lowp
        if ctx.n_states == 1:
            gx = matmul_lowp(gy, w, ctx.K, "nn", lowp)
        else:
            dt = lowp or gy.dtype
            gx = (gy.to(dt) @ decode(w, ctx.K, ctx.n_states, dt)).to(gy.dtype)
        gw = None
        if ctx.needs_input_grad[1]:
            gw = gy.T @ x if lowp is None else (gy.T.to(lowp) @ x.to(lowp)).float()
        return gx, gw, None, None, None


class TernaryInputMatmul(torch.autograd.Function):
    """y (M, N) = phi_r(h) (M, K) @ W_dense.T with the rectangular surrogate window of half-width a."""

    @staticmethod
    def forward(ctx, h, weight, K, r, a, lowp=None):
        w = weight.packed
        y, hq = ternary_input_matmul(h, w, K, r)
        ctx.save_for_backward(hq, window_mask(h, r, a), w)
        ctx.K, ctx.a, ctx.lowp = K, a, lowp
        return y

    @staticmethod
    def backward(ctx, gy):
        hq, win, w = ctx.saved_tensors
        gx = matmul_lowp(gy, w, ctx.K, "nn", ctx.lowp)
        gx = gx.mul_(F.unpack_ternary(win, ctx.K, torch.int8))  # in place (gx is this call's own), 1-byte mask
        if ctx.a != 0.5:
            gx = gx.mul_(1.0 / (2 * ctx.a))
        gw = matmul_lowp(gy.T, hq, ctx.K, "nn", ctx.lowp) if ctx.needs_input_grad[1] else None  # dW = dY^T X
        return gx, gw, None, None, None, None
