"""Ternary x ternary GEMM on int8 tensor cores: ``tl.dot`` becomes IMMA (sm_80) or IGMMA / wgmma
(sm_90). The operands travel in the tensor-core layout, so that the decode to int8 costs less
than half an integer instruction per value in the hot loop.

Tensor-core layout v1 (``tc16``) of a packed row of logical length K: T = 8 ceil(K / 128) int32
words (K padded with zeros to the 128-value K step of the kernel). Word t holds the 16 values
k = 16 t + 4 p + j (p, j in 0..3) as 2-bit two's complement codes (0 -> 00, +1 -> 01, -1 -> 11)
at bits 8 j + 6 - 2 p (low bit) and 8 j + 7 - 2 p. Then ``(word << 2 p) & 0xC0C0C0C0`` holds, in
byte j, the int8 64 v for k = 16 t + 4 p + j: four consecutive k in one register, which is how
an MMA fragment wants them, for one shift and one AND. Both operands are 64x their values, so the
int32 accumulator holds 4096 C, exact while K < 2^19 (the wrapper refuses more).

  a: (M, 2, W) format v1 -> (M, T) tc16 ┐
                                         ├ _xnor_tc_kernel: C tile (BM, BN), K step 128 -> C = acc >> 12
  b: (N, 2, W) format v1 -> (N, T) tc16 ┘

The conversion from format v1 is one memory-bound pass per operand (``to_tc_layout``); the loop
reads no masks: rows past M or N read the last valid row and their results are not stored.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .._checks import check_gemm
from .gemm import _store_c, _tile, gemm_output
from .launch import cdiv, launch

TC_K_STEP = 128  # values per loop iteration: BT = 8 words
MAX_K = 2**19 - 1  # 4096 K must fit the int32 accumulator


def tc_words(K: int) -> int:
    """Words per row of the tc16 layout for logical length K."""
    return 8 * ((K + TC_K_STEP - 1) // TC_K_STEP)


@triton.jit
def _to_tc_kernel(p_ptr, out_ptr, n_words, W, T, BLOCK: tl.constexpr):
    """Format v1 (R, 2, W) -> tc16 (R, T): one output word (16 values, half a v1 word pair) per lane."""
    i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = i < n_words
    r, t = i // T, i % T
    wi = t // 2
    m = live & (wi < W)
    g = tl.load(p_ptr + r * 2 * W + wi, mask=m, other=0)
    s = tl.load(p_ptr + r * 2 * W + W + wi, mask=m, other=0)
    sh = ((t % 2) * 16).to(tl.int32)
    g = (g >> sh) & 0xFFFF
    s = (s >> sh) & 0xFFFF
    out = tl.zeros((BLOCK,), dtype=tl.int32)
    for k in tl.static_range(16):
        pos = 8 * (k % 4) + 6 - 2 * (k // 4)
        out |= ((g >> k) & 1) << pos
        out |= ((s >> k) & 1) << (pos + 1)
    tl.store(out_ptr + i, out, mask=live)


@triton.jit
def _bytes_of(x, HW_ASM: tl.constexpr):
    """(R, C) int32 whose columns come in groups of 4 equal words -> (R, C) int8, byte j of the
    word at column 4 c + j. Compiled: an inline-asm move of the word, which LLVM cannot split
    into bytes and ptxas need not re-pack (shift-and-truncate costs a PRMT and a shift per byte);
    the interpreter, which has no inline asm, shifts and truncates."""
    if HW_ASM:
        return tl.inline_asm_elementwise("mov.b32 $0, $1;", "=r,r,r,r,r", [x], dtype=tl.int8, is_pure=True,
                                         pack=4)
    else:
        j = (tl.arange(0, x.shape[1]) % 4) * 8
        return (x >> j[None, :]).to(tl.int8)


@triton.jit
def _decode(w, HW_ASM: tl.constexpr):
    """(R, BT) tc16 words -> (R, 16 BT) int8 holding 64 v, k = 16 t + 4 p + j in column order."""
    MASK: tl.constexpr = -1061109568  # 0xC0C0C0C0: the top two bits of each byte
    b0 = w & MASK
    b1 = (w << 2) & MASK
    b2 = (w << 4) & MASK
    b3 = (w << 6) & MASK
    x = tl.join(tl.join(b0, b2), tl.join(b1, b3))  # (R, BT, 2, 2): plane p = 2 i + o at [.., i, o]
    x = tl.reshape(x, (w.shape[0], w.shape[1] * 4))
    x = tl.join(tl.join(x, x), tl.join(x, x))  # each plane word four times, in one thread
    return _bytes_of(tl.reshape(x, (w.shape[0], w.shape[1] * 16)), HW_ASM)


@triton.jit
def _xnor_tc_kernel(a_ptr, b_ptr, c_ptr, scale_ptr, bias_ptr, M, N, T,
                    HAS_SCALE: tl.constexpr, HAS_BIAS: tl.constexpr, FLOAT_OUT: tl.constexpr,
                    BM: tl.constexpr, BN: tl.constexpr, BT: tl.constexpr, HW_ASM: tl.constexpr):
    rm, rn = _tile(M, BM, BN)
    rt = tl.arange(0, BT)
    # rows start on 32-byte boundaries (T is a multiple of 8): vector loads of a row's BT words
    a_rows = a_ptr + tl.multiple_of(tl.minimum(rm, M - 1) * T, 8)[:, None] + rt[None, :]  # (BM, BT) pointers
    b_rows = b_ptr + tl.multiple_of(tl.minimum(rn, N - 1) * T, 8)[:, None] + rt[None, :]  # (BN, BT)
    acc = tl.zeros((BM, BN), dtype=tl.int32)
    for t0 in range(0, T, BT):
        t0 = tl.multiple_of(t0, 8)
        at = _decode(tl.load(a_rows + t0), HW_ASM)  # (BM, 16 BT) int8
        bt = _decode(tl.load(b_rows + t0), HW_ASM)  # (BN, 16 BT) int8
        acc = tl.dot(at, tl.trans(bt), acc, out_dtype=tl.int32)
    _store_c(acc >> 12, c_ptr, scale_ptr, bias_ptr, rm, rn, M, N, HAS_SCALE, HAS_BIAS, FLOAT_OUT)


def to_tc_layout(p: torch.Tensor, K: int, zero_rows: int = 0) -> torch.Tensor:
    """Format v1 (R, 2, W) int32 -> tc16 (R + zero_rows, T) int32 (reference twin:
    reference.to_tc_layout), the extra rows zero (a conv reads its padding taps there)."""
    p = p.contiguous()
    R, W, T = p.shape[0], p.shape[2], tc_words(K)
    out = torch.empty((R + zero_rows, T), dtype=torch.int32, device=p.device)
    if zero_rows:
        out[R:] = 0
    if R * T:
        launch("to_tc", cdiv(R * T, 1024), p, out, R * T, W, T, BLOCK=1024)
    return out


def tc_config(device: torch.device, M: int) -> tuple[str, int, int]:
    """(launch-table entry, BM, BN): a 16-row tile for M <= 16 (mma.sync, 4 warps: streams B, the
    memory-bound case); else 128 x 256 for wgmma on sm_90, 128 x 128 for mma.sync elsewhere."""
    if M <= 16:
        return "xnor_tc_skinny", 16, 256
    if device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 9:
        return "xnor_tc", 128, 256
    return "xnor_tc", 128, 128


def xnor_gemm_tc(a, b, K, scale=None, bias=None):
    """Triton twin of reference.xnor_gemm on int8 tensor cores (operands converted to tc16 here)."""
    check_gemm(a, b, K, scale, bias)
    torch._check(K <= MAX_K, lambda: f"K: expected at most {MAX_K} for the int8 tensor-core path (the int32 "
                 f"accumulator holds 4096 C), got {K}")
    return tc_gemm(tc_operand(a, K), tc_operand(b, K), scale, bias)


def tc_operand(t: torch.Tensor, K: int, rows: int | None = None) -> torch.Tensor:
    """tc16 words of t, read as ``rows`` rows (default t.shape[0]) of packed length K (a conv weight
    (O, kh, kw, 2, Wg) is O kh kw rows). A discrete weight keeps its conversion (attribute
    ``gxnor_tc``) until a write changes its stamp (optim.stamp_of; DST bumps the version): one
    layout pass per optimizer step, not per call, for twice the weight's packed memory."""
    from ..optim import derived

    rows = t.shape[0] if rows is None else rows
    return derived(t, "gxnor_tc", (K, rows), lambda: to_tc_layout(t.contiguous().reshape(rows, 2, t.shape[-1]), K))


def tc_gemm(at, bt, scale=None, bias=None):
    """C = A B^T from tc16 operands at (M, T), bt (N, T): int32, or float32 C * scale + bias."""
    M, N = at.shape[0], bt.shape[0]
    out, sc, bi, flags = gemm_output(M, N, scale, bias, at.device)
    if M == 0 or N == 0:
        return out
    name, BM, BN = tc_config(at.device, M)
    launch(name, cdiv(M, BM) * cdiv(N, BN), at, bt, out, sc, bi, M, N, at.shape[1], **flags, BM=BM, BN=BN, BT=8)
    return out
