"""Ternary x ternary conv2d on int8 tensor cores: the implicit GEMM of conv.py with the operands in
the tc16 layout of tc.py (per pixel and group, and per output channel and tap, 8 ceil(Cg / 128)
words), so the hot loop decodes for a shift and an AND per four values and runs ``tl.dot``.

  x (N, H, W, G, 2, Wg) -> (N H W G, T) tc16 ┐
                                               ├ tile (BM output positions, BN output channels of a group):
  w (O, kh, kw, 2, Wg)  -> (O kh kw, T) tc16   ┘   for each tap, for each BT-word chunk: tl.dot
A tap in the zero padding reads a zero row appended to the converted input (no masks in the loop).
Output (N, Ho, Wo, O) memory, returned as an (N, O, Ho, Wo) view, as xnor_conv2d on every backend.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._conv_checks import check_conv, conv_out_empty
from .conv import _conv_tile, _tap
from .gemm import _store_c
from .launch import cdiv, launch
from .tc import _decode, tc_operand, to_tc_layout

MAX_TAPS_K = 2**19 - 1  # kh * kw * C / groups: 4096 times it must fit the int32 accumulator


@triton.jit
def _tc_conv_acc(x_ptr, w_ptr, rm, rn, M, b, oy, ox, gi, OG, H, Wd, G, KH, KW, SH, SW, PH, PW, DH, DW, T, ZERO_ROW,
                 BM: tl.constexpr, BN: tl.constexpr, BT: tl.constexpr, HW_ASM: tl.constexpr):
    """(BM, BN) int32 accumulators, 4096 times the conv's, of the output positions (b, oy, ox) of rows
    rm (live while rm < M) and group gi's output channels rn: every tap, every BT-word chunk."""
    rt = tl.arange(0, BT)
    w_rows = (gi * OG + tl.minimum(rn, OG - 1)).to(tl.int64) * KH * KW  # columns past OG read the last one
    acc = tl.zeros((BM, BN), dtype=tl.int32)
    for ky in range(KH):
        for kx in range(KW):
            pixel, valid = _tap(rm, M, b, oy, ox, ky, kx, H, Wd, SH, SW, PH, PW, DH, DW)
            row = tl.where(valid, pixel * G + gi, ZERO_ROW)  # padding reads the zero row
            a_rows = x_ptr + (row * T)[:, None] + rt[None, :]  # (BM, BT): no masks in the loop below
            b_rows = w_ptr + ((w_rows + ky * KW + kx) * T)[:, None] + rt[None, :]  # (BN, BT)
            for t0 in range(0, T, BT):
                at = _decode(tl.load(a_rows + t0), HW_ASM)
                bt = _decode(tl.load(b_rows + t0), HW_ASM)
                acc = tl.dot(at, tl.trans(bt), acc, out_dtype=tl.int32)
    return acc


@triton.jit
def _xnor_tc_conv_kernel(x_ptr, w_ptr, c_ptr, scale_ptr, bias_ptr, M, OG, O, H, Wd, G, KH, KW, SH, SW, PH, PW,
                         DH, DW, HO, WO, T, ZERO_ROW, HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr,
                         FLOAT_OUT: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BT: tl.constexpr,
                         HW_ASM: tl.constexpr):
    gi, _, rm, rn, b, oy, ox = _conv_tile(M, OG, HO, WO, BM, BN)
    acc = _tc_conv_acc(x_ptr, w_ptr, rm, rn, M, b, oy, ox, gi, OG, H, Wd, G, KH, KW, SH, SW, PH, PW, DH, DW, T,
                       ZERO_ROW, BM, BN, BT, HW_ASM)
    col0 = gi * OG
    _store_c(acc >> 12, c_ptr + col0, scale_ptr + col0, bias_ptr + col0, rm, rn, M, OG, HAS_SCALE, HAS_BIAS,
             FLOAT_OUT, LDC=O)


def check_tc_taps(taps_k: int) -> None:
    torch._check(taps_k <= MAX_TAPS_K, lambda: f"w: expected kh * kw * C / groups at most {MAX_TAPS_K} for "
                 f"the int8 tensor-core path (the int32 accumulator holds 4096 C), got {taps_k}")


def tc_conv_operands(x, w, cg):
    """x (N, H, W, [G,] 2, Wg) -> tc16 rows (N H W G + 1, T), the last one zero (the padding taps read
    it); w (O, kh, kw, 2, Wg) -> (O kh kw, T), kept with the discrete weight (tc.tc_operand)."""
    xt = to_tc_layout(x.contiguous().reshape(-1, 2, x.shape[-1]), cg, zero_rows=1)
    return xt, tc_operand(w, cg, rows=w.shape[0] * w.shape[1] * w.shape[2])


def xnor_conv2d_tc(x, w, C, stride=1, padding=0, dilation=1, groups=1, scale=None, bias=None):
    """Triton twin of reference.xnor_conv2d on int8 tensor cores (operands converted to tc16 here;
    a discrete weight's conversion is kept until it changes, as in tc.tc_operand)."""
    N, H, Wd, G, Wg, O, kh, kw, s, p, d, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups, scale, bias)
    check_tc_taps(kh * kw * (C // groups))
    M, OG = N * Ho * Wo, O // groups
    fl = scale is not None or bias is not None
    out = conv_out_empty(x, O, N, Ho, Wo, fl)
    if M == 0 or O == 0:
        return out
    torch._check(M + 128 < 2**31, lambda: f"x: expected N * Ho * Wo < 2^31 - 128 output positions, got {M}")
    xt, wt = tc_conv_operands(x, w, C // groups)
    dst = out.permute(0, 2, 3, 1)  # contiguous (N, Ho, Wo, O)
    sc = scale.contiguous() if scale is not None else dst
    bi = bias.contiguous() if bias is not None else dst
    BM, BN = 128, 128
    launch("xnor_tc_conv", cdiv(M, BM) * cdiv(OG, BN) * groups, xt, wt, dst, sc, bi, M, OG, O, H, Wd, G, kh, kw,
           *s, *p, *d, Ho, Wo, xt.shape[1], N * H * Wd * G, HAS_SCALE=scale is not None,
           HAS_BIAS=bias is not None, FLOAT_OUT=fl, BM=BM, BN=BN, BT=8)
    return out
