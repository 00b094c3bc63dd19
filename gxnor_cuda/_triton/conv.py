"""Triton xnor_conv2d: implicit GEMM on packed channels-last operands (GPU, or CPU with
TRITON_INTERPRET=1).

1-D grid of cdiv(M, BM) * cdiv(O/groups, BN) * groups tiles, M = N * Ho * Wo output positions. Per program a
(BM, BN) int32 tile; loops over the kernel taps (ky, kx) and the BW-word chunks of the group's
packed channels; a tap in the zero padding loads zero words (gate off). Gated XNOR + popcount
as in gemm.py. Output (N, Ho, Wo, O) memory, returned as an (N, O, Ho, Wo) view.

xnor_conv2d_pack fuses the threshold + pack into the same kernel (PACK): with BN = 32 each program
owns one packed word column, thresholds its float tile in registers and stores two int32 words
per output position; the float (N, O, Ho, Wo) tensor is never written.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import format as fmt
from .._checks import check_threshold
from .._conv_checks import alloc_named, check_conv, conv_out_empty
from .gemm import _store_c, _xnor_words
from .launch import cdiv, launch


@triton.jit
def _store_pack(acc, p_ptr, scale_ptr, bias_ptr, rm, rn, M, N, word, thr, WP, HAS_SCALE: tl.constexpr,
                HAS_BIAS: tl.constexpr, BN: tl.constexpr):
    """phi_thr(acc * scale + bias) of a (BM, 32) tile -> one gate word and one sign word per row."""
    y = acc.to(tl.float32)
    if HAS_SCALE:
        y = y * tl.load(scale_ptr + rn, mask=rn < N, other=1.0)[None, :]
    if HAS_BIAS:
        y = y + tl.load(bias_ptr + rn, mask=rn < N, other=0.0)[None, :]
    live = (rn < N)[None, :]
    neg = (y <= -thr) & live
    gate = ((y >= thr) & live) | neg
    lane = tl.arange(0, BN).to(tl.uint32)[None, :]
    g = tl.sum(gate.to(tl.uint32) << lane, axis=1)  # disjoint bits: the sum is the OR
    s = tl.sum(neg.to(tl.uint32) << lane, axis=1)
    off = rm.to(tl.int64) * 2 * WP + word
    tl.store(p_ptr + off, g.to(tl.int32, bitcast=True), mask=rm < M)
    tl.store(p_ptr + off + WP, s.to(tl.int32, bitcast=True), mask=rm < M)


@triton.jit
def _conv_tile(M, OG, HO, WO, BM: tl.constexpr, BN: tl.constexpr):
    """This program's tile of the implicit GEMM: (group, column tile, output positions rm, the
    group's output channels rn, and rm as image b (int64), row oy and column ox)."""
    tm, tn = tl.cdiv(M, BM).to(tl.int32), tl.cdiv(OG, BN).to(tl.int32)  # int32 division: no call
    pid = tl.program_id(0)
    pn = pid // tm % tn
    gi = pid // (tm * tn)
    rm = (pid % tm) * BM + tl.arange(0, BM)  # the wrapper keeps M + BM below 2^31
    rn = pn * BN + tl.arange(0, BN)
    # addresses in int64 from the image index on: N * H * W * words passes 2^31 first
    return gi, pn, rm, rn, (rm // (WO * HO)).to(tl.int64), (rm // WO) % HO, rm % WO


@triton.jit
def _tap(rm, M, b, oy, ox, ky, kx, H, Wd, SH, SW, PH, PW, DH, DW):
    """The input pixel (b H + iy) Wd + ix that output positions rm read at tap (ky, kx), and whether
    it is a real one (inside the image, rm < M) rather than zero padding."""
    iy = oy * SH - PH + ky * DH
    ix = ox * SW - PW + kx * DW
    return (b * H + iy) * Wd + ix, (rm < M) & (iy >= 0) & (iy < H) & (ix >= 0) & (ix < Wd)


@triton.jit
def _popcount_conv_acc(x_ptr, w_ptr, rm, rn, M, b, oy, ox, gi, OG, H, Wd, G, WG, KH, KW, SH, SW, PH, PW, DH, DW,
                       BM: tl.constexpr, BN: tl.constexpr, BW: tl.constexpr, HW_POPC: tl.constexpr):
    """(BM, BN) int32 accumulators of the output positions (b, oy, ox) of rows rm (live while rm < M)
    and group gi's output channels rn: every tap, every BW-word chunk of the group's channels."""
    acc = tl.zeros((BM, BN), dtype=tl.int32)
    for ky in range(KH):
        for kx in range(KW):
            pixel, valid = _tap(rm, M, b, oy, ox, ky, kx, H, Wd, SH, SW, PH, PW, DH, DW)
            xb = pixel * G * 2 * WG + gi * 2 * WG
            wb = ((gi * OG + rn).to(tl.int64) * KH * KW + ky * KW + kx) * 2 * WG
            for w0 in range(0, WG, BW):
                rw = w0 + tl.arange(0, BW)
                ma = valid[:, None] & (rw[None, :] < WG)
                mb = (rn[:, None] < OG) & (rw[None, :] < WG)
                a_row = x_ptr + xb[:, None] + rw[None, :]
                b_row = w_ptr + wb[:, None] + rw[None, :]
                acc += _xnor_words(a_row, b_row, ma, mb, WG, WG, HW_POPC)
    return acc


@triton.jit
def _xnor_conv_kernel(x_ptr, w_ptr, c_ptr, scale_ptr, bias_ptr, M, OG, O, H, Wd, G, WG, KH, KW, SH, SW, PH, PW,
                      DH, DW, HO, WO, thr, WP, HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr,
                      FLOAT_OUT: tl.constexpr, PACK: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr,
                      BW: tl.constexpr, HW_POPC: tl.constexpr):
    gi, pn, rm, rn, b, oy, ox = _conv_tile(M, OG, HO, WO, BM, BN)
    acc = _popcount_conv_acc(x_ptr, w_ptr, rm, rn, M, b, oy, ox, gi, OG, H, Wd, G, WG, KH, KW, SH, SW, PH, PW, DH,
                             DW, BM, BN, BW, HW_POPC)
    col0 = gi * OG  # this group's first output channel
    if PACK:  # col0 and the tile's first column are multiples of 32 (BN = 32): one word per row
        word = (col0 + pn * BN) // 32
        _store_pack(acc, c_ptr, scale_ptr + col0, bias_ptr + col0, rm, rn, M, OG, word, thr, WP, HAS_SCALE,
                    HAS_BIAS, BN)
    else:
        _store_c(acc, c_ptr + col0, scale_ptr + col0, bias_ptr + col0, rm, rn, M, OG, HAS_SCALE, HAS_BIAS,
                 FLOAT_OUT, LDC=O)

def _launch(x, w, C, stride, padding, dilation, groups, scale, bias, threshold=None):
    N, H, Wd, G, Wg, O, kh, kw, s, p, d, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups, scale, bias)
    pack = threshold is not None
    fl = scale is not None or bias is not None
    M, OG = N * Ho * Wo, O // groups
    if pack and groups != 1 and OG % 32:  # groups would share output words: conv, then quantize_pack
        from ..reference import conv2d_then_pack
        from .pack import quantize_pack

        return conv2d_then_pack(xnor_conv2d, quantize_pack)(x, w, C, threshold, stride, padding, dilation, groups,
                                                            scale, bias)
    if pack:
        threshold = float(torch.tensor(threshold, dtype=torch.float32))  # the kernels compare in float32
        WP = fmt.packed_words(O)
        out = alloc_named((N, Ho, Wo, 2, WP), x, torch.int32, zero=True)  # padding words stay 0
        dst = out
    else:
        WP = 0
        out = conv_out_empty(x, O, N, Ho, Wo, fl)
        dst = out.permute(0, 2, 3, 1)  # contiguous (N, Ho, Wo, O)
    if M == 0 or O == 0:
        return out
    x, w = x.contiguous(), w.contiguous()
    sc = scale.contiguous() if scale is not None else dst
    bi = bias.contiguous() if bias is not None else dst
    BM, BN = 16, 32 if pack else 16
    torch._check(M + BM < 2**31, lambda: f"x: expected N * Ho * Wo < 2^31 - {BM} output positions on the Triton "
                 f"backend, got {M}")
    launch("xnor_conv", cdiv(M, BM) * cdiv(OG, BN) * groups, x, w, dst, sc, bi, M, OG, O, H, Wd, G, Wg, kh, kw,
           *s, *p, *d, Ho, Wo, float(threshold) if pack else 0.0, WP, HAS_SCALE=scale is not None,
           HAS_BIAS=bias is not None, FLOAT_OUT=fl, PACK=pack, BM=BM, BN=BN, BW=2)
    return out


def xnor_conv2d(x, w, C, stride=1, padding=0, dilation=1, groups=1, scale=None, bias=None):
    """Triton twin of reference.xnor_conv2d (same arguments, same (N, O, Ho, Wo) channels-last output)."""
    return _launch(x, w, C, stride, padding, dilation, groups, scale, bias)


def xnor_conv2d_pack(x, w, C, threshold, stride=1, padding=0, dilation=1, groups=1, scale=None, bias=None):
    """Triton twin of reference.xnor_conv2d_pack, threshold and pack fused into the conv kernel.

    returns: (N, Ho, Wo, 2, packed_words(O)) int32. Grouped convs whose per-group output count is not
    a multiple of 32 would share words between programs: those run the conv, then quantize_pack.
    """
    check_threshold(threshold)
    return _launch(x, w, C, stride, padding, dilation, groups, scale, bias, threshold)
