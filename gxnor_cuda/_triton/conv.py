"""Triton xnor_conv2d: implicit GEMM on packed channels-last operands (GPU, or CPU with
TRITON_INTERPRET=1).

Grid (cdiv(M, BM), cdiv(O/groups, BN), groups), M = N * Ho * Wo output positions. Per program a
(BM, BN) int32 tile; loops over the kernel taps (ky, kx) and the BW-word chunks of the group's
packed channels; a tap in the zero padding loads zero words (gate off). Gated XNOR + SWAR popcount
as in gemm.py. Output (N, Ho, Wo, O) memory, returned as an (N, O, Ho, Wo) view.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .._conv_checks import check_conv, conv_out_empty
from ..reference import conv2d_then_pack
from .gemm import _popc32, _store_c
from .pack import quantize_pack


@triton.jit
def _xnor_conv_kernel(x_ptr, w_ptr, c_ptr, scale_ptr, bias_ptr, M, OG, O, H, Wd, G, WG, KH, KW, SH, SW, PH, PW,
                      DH, DW, HO, WO, HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr, FLOAT_OUT: tl.constexpr,
                      BM: tl.constexpr, BN: tl.constexpr, BW: tl.constexpr):
    gi = tl.program_id(2)
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    ox = rm % WO
    oy = (rm // WO) % HO
    b = rm // (WO * HO)
    acc = tl.zeros((BM, BN), dtype=tl.int32)
    for ky in range(KH):
        for kx in range(KW):
            iy = oy * SH - PH + ky * DH
            ix = ox * SW - PW + kx * DW
            valid = (rm < M) & (iy >= 0) & (iy < H) & (ix >= 0) & (ix < Wd)
            xb = ((b * H + iy) * Wd + ix).to(tl.int64) * G * 2 * WG + gi * 2 * WG
            wb = ((gi * OG + rn).to(tl.int64) * KH * KW + ky * KW + kx) * 2 * WG
            for w0 in range(0, WG, BW):
                rw = w0 + tl.arange(0, BW)
                ma = valid[:, None] & (rw[None, :] < WG)
                mb = (rn[:, None] < OG) & (rw[None, :] < WG)
                a_row = x_ptr + xb[:, None] + rw[None, :]
                b_row = w_ptr + wb[:, None] + rw[None, :]
                ga = tl.load(a_row, mask=ma, other=0).to(tl.uint32, bitcast=True)
                sa = tl.load(a_row + WG, mask=ma, other=0).to(tl.uint32, bitcast=True)
                gb = tl.load(b_row, mask=mb, other=0).to(tl.uint32, bitcast=True)
                sb = tl.load(b_row + WG, mask=mb, other=0).to(tl.uint32, bitcast=True)
                g = ga[:, None, :] & gb[None, :, :]
                xx = g & (sa[:, None, :] ^ sb[None, :, :])
                acc += tl.sum((_popc32(g) - 2 * _popc32(xx)).to(tl.int32), axis=2)
    col0 = gi * OG  # this group's first output channel
    _store_c(acc, c_ptr + col0, scale_ptr + col0, bias_ptr + col0, rm, rn, M, OG, HAS_SCALE, HAS_BIAS, FLOAT_OUT,
             LDC=O)

def xnor_conv2d(x, w, C, stride=1, padding=0, dilation=1, groups=1, scale=None, bias=None):
    """Triton twin of reference.xnor_conv2d (same arguments, same (N, O, Ho, Wo) channels-last output)."""
    N, H, Wd, G, Wg, O, kh, kw, s, p, d, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups, scale, bias)
    fl = scale is not None or bias is not None
    out = conv_out_empty(x, O, N, Ho, Wo, fl)
    M, OG = N * Ho * Wo, O // groups
    if M == 0 or O == 0:
        return out
    x, w = x.contiguous(), w.contiguous()
    nhwc = out.permute(0, 2, 3, 1)  # contiguous (N, Ho, Wo, O)
    sc = scale.contiguous() if scale is not None else nhwc
    bi = bias.contiguous() if bias is not None else nhwc
    BM, BN = 16, 16
    grid = (triton.cdiv(M, BM), triton.cdiv(OG, BN), groups)
    _xnor_conv_kernel[grid](x, w, nhwc, sc, bi, M, OG, O, H, Wd, G, Wg, kh, kw, *s, *p, *d, Ho, Wo,
                            HAS_SCALE=scale is not None, HAS_BIAS=bias is not None, FLOAT_OUT=fl,
                            BM=BM, BN=BN, BW=2)
    return out



# The conv kernel's float32 output, then the quantize_pack kernel (two kernels: not fused here).
xnor_conv2d_pack = conv2d_then_pack(xnor_conv2d, quantize_pack)
