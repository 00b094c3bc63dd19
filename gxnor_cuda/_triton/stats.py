"""Triton accumulator_stats: a ternary layer's integer accumulators -> int16 copy and exact per-channel
sums (BatchNorm's batch statistics in training), one pass.

x is viewed as R = N S rows (positions) x C channels; element (r, c) lives at r C + c channels-last
(CL) or at (r // S) C S + c S + r % S contiguous. 1-D grid over (BL rows) x (BC channels) tiles; each
program converts its tile, counts the values that are not integers in int16's range, and adds its
int64 column sums into the (2, C) output with atomics (integer adds: the same result in any order).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._checks import check_accumulator_stats
from .._ops import stats_outputs
from .launch import cdiv, launch

BL, BC = 64, 32


@triton.jit
def _stats_kernel(x_ptr, q_ptr, sums_ptr, bad_ptr, R, C, S, CL: tl.constexpr, BL: tl.constexpr,
                  BC: tl.constexpr):
    tr = tl.cdiv(R, BL)
    pid = tl.program_id(0).to(tl.int64)
    r = (pid % tr) * BL + tl.arange(0, BL).to(tl.int64)
    c = (pid // tr) * BC + tl.arange(0, BC).to(tl.int64)
    if CL:
        off = r[:, None] * C + c[None, :]
    else:
        off = (r // S * C * S + r % S)[:, None] + c[None, :] * S
    m = (r[:, None] < R) & (c[None, :] < C)
    v = tl.load(x_ptr + off, mask=m, other=0.0)
    inside = (v >= -32768.0) & (v <= 32767.0)
    vs = tl.where(inside, v, 0.0)
    i = vs.to(tl.int32)  # truncation; the range test keeps it defined
    bad = m & ((~inside) | (i.to(tl.float32) != vs))
    tl.store(q_ptr + off, i.to(tl.int16), mask=m)
    i = i.to(tl.int64)
    tl.atomic_add(sums_ptr + c, tl.sum(i, axis=0), mask=c < C)
    tl.atomic_add(sums_ptr + C + c, tl.sum(i * i, axis=0), mask=c < C)
    tl.atomic_add(bad_ptr, tl.sum(bad.to(tl.int64)))


def accumulator_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton twin of reference.accumulator_stats (one device sync: the bad-value count)."""
    check_accumulator_stats(x)
    q, sums = stats_outputs(x)
    sums.zero_()
    if x.numel() == 0:
        return q, sums
    cl = x.dim() == 2 or q.stride(1) == 1
    x = x.contiguous(memory_format=torch.channels_last) if cl and x.dim() == 4 else x.contiguous()
    S = x.shape[2] * x.shape[3] if x.dim() == 4 else 1
    R, C = x.shape[0] * S, x.shape[1]
    bad = torch.zeros(1, dtype=torch.int64, device=x.device)
    launch("accumulator_stats", cdiv(R, BL) * cdiv(C, BC), x, q, sums, bad, R, C, S, CL=cl, BL=BL, BC=BC)
    if int(bad.item()):
        from ..reference import accumulator_stats as ref

        ref(x)  # raises with the first bad value
        raise RuntimeError("accumulator_stats: the Triton kernel counted values the reference accepts")
    return q, sums
