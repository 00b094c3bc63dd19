"""Triton conv + 2x2 max-pool in one pass and its weight gradient: the GPU twin of
csrc/gxnor/cpu/conv_pool.h (same layouts, same arithmetic order, so a GPU gives the CPU kernels'
bits; the interpreter's fma rounds twice, exact on integer-valued data).

forward: 1-D grid over (BP pooled positions) x (BO output channels) tiles; each program walks the
taps (c, ky, kx) in order (nested loops stepping pointers: no division in the loop), loads the four
window positions' inputs (BP,) and the weight row (BO,), and keeps four (BP, BO) accumulators (fma
from 0, as the C++ kernel), then pools them with
maxpool2x2's rule (greater or NaN replaces, first maximum wins) and stores the maxima and the 1-byte
argmax channels-last. The conv output is never written.

xnor_conv2d_maxpool2x2 (the ternary conv's accumulators pooled) is in xnor_conv_pool.py.

weight gradient: 1-D grid over (block of ROWS pooled rows) x (BT taps) x (BO channels); each
program walks its block's positions in order and accumulates fma(x at the argmax, g, acc) into a
(BT, BO) tile, written as the block's partial sum; a second kernel adds the blocks in order.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._conv_checks import check_conv_maxpool2x2, check_conv_maxpool2x2_weight_grad
from .._ops import channels_last_empty
from .launch import cdiv, launch

ROWS = 32  # pooled rows per weight-gradient partial sum: kConvPoolRows of the C++ kernels
BP, BO, BT = 128, 32, 32


@triton.jit
def _conv_pool_kernel(x_ptr, w_ptr, y_ptr, a_ptr, P, OC, C, HP, WP, PH, PW, KH, KW, SH, SW, DH, DW,
                      BP: tl.constexpr, BO: tl.constexpr):
    n_ob = tl.cdiv(OC, BO)
    pid = tl.program_id(0)
    p = (pid // n_ob).to(tl.int64) * BP + tl.arange(0, BP).to(tl.int64)
    o = (pid % n_ob) * BO + tl.arange(0, BO)
    pm, om = p < P, o < OC
    n, rem = p // (PH * PW), p % (PH * PW)
    py, px = rem // PW, rem % PW
    base = n * C * HP * WP + 2 * py * SH * WP + 2 * px * SW  # (BP,) the window's top-left input
    q1, q2 = SW, SH * WP
    a0 = tl.zeros((BP, BO), tl.float32)
    a1 = tl.zeros((BP, BO), tl.float32)
    a2 = tl.zeros((BP, BO), tl.float32)
    a3 = tl.zeros((BP, BO), tl.float32)
    x_q = x_ptr + base  # (BP,) pointers to the window's top-left input
    w_t = w_ptr + o  # (BO,) the weight row of tap 0
    for _c in range(0, C):  # taps in (c, ky, kx) order, offsets stepped (no division in the loop)
        for _ky in range(0, KH):
            for _kx in range(0, KW):
                wv = tl.load(w_t, mask=om, other=0.0)[None, :]
                x0 = tl.load(x_q, mask=pm, other=0.0)[:, None]
                x1 = tl.load(x_q + q1, mask=pm, other=0.0)[:, None]
                x2 = tl.load(x_q + q2, mask=pm, other=0.0)[:, None]
                x3 = tl.load(x_q + (q1 + q2), mask=pm, other=0.0)[:, None]
                a0 = tl.fma(x0, wv, a0)
                a1 = tl.fma(x1, wv, a1)
                a2 = tl.fma(x2, wv, a2)
                a3 = tl.fma(x3, wv, a3)
                x_q += DW
                w_t += OC
            x_q += DH * WP - KW * DW
        x_q += HP * WP - KH * DH * WP
    m = a0
    k = tl.zeros((BP, BO), tl.int32)
    t1 = (a1 > m) | (a1 != a1)
    m, k = tl.where(t1, a1, m), tl.where(t1, 1, k)
    t2 = (a2 > m) | (a2 != a2)
    m, k = tl.where(t2, a2, m), tl.where(t2, 2, k)
    t3 = (a3 > m) | (a3 != a3)
    m, k = tl.where(t3, a3, m), tl.where(t3, 3, k)
    out = p[:, None] * OC + o[None, :]
    mask = pm[:, None] & om[None, :]
    tl.store(y_ptr + out, m, mask=mask)
    tl.store(a_ptr + out, k.to(tl.uint8), mask=mask)


@triton.jit
def _conv_pool_wgrad_kernel(x_ptr, g_ptr, a_ptr, part_ptr, R, OC, C, HP, WP, PH, PW, KH, KW, SH, SW, DH, DW,
                            ROWS: tl.constexpr, BT: tl.constexpr, BO: tl.constexpr):
    taps = C * KH * KW
    n_ob, n_tb = tl.cdiv(OC, BO), tl.cdiv(taps, BT)
    pid = tl.program_id(0)
    blk = pid // (n_tb * n_ob)
    t = ((pid // n_ob) % n_tb) * BT + tl.arange(0, BT)
    o = (pid % n_ob) * BO + tl.arange(0, BO)
    tm, om = t < taps, o < OC
    c, ky, kx = t // (KH * KW), (t // KW) % KH, t % KW
    toff = (c * HP * WP + ky * DH * WP + kx * DW).to(tl.int64)  # (BT,)
    acc = tl.zeros((BT, BO), tl.float32)
    r0 = blk.to(tl.int64) * ROWS
    n_pos = (tl.minimum(R - r0, ROWS) * PW).to(tl.int32)
    for i in range(0, n_pos):
        r, px = r0 + i // PW, i % PW
        n, py = r // PH, r % PH
        base = n * C * HP * WP + 2 * py * SH * WP + 2 * px * SW
        pos = (r * PW + px) * OC
        g = tl.load(g_ptr + pos + o, mask=om, other=0.0)[None, :]
        a = tl.load(a_ptr + pos + o, mask=om, other=0).to(tl.int32)[None, :]
        x0 = tl.load(x_ptr + base + toff, mask=tm, other=0.0)[:, None]
        x1 = tl.load(x_ptr + base + SW + toff, mask=tm, other=0.0)[:, None]
        x2 = tl.load(x_ptr + base + SH * WP + toff, mask=tm, other=0.0)[:, None]
        x3 = tl.load(x_ptr + base + SH * WP + SW + toff, mask=tm, other=0.0)[:, None]
        xs = tl.where(a == 0, x0, tl.where(a == 1, x1, tl.where(a == 2, x2, x3)))
        acc = tl.fma(xs, g, acc)
    tl.store(part_ptr + blk.to(tl.int64) * taps * OC + t[:, None] * OC + o[None, :], acc,
             mask=tm[:, None] & om[None, :])


@triton.jit
def _sum_blocks_kernel(part_ptr, out_ptr, n_blocks, size, BLOCK: tl.constexpr):
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
    m = i < size
    acc = tl.zeros((BLOCK,), tl.float32)
    for b in range(0, n_blocks):  # in order, from 0: the C++ kernels' sum
        acc += tl.load(part_ptr + b * size + i, mask=m, other=0.0)
    tl.store(out_ptr + i, acc, mask=m)


def _geometry(x, kh, kw, s, p, d, Ho, Wo):
    xp = torch.nn.functional.pad(x, (p[1], p[1], p[0], p[0])) if p[0] or p[1] else x
    return xp.contiguous(), (x.shape[1], xp.shape[2], xp.shape[3], Ho // 2, Wo // 2, kh, kw, s[0], s[1], d[0], d[1])


def conv2d_maxpool2x2(x, w, stride=1, padding=0, dilation=1):
    s, p, d, Ho, Wo = check_conv_maxpool2x2(x, w, stride, padding, dilation)
    o, kh, kw = w.shape[0], w.shape[2], w.shape[3]
    shape = (x.shape[0], o, Ho // 2, Wo // 2)
    y, a = channels_last_empty(shape, x, torch.float32), channels_last_empty(shape, x, torch.uint8)
    P = shape[0] * shape[2] * shape[3]
    if P == 0:
        return y, a
    xp, geo = _geometry(x, kh, kw, s, p, d, Ho, Wo)
    wt = w.permute(1, 2, 3, 0).reshape(-1, o).contiguous()  # (taps, O), taps in (c, ky, kx) order
    launch("conv_pool", cdiv(P, BP) * cdiv(o, BO), xp, wt, y, a, P, o, *geo, BP=BP, BO=BO)
    return y, a


def conv2d_maxpool2x2_weight_grad(grad, argmax, x, kernel_size, stride=1, padding=0, dilation=1):
    kh, kw, s, p, d, Ho, Wo = check_conv_maxpool2x2_weight_grad(grad, argmax, x, kernel_size, stride, padding,
                                                                dilation)
    o, taps = grad.shape[1], x.shape[1] * kh * kw
    gw = channels_last_empty((o, x.shape[1], kh, kw), x, torch.float32)
    R = x.shape[0] * (Ho // 2)
    if R == 0:
        return gw.zero_()
    xp, geo = _geometry(x, kh, kw, s, p, d, Ho, Wo)
    g = grad.contiguous(memory_format=torch.channels_last)
    a = argmax.contiguous(memory_format=torch.channels_last)
    blocks = cdiv(R, ROWS)
    part = torch.empty((blocks, taps, o), dtype=torch.float32, device=x.device)
    launch("conv_pool_wgrad", blocks * cdiv(taps, BT) * cdiv(o, BO), xp, g, a, part, R, o, *geo, ROWS=ROWS, BT=BT,
           BO=BO)
    out = torch.empty((taps, o), dtype=torch.float32, device=x.device)
    launch("sum_blocks", cdiv(taps * o, 1024), part, out, blocks, taps * o, BLOCK=1024)
    return gw.copy_(out.t().reshape(o, x.shape[1], kh, kw))
