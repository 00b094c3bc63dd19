"""Triton xnor_conv2d_maxpool2x2: the ternary conv with its 2x2 max-pool in the epilogue, one pass.

The implicit GEMM's rows are (pooled position p, window position q = 2 dy + dx) in the order
r = 4 p + q, so each BM-row tile holds BM / 4 whole windows: the epilogue reshapes the (BM, BN)
accumulator tile to (BM / 4, 4, BN) and takes the max and the first argmax over q in registers
(maxpool2x2's tie rule: the first window position holding the maximum). The conv output is never
written; the odd last conv row / column the pool drops is never computed.

  x (N, H, W, [G,] 2, Wg) ┐ conv tile (BM = 4 BM/4 rows, BN output channels):   y (N, Ho/2, Wo/2, O) float32
                           ├ popcount loop (conv.py) or int8 tl.dot (tc_conv.py) ├ max over q  ->
  w (O, kh, kw, 2, Wg)    ┘                                                       a (N, Ho/2, Wo/2, O) uint8
Both outputs are returned as (N, O, Ho/2, Wo/2) channels-last views, as on every backend. The
kernel is chosen as for xnor_conv2d (functional.gpu_conv_method): tensor cores when a group's
channels fill half the tile, else the CUDA-core popcount loop.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._conv_checks import check_conv, check_conv_pool_output
from .._ops import channels_last_empty
from .conv import _popcount_conv_acc
from .launch import cdiv, launch
from .tc_conv import _tc_conv_acc, check_tc_taps, tc_conv_operands


@triton.jit
def _pool_tile(P, OG, HP, WP, BM: tl.constexpr, BN: tl.constexpr):
    """This program's tile: (group, rows rm of the 4 P window positions, the group's output channels rn,
    the tile's pooled positions rp, and rm as image b (int64), conv row oy and column ox)."""
    M = 4 * P
    tm, tn = tl.cdiv(M, BM).to(tl.int32), tl.cdiv(OG, BN).to(tl.int32)  # int32 division: no call
    pid = tl.program_id(0)
    pn = pid // tm % tn
    gi = pid // (tm * tn)
    rm = (pid % tm) * BM + tl.arange(0, BM)  # the wrapper keeps 4 P + BM below 2^31
    rn = pn * BN + tl.arange(0, BN)
    rp = (pid % tm) * (BM // 4) + tl.arange(0, BM // 4)
    p, q = rm // 4, rm % 4
    b = (p // (WP * HP)).to(tl.int64)
    return gi, rm, rn, rp, b, (p // WP) % HP * 2 + q // 2, p % WP * 2 + q % 2


@triton.jit
def _store_pool(acc, y_ptr, a_ptr, rp, rn, P, OG, O, col0, BM: tl.constexpr, BN: tl.constexpr):
    """Max and first argmax over each window's 4 rows of the (BM, BN) tile -> y, a at (rp, col0 + rn)."""
    v = tl.reshape(acc, (BM // 4, 4, BN))
    m = tl.max(v, axis=1)
    q = tl.arange(0, 4)[None, :, None]
    a = tl.min(tl.where(v == m[:, None, :], q, 4), axis=1)  # the first q holding the max, written out (the
    # interpreter's argmax takes the first whatever tie_break_left says, so it could not test that flag)
    off = rp[:, None].to(tl.int64) * O + col0 + rn[None, :]
    mask = (rp[:, None] < P) & (rn[None, :] < OG)
    tl.store(y_ptr + off, m.to(tl.float32), mask=mask)  # |accumulator| < 2^24: exact in float32
    tl.store(a_ptr + off, a.to(tl.uint8), mask=mask)


@triton.jit
def _xnor_conv_pool_kernel(x_ptr, w_ptr, y_ptr, a_ptr, P, OG, O, H, Wd, G, WG, KH, KW, SH, SW, PH, PW, DH, DW, HP,
                           WP, BM: tl.constexpr, BN: tl.constexpr, BW: tl.constexpr, HW_POPC: tl.constexpr):
    gi, rm, rn, rp, b, oy, ox = _pool_tile(P, OG, HP, WP, BM, BN)
    acc = _popcount_conv_acc(x_ptr, w_ptr, rm, rn, 4 * P, b, oy, ox, gi, OG, H, Wd, G, WG, KH, KW, SH, SW, PH, PW,
                             DH, DW, BM, BN, BW, HW_POPC)
    _store_pool(acc, y_ptr, a_ptr, rp, rn, P, OG, O, gi * OG, BM, BN)


@triton.jit
def _xnor_tc_conv_pool_kernel(x_ptr, w_ptr, y_ptr, a_ptr, P, OG, O, H, Wd, G, KH, KW, SH, SW, PH, PW, DH, DW, HP,
                              WP, T, ZERO_ROW, BM: tl.constexpr, BN: tl.constexpr, BT: tl.constexpr,
                              HW_ASM: tl.constexpr):
    gi, rm, rn, rp, b, oy, ox = _pool_tile(P, OG, HP, WP, BM, BN)
    acc = _tc_conv_acc(x_ptr, w_ptr, rm, rn, 4 * P, b, oy, ox, gi, OG, H, Wd, G, KH, KW, SH, SW, PH, PW, DH, DW, T,
                       ZERO_ROW, BM, BN, BT, HW_ASM)
    _store_pool(acc >> 12, y_ptr, a_ptr, rp, rn, P, OG, O, gi * OG, BM, BN)  # max commutes with the exact shift


TILES = {"popcount": (16, 16), "tc": (128, 128)}  # (BM, BN): BM / 4 pooled positions per tile


def xnor_conv2d_maxpool2x2(x, w, C, stride=1, padding=0, dilation=1, groups=1, method=None):
    """Triton twin of reference.xnor_conv2d_maxpool2x2: (maxima float32, uint8 argmax), both
    (N, O, Ho // 2, Wo // 2) channels-last. method: "tc" or "popcount"; None chooses as xnor_conv2d."""
    from ..functional import gpu_conv_method

    N, H, Wd, G, Wg, O, kh, kw, s, p, d, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups)
    check_conv_pool_output(Ho, Wo)
    method = method or gpu_conv_method(C, O, kh * kw, groups)
    if method == "tc":
        check_tc_taps(kh * kw * (C // groups))
    HP, WP = Ho // 2, Wo // 2
    y = channels_last_empty((N, O, HP, WP), x, torch.float32)
    a = channels_last_empty((N, O, HP, WP), x, torch.uint8)
    P, OG = N * HP * WP, O // groups
    if P == 0 or O == 0:
        return y, a
    BM, BN = TILES[method]
    torch._check(4 * P + BM < 2**31, lambda: f"x: expected 4 N (Ho // 2) (Wo // 2) < 2^31 - {BM} window positions "
                 f"on the Triton backend, got {4 * P}")
    grid = cdiv(4 * P, BM) * cdiv(OG, BN) * groups
    geo = (H, Wd, G)
    spec = (kh, kw, *s, *p, *d, HP, WP)
    if method == "tc":
        xt, wt = tc_conv_operands(x, w, C // groups)
        launch("xnor_tc_conv_pool", grid, xt, wt, y, a, P, OG, O, *geo, *spec, xt.shape[1], N * H * Wd * G, BM=BM,
               BN=BN, BT=8)
    else:
        launch("xnor_conv_pool", grid, x.contiguous(), w.contiguous(), y, a, P, OG, O, *geo, Wg, *spec, BM=BM,
               BN=BN, BW=2)
    return y, a
