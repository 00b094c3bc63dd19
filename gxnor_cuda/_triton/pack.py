"""Triton pack / unpack / canonical check (format v1). Runs on a GPU or, with TRITON_INTERPRET=1,
on the CPU (how the tests run it here).

pack: 1-D grid over plane words, BLOCK_W words per program; each loads a (BLOCK_W, 32) tile of
elements, builds gate/sign bits and sums them shifted into uint32 words. unpack: 1-D grid over
output elements, BLOCK elements per program. validate: 1-D grid over plane words. No shared memory.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import format as fmt
from .._checks import check_out_dtype, check_pack_input, check_packed, check_threshold
from .launch import cdiv, launch


@triton.jit
def _pack_kernel(x_ptr, out_ptr, bad_ptr, n_words, K, W, thr, MODE: tl.constexpr, BLOCK_W: tl.constexpr):
    t = tl.program_id(0).to(tl.int64) * BLOCK_W + tl.arange(0, BLOCK_W).to(tl.int64)
    row = t // W
    w = t % W
    j = tl.arange(0, 32)
    k = w[:, None] * 32 + j[None, :]
    m = (t[:, None] < n_words) & (k < K)
    v = tl.load(x_ptr + row[:, None] * K + k, mask=m, other=0).to(tl.float32)
    if MODE == 1:
        neg = v <= -thr
        nz = neg | (v >= thr)
        invalid = v != v  # never counted in threshold mode
        invalid = invalid & (v == v)
    else:
        nz = v != 0.0
        neg = v < 0.0
        invalid = ~((v == 0.0) | (v == 1.0) | (v == -1.0)) & m
    sh = j.to(tl.uint32)[None, :]
    g = tl.sum(nz.to(tl.uint32) << sh, axis=1).to(tl.int32, bitcast=True)
    s = tl.sum(neg.to(tl.uint32) << sh, axis=1).to(tl.int32, bitcast=True)
    ok = t < n_words
    base = row * 2 * W + w
    tl.store(out_ptr + base, g, mask=ok)
    tl.store(out_ptr + base + W, s, mask=ok)
    if MODE == 0:
        tl.atomic_add(bad_ptr, tl.sum(invalid.to(tl.int64)))


@triton.jit
def _unpack_kernel(p_ptr, out_ptr, n, K, W, BLOCK: tl.constexpr):
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    m = i < n
    row = i // K
    k = i % K
    base = row * 2 * W + k // 32
    g = tl.load(p_ptr + base, mask=m, other=0)
    s = tl.load(p_ptr + base + W, mask=m, other=0)
    bit = (k % 32).to(tl.int32)
    gb = (g >> bit) & 1
    sb = (s >> bit) & 1
    v = gb * (1 - 2 * sb)
    tl.store(out_ptr + i, v.to(out_ptr.dtype.element_ty), mask=m)


@triton.jit
def _noncanonical_kernel(p_ptr, count_ptr, n_words, K, W, BLOCK: tl.constexpr):
    t = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    ok = t < n_words
    row = t // W
    w = t % W
    g = tl.load(p_ptr + row * 2 * W + w, mask=ok, other=0).to(tl.int64) & 0xFFFFFFFF
    s = tl.load(p_ptr + row * 2 * W + W + w, mask=ok, other=0).to(tl.int64) & 0xFFFFFFFF
    nbits = tl.minimum(tl.maximum(K - w * 32, 0), 32)
    vm = (tl.full(nbits.shape, 1, tl.int64) << nbits) - 1
    bad = (((s & ~g) | (g & ~vm) | (s & ~vm)) != 0) & ok
    tl.atomic_add(count_ptr, tl.sum(bad.to(tl.int64)))


_BLOCK_W = 32
_BLOCK = 1024


def _pack(x: torch.Tensor, mode: int, thr: float) -> torch.Tensor:
    if mode == 0 and x.dtype == torch.float64 and x.numel():  # the kernel reads float32: 1 + 2^-40 would pass
        n64 = int(((x != 0) & (x != 1) & (x != -1)).sum())
        torch._check(n64 == 0, lambda: f"x: expected values in {{-1, 0, +1}} (or pass threshold=), got {n64} "
                     "float64 element(s) outside that set")
    xk = x if x.dtype in (torch.float32, torch.int8) else x.to(torch.float32)
    xk = xk.contiguous()
    K = x.shape[-1]
    W = fmt.packed_words(K)
    out = torch.empty(fmt.packed_shape(tuple(x.shape)), dtype=torch.int32, device=x.device)
    bad = torch.zeros((), dtype=torch.int64, device=x.device)
    n_words = xk.numel() // K * W
    if n_words:
        launch("pack", cdiv(n_words, _BLOCK_W), xk, out, bad, n_words, K, W, float(thr), MODE=mode, BLOCK_W=_BLOCK_W)
    if mode == 0:
        nbad = int(bad)
        torch._check(
            nbad == 0,
            lambda: f"x: expected values in {{-1, 0, +1}} (or pass threshold=), got {nbad} "
            "element(s) outside that set",
        )
    return out


def pack_ternary(x: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
    """Triton twin of reference.pack_ternary. x: (..., K) -> (..., 2, W) int32."""
    check_pack_input(x, "x", allow_any_values=threshold is not None)
    if threshold is not None:
        check_threshold(threshold)
        return _pack(x, 1, threshold)
    return _pack(x, 0, 0.0)


def quantize_pack(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """Triton twin of reference.quantize_pack. x: (..., K) float -> (..., 2, W) int32."""
    check_pack_input(x, "x", allow_any_values=True)
    check_threshold(threshold)
    return _pack(x, 1, threshold)


def unpack_ternary(packed: torch.Tensor, K: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Triton twin of reference.unpack_ternary. packed: (..., 2, W) int32 -> (..., K) dtype."""
    check_packed(packed, "packed", K)
    dtype = torch.int8 if dtype is None else dtype
    check_out_dtype(dtype)
    p = packed.contiguous()
    kdt = torch.int8 if dtype == torch.int8 else torch.float32
    out = torch.empty((*p.shape[:-2], K), dtype=kdt, device=p.device)
    n = out.numel()
    if n:
        launch("unpack", cdiv(n, _BLOCK), p, out, n, K, p.shape[-1], BLOCK=_BLOCK)
    return out.to(dtype)


def count_noncanonical(packed: torch.Tensor, K: int) -> torch.Tensor:
    """Triton twin of reference.count_noncanonical: () int64 count of non-canonical words."""
    check_packed(packed, "packed", K)
    p = packed.contiguous()
    W = p.shape[-1]
    count = torch.zeros((), dtype=torch.int64, device=p.device)
    n_words = p.numel() // 2
    if n_words:
        launch("noncanonical", cdiv(n_words, _BLOCK), p, count, n_words, K, W, BLOCK=_BLOCK)
    return count
