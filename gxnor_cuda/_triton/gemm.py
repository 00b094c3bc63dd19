"""Triton GEMM kernels on packed ternary operands (GPU, or CPU with TRITON_INTERPRET=1).

- ``_xnor_popcount_kernel``: 1-D grid of cdiv(M, BM) * cdiv(N, BN) tiles; per program a (BM, BN) int32 tile,
  loop over the W/2 gate/sign word pairs of 32 bits; gated XNOR + popcount (``_popc32``: the POPC
  instruction when compiled, a SWAR bit trick in the interpreter).
- ``_xnor_dot_kernel``: same tiles; per 64-wide k step unpack (BM, 64) and (BN, 64) int8 tiles in
  registers and tl.dot with int32 accumulation (tensor cores on a GPU; exact).
- ``_ternary_nt_kernel`` / ``_ternary_nn_kernel``: float x ternary, weights unpacked to float32
  tiles in registers, tl.dot in IEEE fp32 (no TF32).
No explicit shared memory; Triton stages the tiles.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

from .._checks import check_gemm, check_ternary_matmul
from .launch import cdiv, launch


@triton.jit
def _popc32(x, HW_POPC: tl.constexpr):
    """Population count of uint32 words: the POPC instruction when compiled (LLVM turns only some
    SWAR sequences into it), the SWAR bit trick in the interpreter (which has no libdevice)."""
    if HW_POPC:
        return libdevice.popc(x.to(tl.int32, bitcast=True)).to(tl.uint32, bitcast=True)
    else:
        x = x - ((x >> 1) & 0x55555555)
        x = (x & 0x33333333) + ((x >> 2) & 0x33333333)
        x = (x + (x >> 4)) & 0x0F0F0F0F
        return (x * 0x01010101) >> 24


@triton.jit
def _xnor_words(a_row, b_row, ma, mb, a_plane, b_plane, HW_POPC: tl.constexpr):
    """Gated-XNOR dot products of a (BM, BW) and a (BN, BW) tile of gate words (sign words one plane
    further on): the (BM, BN) int32 sums over the BW words, masked words read as 0 (gate off)."""
    ga = tl.load(a_row, mask=ma, other=0).to(tl.uint32, bitcast=True)
    sa = tl.load(a_row + a_plane, mask=ma, other=0).to(tl.uint32, bitcast=True)
    gb = tl.load(b_row, mask=mb, other=0).to(tl.uint32, bitcast=True)
    sb = tl.load(b_row + b_plane, mask=mb, other=0).to(tl.uint32, bitcast=True)
    g = ga[:, None, :] & gb[None, :, :]
    x = g & (sa[:, None, :] ^ sb[None, :, :])
    return tl.sum((_popc32(g, HW_POPC) - 2 * _popc32(x, HW_POPC)).to(tl.int32), axis=2)


@triton.jit
def _tile(M, BM: tl.constexpr, BN: tl.constexpr):
    """Rows and columns of this program's tile on a 1-D grid, M tiles fastest (int64)."""
    tm = tl.cdiv(M, BM)
    pid = tl.program_id(0).to(tl.int64)
    return (pid % tm) * BM + tl.arange(0, BM), (pid // tm) * BN + tl.arange(0, BN)


@triton.jit
def _store_c(acc, c_ptr, scale_ptr, bias_ptr, rm, rn, M, N, HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr,
             FLOAT_OUT: tl.constexpr, LDC=None):
    """Store an int32 C tile, or float32 C * scale[col] + bias[col] (the fused epilogue).
    Rows are LDC apart (default N)."""
    mc = (rm[:, None] < M) & (rn[None, :] < N)
    c_off = rm[:, None].to(tl.int64) * (N if LDC is None else LDC) + rn[None, :]
    if FLOAT_OUT:
        out = acc.to(tl.float32)
        if HAS_SCALE:
            out = out * tl.load(scale_ptr + rn, mask=rn < N, other=1.0)[None, :]
        if HAS_BIAS:
            out = out + tl.load(bias_ptr + rn, mask=rn < N, other=0.0)[None, :]
        tl.store(c_ptr + c_off, out, mask=mc)
    else:
        tl.store(c_ptr + c_off, acc, mask=mc)


@triton.jit
def _xnor_popcount_kernel(a_ptr, b_ptr, c_ptr, scale_ptr, bias_ptr, M, N, W,
                          HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr, FLOAT_OUT: tl.constexpr,
                          BM: tl.constexpr, BN: tl.constexpr, BW: tl.constexpr, HW_POPC: tl.constexpr):
    rm, rn = _tile(M, BM, BN)
    acc = tl.zeros((BM, BN), dtype=tl.int32)
    for w0 in range(0, W, BW):
        rw = w0 + tl.arange(0, BW)
        ma = (rm[:, None] < M) & (rw[None, :] < W)
        mb = (rn[:, None] < N) & (rw[None, :] < W)
        a_row = a_ptr + rm[:, None].to(tl.int64) * 2 * W + rw[None, :]
        b_row = b_ptr + rn[:, None].to(tl.int64) * 2 * W + rw[None, :]
        acc += _xnor_words(a_row, b_row, ma, mb, W, W, HW_POPC)
    _store_c(acc, c_ptr, scale_ptr, bias_ptr, rm, rn, M, N, HAS_SCALE, HAS_BIAS, FLOAT_OUT)


@triton.jit
def _unpack_tile(ptr, rows, n_rows, W, w0, BR: tl.constexpr, OUT_T: tl.constexpr):
    """(BR, 64) tile of values for k in [32 w0, 32 w0 + 64) of packed rows `rows`."""
    rw = w0 + tl.arange(0, 2)
    m = (rows[:, None] < n_rows) & (rw[None, :] < W)
    base = ptr + rows[:, None].to(tl.int64) * 2 * W + rw[None, :]
    g = tl.load(base, mask=m, other=0)
    s = tl.load(base + W, mask=m, other=0)
    sh = tl.arange(0, 32)
    gb = (g[:, :, None] >> sh[None, None, :]) & 1
    sbit = (s[:, :, None] >> sh[None, None, :]) & 1
    v = gb * (1 - 2 * sbit)
    return tl.reshape(v, (BR, 64)).to(OUT_T)


@triton.jit
def _xnor_dot_kernel(a_ptr, b_ptr, c_ptr, scale_ptr, bias_ptr, M, N, W,
                     HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr, FLOAT_OUT: tl.constexpr,
                     BM: tl.constexpr, BN: tl.constexpr):
    rm, rn = _tile(M, BM, BN)
    acc = tl.zeros((BM, BN), dtype=tl.int32)
    for w0 in range(0, W, 2):
        at = _unpack_tile(a_ptr, rm, M, W, w0, BM, tl.int8)
        bt = _unpack_tile(b_ptr, rn, N, W, w0, BN, tl.int8)
        acc = tl.dot(at, tl.trans(bt), acc, out_dtype=tl.int32)
    _store_c(acc, c_ptr, scale_ptr, bias_ptr, rm, rn, M, N, HAS_SCALE, HAS_BIAS, FLOAT_OUT)


@triton.jit
def _ternary_nt_kernel(x_ptr, w_ptr, o_ptr, M, N, K, W, BM: tl.constexpr, BN: tl.constexpr):
    rm, rn = _tile(M, BM, BN)
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for w0 in range(0, W, 2):
        rk = w0 * 32 + tl.arange(0, 64)
        xt = tl.load(x_ptr + rm[:, None].to(tl.int64) * K + rk[None, :],
                     mask=(rm[:, None] < M) & (rk[None, :] < K), other=0.0).to(tl.float32)
        wt = _unpack_tile(w_ptr, rn, N, W, w0, BN, tl.float32)
        acc = tl.dot(xt, tl.trans(wt), acc, input_precision="ieee")
    tl.store(o_ptr + rm[:, None].to(tl.int64) * N + rn[None, :], acc.to(o_ptr.dtype.element_ty),
             mask=(rm[:, None] < M) & (rn[None, :] < N))


@triton.jit
def _ternary_nn_kernel(g_ptr, w_ptr, o_ptr, M, N, K, W, BM: tl.constexpr, BN: tl.constexpr):
    # out[:, 64-wide k block kb] = g (M, N) @ w_dense[:, k block]
    tm = tl.cdiv(M, BM)
    pid = tl.program_id(0).to(tl.int64)
    rm = (pid % tm) * BM + tl.arange(0, BM)
    kb = pid // tm
    rk = kb * 64 + tl.arange(0, 64)
    acc = tl.zeros((BM, 64), dtype=tl.float32)
    for n0 in range(0, N, BN):
        rn = n0 + tl.arange(0, BN)
        gt = tl.load(g_ptr + rm[:, None].to(tl.int64) * N + rn[None, :],
                     mask=(rm[:, None] < M) & (rn[None, :] < N), other=0.0).to(tl.float32)
        wt = _unpack_tile(w_ptr, rn, N, W, kb * 2, BN, tl.float32)
        acc = tl.dot(gt, wt, acc, input_precision="ieee")
    tl.store(o_ptr + rm[:, None].to(tl.int64) * K + rk[None, :], acc.to(o_ptr.dtype.element_ty),
             mask=(rm[:, None] < M) & (rk[None, :] < K))


def gemm_output(M, N, scale, bias, device):
    """The (M, N) output (float32 with an epilogue, else int32), the scale / bias pointers (the
    output stands in for an absent one) and the epilogue constexprs of a GEMM launch."""
    fl = scale is not None or bias is not None
    out = torch.empty((M, N), dtype=torch.float32 if fl else torch.int32, device=device)
    sc = scale.contiguous() if scale is not None else out
    bi = bias.contiguous() if bias is not None else out
    return out, sc, bi, dict(HAS_SCALE=scale is not None, HAS_BIAS=bias is not None, FLOAT_OUT=fl)


def xnor_gemm(a, b, K, scale=None, bias=None, *, method: str = "popcount"):
    """Triton twin of reference.xnor_gemm; ``method`` = "popcount" (CUDA cores), "dot" (int8 tl.dot on
    format v1 unpacked per tile) or "tc" (int8 tl.dot on the tc16 layout, tc.py).

    a: (M, 2, W) int32, b: (N, 2, W) int32 -> (M, N) int32, or float32 with scale/bias (N,).
    """
    check_gemm(a, b, K, scale, bias)
    torch._check(method in ("popcount", "dot", "tc"),
                 lambda: f"method: expected 'popcount', 'dot' or 'tc', got {method!r}")
    if method == "tc":
        from .tc import xnor_gemm_tc

        return xnor_gemm_tc(a, b, K, scale, bias)
    a, b = a.contiguous(), b.contiguous()
    M, N, W = a.shape[0], b.shape[0], a.shape[2]
    out, sc, bi, flags = gemm_output(M, N, scale, bias, a.device)
    if M == 0 or N == 0:
        return out
    if method == "popcount":
        BM, BN = 16, 16
        launch("xnor_popcount", cdiv(M, BM) * cdiv(N, BN), a, b, out, sc, bi, M, N, W, **flags, BM=BM, BN=BN, BW=2)
    else:
        BM, BN = 32, 32
        launch("xnor_dot", cdiv(M, BM) * cdiv(N, BN), a, b, out, sc, bi, M, N, W, **flags, BM=BM, BN=BN)
    return out


def ternary_matmul(x, w, K, nn=False):
    """Triton twin of reference.ternary_matmul (fp32 accumulation, IEEE fp32 dot)."""
    check_ternary_matmul(x, w, K, nn)
    x, w = x.contiguous(), w.contiguous()
    M, N, W = x.shape[0], w.shape[0], w.shape[2]
    out = torch.empty((M, K if nn else N), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    if N == 0:
        return out.zero_()
    BM, BN = 32, 32
    if nn:
        launch("ternary_nn", cdiv(M, BM) * (W // 2), x, w, out, M, N, K, W, BM=BM, BN=BN)
    else:
        launch("ternary_nt", cdiv(M, BM) * cdiv(N, BN), x, w, out, M, N, K, W, BM=BM, BN=BN)
    return out
