"""Pure-torch reference implementations: the oracle every backend is tested against.

Small, obviously correct code in int64/float64. Every kernel in csrc/ and _triton/ has a twin
here with the same signature and the same checks.
"""

from __future__ import annotations

import torch

from . import format as fmt
from ._checks import (
    check_gemm,
    check_out_dtype,
    check_pack_input,
    check_packed,
    check_ternary_matmul,
    check_threshold,
)

_SHIFTS = torch.arange(fmt.BITS_PER_WORD, dtype=torch.int64)


def _to_int32_bits(v: torch.Tensor) -> torch.Tensor:
    """int64 values in [0, 2^32) -> int32 with the same 32 bits."""
    return torch.where(v >= 2**31, v - 2**32, v).to(torch.int32)


def _words_from_bits(bits: torch.Tensor, W: int) -> torch.Tensor:
    """bits: (..., K) bool -> (..., W) int32 words, LSB first, zero padded."""
    K = bits.shape[-1]
    pad = fmt.BITS_PER_WORD * W - K
    b = torch.nn.functional.pad(bits.to(torch.int64), (0, pad))
    b = b.reshape(*bits.shape[:-1], W, fmt.BITS_PER_WORD)
    return _to_int32_bits((b << _SHIFTS.to(b.device)).sum(-1))


def _bits_from_words(words: torch.Tensor, K: int) -> torch.Tensor:
    """words: (..., W) int32 -> (..., K) bool."""
    w = words.to(torch.int64) & 0xFFFFFFFF
    b = (w.unsqueeze(-1) >> _SHIFTS.to(w.device)) & 1
    return b.reshape(*words.shape[:-1], words.shape[-1] * fmt.BITS_PER_WORD)[..., :K].bool()


def pack_ternary(x: torch.Tensor, threshold: float | None = None) -> torch.Tensor:
    """Pack a dense ternary tensor.

    x: (..., K) float32/float64/float16/bfloat16/int8/int32/int64 with values in {-1, 0, +1}
       (or any real values when ``threshold`` is given: phi_r is applied first).
    returns: (..., 2, W) int32, W = 2 * ceil(K / 64), canonical.
    """
    check_pack_input(x, "x", allow_any_values=threshold is not None)
    if threshold is not None:
        return quantize_pack(x, threshold)
    xi = x.to(torch.float64)
    bad = ~((xi == 0) | (xi == 1) | (xi == -1))
    torch._check(
        not bool(bad.any()),
        lambda: f"x: expected values in {{-1, 0, +1}} (or pass threshold=), got {int(bad.sum())} element(s) "
        f"outside that set, first {xi[bad].flatten()[:4].tolist()}",
    )
    W = fmt.packed_words(x.shape[-1])
    gate = _words_from_bits(xi != 0, W)
    sign = _words_from_bits(xi < 0, W)
    return torch.stack([gate, sign], dim=-2)


def quantize_pack(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """phi_r then pack: +1 where x >= r, -1 where x <= -r, else 0 (NaN -> 0).

    x: (..., K) floating; threshold: r > 0. returns: (..., 2, W) int32.
    """
    check_pack_input(x, "x", allow_any_values=True)
    check_threshold(threshold)
    r = float(torch.tensor(threshold, dtype=torch.float32))  # kernels compare in float32
    xf = x.to(torch.float32).to(torch.float64)
    pos, neg = xf >= r, xf <= -r
    W = fmt.packed_words(x.shape[-1])
    return torch.stack([_words_from_bits(pos | neg, W), _words_from_bits(neg, W)], dim=-2)


def unpack_ternary(
    packed: torch.Tensor, K: int, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Unpack to dense values.

    packed: (..., 2, W) int32, canonical. returns: (..., K) ``dtype`` (int8 or a float type).
    """
    check_packed(packed, "packed", K)
    dtype = torch.int8 if dtype is None else dtype
    check_out_dtype(dtype)
    gate = _bits_from_words(packed[..., 0, :], K)
    sign = _bits_from_words(packed[..., 1, :], K)
    v = gate.to(torch.int8) * (1 - 2 * sign.to(torch.int8))
    return v.to(dtype)


def count_noncanonical(packed: torch.Tensor, K: int) -> torch.Tensor:
    """Count non-canonical words: sign bits without gate bits, or bits set in the padding.

    packed: (..., 2, W) int32. returns: () int64, 0 when canonical.
    """
    check_packed(packed, "packed", K)
    W = packed.shape[-1]
    mask = torch.tensor([fmt.valid_mask(w, K) for w in range(W)], dtype=torch.int64)
    g = packed[..., 0, :].to(torch.int64) & 0xFFFFFFFF
    s = packed[..., 1, :].to(torch.int64) & 0xFFFFFFFF
    m = mask.to(packed.device)
    bad = ((s & ~g) != 0) | ((g & ~m) != 0) | ((s & ~m) != 0)
    return bad.sum().to(torch.int64)


def xnor_gemm(
    a: torch.Tensor, b: torch.Tensor, K: int, scale: torch.Tensor | None = None, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Exact ternary GEMM: a_dense @ b_dense.T.

    a: (M, 2, W) int32 packed, b: (N, 2, W) int32 packed, both along K.
    scale, bias: optional (N,) float32 -> returns (M, N) float32 = C * scale + bias;
    otherwise returns (M, N) int32.
    """
    check_gemm(a, b, K, scale, bias)
    ad = unpack_ternary(a, K).to(torch.int64)
    bd = unpack_ternary(b, K).to(torch.int64)
    return gemm_epilogue((ad @ bd.T).to(torch.int32), scale, bias)


def gemm_epilogue(c: torch.Tensor, scale: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
    """The int32 C itself, or float32 C * scale + bias (in that order, as every backend rounds it)."""
    if scale is None and bias is None:
        return c
    out = c.to(torch.float32)
    if scale is not None:
        out = out * scale
    if bias is not None:
        out = out + bias
    return out


def to_tc_layout(packed: torch.Tensor, K: int) -> torch.Tensor:
    """Format v1 (R, 2, W) -> the tensor-core layout tc16 (R, T) int32 (gxnor_cuda/_triton/tc.py):
    T = 8 ceil(K / 128); value k = 16 t + 4 p + j of a row is the 2-bit two's complement code at
    bits 8 j + 6 - 2 p and 8 j + 7 - 2 p of word t, zero past K."""
    check_packed(packed, "packed", K)
    R, T = packed.shape[0], 8 * ((K + 127) // 128)
    v = torch.zeros((R, 16 * T), dtype=torch.int64, device=packed.device)
    v[:, :K] = unpack_ternary(packed, K).to(torch.int64)
    code = (v & 3).reshape(R, T, 4, 4)  # [.., p, j]
    p, j = torch.arange(4).reshape(4, 1), torch.arange(4).reshape(1, 4)
    shift = (8 * j + 6 - 2 * p).to(packed.device)
    return _to_int32_bits((code << shift).sum(dim=(2, 3)))


def bf16_layout_words(n: int) -> int:
    """Words per row of the bf16 tensor-core layout tb16 for rows of n values (whole 64-value steps)."""
    return 4 * ((n + 63) // 64)


def to_bf16_layout(packed: torch.Tensor, K: int, transpose: bool = False) -> torch.Tensor:
    """Format v1 (R, 2, W) -> the bf16 tensor-core layout tb16 (csrc/gxnor/cuda/bf16_gemm.cu) int32:
    (R, Tq) with value 16 q + j of a row in word q, or with ``transpose`` the rows of the (K, R)
    transpose, (K, Tq). Value j's gate bit is at bit 14 - 2 (j >> 1) + 16 (j & 1), its sign bit one
    above, so (word << s) & 0xC000C000 is a bf16 pair of 2x the values; Tq = bf16_layout_words(length)."""
    check_packed(packed, "packed", K)
    v = unpack_ternary(packed, K).to(torch.int64)
    if transpose:
        v = v.T
    rows, n = v.shape
    Tq = bf16_layout_words(n)
    full = torch.zeros((rows, 16 * Tq), dtype=torch.int64, device=packed.device)
    full[:, :n] = v
    code = torch.where(full > 0, 1, torch.where(full < 0, 3, 0)).reshape(rows, Tq, 16)  # (gate, sign)
    j = torch.arange(16, device=packed.device)
    return _to_int32_bits((code << (14 - 2 * (j >> 1) + 16 * (j & 1))).sum(dim=2))


def ternary_matmul(x: torch.Tensor, w: torch.Tensor, K: int, nn: bool = False) -> torch.Tensor:
    """Float x ternary, accumulated in float64 here (the oracle).

    NT (nn=False): x (M, K) @ w_dense.T -> (M, N).  NN (nn=True): x (M, N) @ w_dense -> (M, K).
    w: (N, 2, W) int32 packed along K. Returns x.dtype.
    """
    check_ternary_matmul(x, w, K, nn)
    wd = unpack_ternary(w, K, torch.float64)
    out = x.to(torch.float64) @ (wd if nn else wd.T)
    return out.to(x.dtype)


def _dense_conv_input(x, N, H, Wd, G, Wg, C):
    """Packed conv activations (N, H, W[, G], 2, Wg) -> dense float64 (N, C, H, W)."""
    xd = unpack_ternary(x.reshape(N, H, Wd, G, 2, Wg), C // G, torch.float64)  # (N, H, W, G, C/G)
    return xd.reshape(N, H, Wd, C).permute(0, 3, 1, 2)


def xnor_conv2d(x, w, C, stride=1, padding=0, dilation=1, groups=1, scale=None, bias=None):
    """Exact ternary conv2d on packed channels-last operands (float64 F.conv2d on dense values).

    x: (N, H, W, 2, Wc) or (N, H, W, groups, 2, Wg) int32, w: (O, kh, kw, 2, Wg) int32.
    returns: (N, O, Ho, Wo) int32 (float32 with scale/bias (O,)), channels-last memory.
    """
    from ._conv_checks import check_conv, conv_out_empty

    N, H, Wd, G, Wg, O, kh, kw, s, p, d, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups,
                                                             scale, bias)
    Cg = C // groups
    fl = scale is not None or bias is not None
    out = conv_out_empty(x, O, N, Ho, Wo, fl)  # first: a size that cannot be allocated is refused by name
    if N * H * Wd == 0:  # an empty input: torch's conv refuses it; every output position is padding (zero)
        y = torch.zeros((N, O, Ho, Wo), dtype=torch.float64, device=x.device)
    else:
        xd = _dense_conv_input(x, N, H, Wd, G, Wg, C)
        wd = unpack_ternary(w, Cg, torch.float64).permute(0, 3, 1, 2)  # (O, Cg, kh, kw)
        y = torch.nn.functional.conv2d(xd, wd, None, s, p, d, groups)
    if not fl:
        return out.copy_(torch.round(y).to(torch.int32))
    # the kernels' epilogue: the exact sum to float32, times scale, plus bias, each rounded in float32
    y = torch.round(y).to(torch.float32)
    if scale is not None:
        y = y * scale[:, None, None]
    if bias is not None:
        y = y + bias[:, None, None]
    return out.copy_(y)



def xnor_conv2d_weight_grad(grad_out, x, w, C, stride=1, padding=0, dilation=1, groups=1):
    """Weight gradient of ``xnor_conv2d(x, w)`` for float grad_out (float64 convolution_backward on
    the dense activations).

    grad_out: (N, O, Ho, Wo) float32, x: packed activations as xnor_conv2d, w: (O, kh, kw, 2, Wg)
    int32 (its shape only). returns: (O, kh, kw, C/groups) float32 (the stored weight layout).
    """
    from ._conv_checks import check_conv, check_conv_grad_out

    N, H, Wd, G, Wg, O, kh, kw, s, p, d, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups)
    check_conv_grad_out(grad_out, x, N, O, Ho, Wo)
    xd = _dense_conv_input(x, N, H, Wd, G, Wg, C)
    wd = xd.new_zeros((O, C // groups, kh, kw))
    gw = torch.ops.aten.convolution_backward(grad_out.double(), xd, wd, None, s, p, d, False, [0, 0], groups,
                                             [False, True, False])[1]
    return gw.permute(0, 2, 3, 1).float().contiguous()


def conv2d_then_pack(conv, qpack):
    """``xnor_conv2d_pack`` from a ``xnor_conv2d`` and a ``quantize_pack`` implementation: the conv's
    float32 result (acc * scale + bias), channels-last, thresholded and packed. The reference twin;
    the Triton and CUDA kernels fuse the two, and compose them only where a group's outputs share a
    packed word (groups > 1, O / groups not a multiple of 32)."""

    def xnor_conv2d_pack(x, w, C, threshold, stride=1, padding=0, dilation=1, groups=1, scale=None, bias=None):
        """returns: (N, Ho, Wo, 2, Wo_words) int32 = quantize_pack(y.permute(0, 2, 3, 1), threshold)."""
        check_threshold(threshold)
        y = conv(x, w, C, stride, padding, dilation, groups, scale, bias)
        return qpack(y.to(torch.float32).permute(0, 2, 3, 1), threshold)

    return xnor_conv2d_pack


xnor_conv2d_pack = conv2d_then_pack(xnor_conv2d, quantize_pack)


def conv2d_then_maxpool2x2(conv):
    """``xnor_conv2d_maxpool2x2`` from a ``xnor_conv2d`` implementation: its accumulators as float32,
    then maxpool2x2 (the reference twin). The C++ kernel pools each chunk of conv rows as it is
    written, the Triton kernels in the conv epilogue (_triton/xnor_conv_pool.py)."""

    def xnor_conv2d_maxpool2x2(x, w, C, stride=1, padding=0, dilation=1, groups=1):
        """(maxima, uint8 argmax), both (N, O, Ho // 2, Wo // 2) channels-last."""
        from ._conv_checks import check_conv, check_conv_pool_output

        *_, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups)
        check_conv_pool_output(Ho, Wo)
        ones = torch.ones(w.shape[0], device=x.device)
        return maxpool2x2(conv(x, w, C, stride, padding, dilation, groups, ones))

    return xnor_conv2d_maxpool2x2


xnor_conv2d_maxpool2x2 = conv2d_then_maxpool2x2(xnor_conv2d)


def maxpool2x2(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """nn.MaxPool2d(2) on float32 x (N, C, H, W): (maxima, argmax), argmax the uint8 window position
    2 dy + dx of each maximum (torch's kernel: its tie and NaN rules), both in x's memory format."""
    from ._checks import check_maxpool2x2
    from ._ops import pool_out

    check_maxpool2x2(x)
    y, idx = torch.nn.functional.max_pool2d_with_indices(x, 2)
    W = x.shape[3]
    oy = torch.arange(y.shape[2], device=x.device).view(-1, 1)
    ox = torch.arange(y.shape[3], device=x.device).view(1, -1)
    arg = (idx // W - 2 * oy) * 2 + (idx % W - 2 * ox)
    out, a = pool_out(x, y.shape, x.dtype), pool_out(x, y.shape, torch.uint8)
    return out.copy_(y), a.copy_(arg)


def maxpool2x2_backward(grad: torch.Tensor, argmax: torch.Tensor, H: int, W: int) -> torch.Tensor:
    """The input gradient (N, C, H, W) of maxpool2x2: grad at each window's argmax, 0 elsewhere
    (and in the odd last row / column the pool drops), in argmax's memory format."""
    from ._checks import check_maxpool2x2_backward
    from ._ops import pool_out

    check_maxpool2x2_backward(grad, argmax, H, W)
    n, c, ho, wo = grad.shape
    full = torch.zeros((n, c, ho, 2, wo, 2), dtype=grad.dtype, device=grad.device)
    for k in range(4):
        full[:, :, :, k // 2, :, k % 2] = torch.where(argmax == k, grad, 0.0)
    out = pool_out(argmax, (n, c, H, W), grad.dtype).zero_()
    out[:, :, : 2 * ho, : 2 * wo] = full.reshape(n, c, 2 * ho, 2 * wo)
    return out


def conv2d_maxpool2x2(x: torch.Tensor, w: torch.Tensor, stride=1, padding=0, dilation=1):
    """maxpool2x2(conv2d(x, w)) for float32 x (N, C, H, W), w (O, C, kh, kw): (maxima, uint8 argmax), both
    (N, O, Ho // 2, Wo // 2) channels-last, the conv computed in float64 and rounded once."""
    from ._conv_checks import check_conv_maxpool2x2
    from ._ops import channels_last_empty

    s, p, d, *_ = check_conv_maxpool2x2(x, w, stride, padding, dilation)
    y = torch.nn.functional.conv2d(x.double(), w.double(), None, s, p, d).float()
    m, a = maxpool2x2(y.contiguous(memory_format=torch.channels_last))
    return (channels_last_empty(m.shape, x, torch.float32).copy_(m),
            channels_last_empty(m.shape, x, torch.uint8).copy_(a))


def conv2d_maxpool2x2_weight_grad(grad: torch.Tensor, argmax: torch.Tensor, x: torch.Tensor, kernel_size, stride=1,
                                  padding=0, dilation=1) -> torch.Tensor:
    """The weight gradient (O, C, kh, kw) channels-last of conv2d_maxpool2x2 from the pooled gradient: grad
    at each window's argmax, the conv's weight gradient of that (float64, rounded once). Positions the
    pool did not pick contribute nothing (not 0 * x, which is NaN for an infinite x)."""
    from ._conv_checks import check_conv_maxpool2x2_weight_grad
    from ._ops import channels_last_empty

    kh, kw, s, p, d, Ho, Wo = check_conv_maxpool2x2_weight_grad(grad, argmax, x, kernel_size, stride, padding,
                                                                dilation)
    gi = maxpool2x2_backward(grad, argmax, Ho, Wo).double().flatten(2)  # (N, O, Ho Wo)
    xd = torch.nn.functional.pad(x.double(), (p[1], p[1], p[0], p[0]))
    cols = torch.nn.functional.unfold(xd, (kh, kw), dilation=d, stride=s)  # (N, C kh kw, Ho Wo)
    if bool(cols.isfinite().all()):
        gw = torch.einsum("nol,nkl->ok", gi, cols)
    else:  # an infinite or NaN x: only the picked positions' products, sample by sample
        picked = maxpool2x2_backward(torch.ones_like(grad), argmax, Ho, Wo).flatten(2) != 0
        gw = sum(torch.where(picked[i, :, None], gi[i, :, None] * cols[i, None], 0.0).sum(-1)
                 for i in range(x.shape[0]))
    out = channels_last_empty((grad.shape[1], x.shape[1], kh, kw), x, torch.float32)
    return out.copy_(gw.view(grad.shape[1], x.shape[1], kh, kw))


def accumulator_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A ternary layer's integer accumulators x (N, C) or (N, C, H, W) float32 -> (its int16 copy in x's
    memory format, (2, C) int64: per-channel sums and sums of squares), exact; BatchNorm's batch
    statistics in training (nn.IntBatchNorm2d). Refuses a value that is not an integer in int16's range."""
    from ._checks import bad_accumulator_message, check_accumulator_stats
    from ._ops import stats_outputs

    check_accumulator_stats(x)
    ok = (x >= -32768) & (x <= 32767) & (x == torch.trunc(x))  # NaN fails every compare
    q, sums = stats_outputs(x)
    if not bool(ok.all()):  # the first bad value in the memory order of q (as the native kernels report it)
        order = (lambda t: t.permute(0, 2, 3, 1)) if q.dim() == 4 and not q.is_contiguous() else (lambda t: t)
        raise RuntimeError(bad_accumulator_message(float(order(x)[~order(ok)][0])))
    q.copy_(x)
    qi = q.to(torch.int64)
    dims = [0, *range(2, x.dim())]
    sums[0], sums[1] = qi.sum(dims), (qi * qi).sum(dims)
    return q, sums
