"""Argument checks of xnor_conv2d (and its weight gradient), shared by the reference, Triton and fake implementations.

The C++ and CUDA bindings carry the same checks in csrc/bind/conv_checks.h.
"""

from __future__ import annotations

import torch

from . import format as fmt
from ._checks import check_same_device

_LIMIT = 2**31  # padded input sizes and kernel extents: the kernels index rows and taps in 32 bits
_OUT_LIMIT = 2**48  # output elements


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pair(v, name: str) -> tuple[int, int]:
    t = (v, v) if _is_int(v) else tuple(v) if isinstance(v, (list, tuple)) else None
    torch._check(t is not None and len(t) == 2 and all(_is_int(e) for e in t),
                 lambda: f"{name}: expected an int or 2 ints, got {v!r}")
    return int(t[0]), int(t[1])


def conv_out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def check_conv_spec(stride, padding, dilation):
    """stride, padding, dilation as pairs: stride and dilation >= 1, padding >= 0."""
    s, p, d = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    torch._check(min(s) >= 1, lambda: f"stride: expected ints >= 1, got {list(s)}")
    torch._check(min(d) >= 1, lambda: f"dilation: expected ints >= 1, got {list(d)}")
    torch._check(min(p) >= 0, lambda: f"padding: expected ints >= 0, got {list(p)}")
    return s, p, d


def check_conv(x, w, C, stride, padding, dilation, groups, scale=None, bias=None):
    """Validates xnor_conv2d arguments; returns (N, H, Wd, G, Wg, O, kh, kw, s, p, d, Ho, Wo)."""
    s, p, d = check_conv_spec(stride, padding, dilation)
    torch._check(isinstance(groups, int) and groups >= 1, lambda: f"groups: expected an int >= 1, got {groups!r}")
    torch._check(isinstance(C, int) and C >= 1, lambda: f"C: expected the input channel count >= 1, got {C!r}")
    torch._check(C % groups == 0, lambda: f"groups: expected a divisor of C = {C}, got {groups}")
    for name, t in (("x", x), ("w", w)):
        torch._check(t.dtype == torch.int32, lambda n=name, t=t: f"{n}: expected packed dtype torch.int32, got "
                     f"{t.dtype}")
    torch._check(
        x.dim() == 6 or (x.dim() == 5 and groups == 1),
        lambda: f"x: expected packed channels-last activations (N, H, W, 2, Wc) or (N, H, W, groups, 2, Wg) "
        f"(groups = {groups}), got shape {tuple(x.shape)}",
    )
    xs = tuple(x.shape) if x.dim() == 6 else (*x.shape[:3], 1, *x.shape[3:])
    N, H, Wd, G, two, Wg = xs
    Wg_want = fmt.packed_words(C // groups)
    torch._check(G == groups and two == 2 and Wg == Wg_want,
                 lambda: f"x: expected shape (N, H, W, {groups}, 2, {Wg_want}) for C = {C} in {groups} group(s) "
                 f"(W = 2*ceil(C/groups/64)), got {tuple(x.shape)}")
    torch._check(w.dim() == 5 and w.shape[3] == 2,
                 lambda: f"w: expected packed weights (O, kh, kw, 2, Wg), got shape {tuple(w.shape)}")
    O, kh, kw, _, wWg = w.shape
    torch._check(wWg == Wg_want, lambda: f"w: expected Wg = {Wg_want} words for C/groups = {C // groups} channels, "
                 f"got shape {tuple(w.shape)}")
    torch._check(O % groups == 0, lambda: f"w: expected out channels O divisible by groups = {groups}, got O = {O}")
    torch._check(kh >= 1 and kw >= 1, lambda: f"w: expected a kernel of size >= 1, got shape {tuple(w.shape)}")
    torch._check(O >= 1, lambda: f"w: expected O >= 1 output channels, got shape {tuple(w.shape)}")
    for i, (size, k) in enumerate(((H, kh), (Wd, kw))):
        torch._check(size + 2 * p[i] < _LIMIT, lambda i=i, size=size: f"padding: expected input size + 2 * padding "
                     f"< 2^31 (32-bit indices), got size {size} and padding {list(p)}")
        torch._check(d[i] * (k - 1) + 1 < _LIMIT, lambda i=i, k=k: f"dilation: expected dilation * (kernel - 1) + 1 "
                     f"< 2^31 (32-bit indices), got kernel {k} and dilation {list(d)}")
    check_same_device("x", x, "w", w)
    Ho, Wo = conv_out_size(H, kh, s[0], p[0], d[0]), conv_out_size(Wd, kw, s[1], p[1], d[1])
    torch._check(
        Ho >= 1 and Wo >= 1,
        lambda: f"w: expected a kernel ({kh}, {kw}) with dilation {list(d)} no larger than the padded input "
        f"({H + 2 * p[0]}, {Wd + 2 * p[1]}), got output size ({Ho}, {Wo})",
    )
    torch._check(N * O * Ho * Wo < _OUT_LIMIT, lambda: f"padding: expected an output (N, O, Ho, Wo) of fewer than "
                 f"2^48 elements, got ({N}, {O}, {Ho}, {Wo}) with padding {list(p)} and stride {list(s)}")
    for name, v in (("scale", scale), ("bias", bias)):
        if v is None:
            continue
        torch._check(v.dtype == torch.float32, lambda n=name, v=v: f"{n}: expected dtype torch.float32, got {v.dtype}")
        torch._check(v.dim() == 1 and v.shape[0] == O,
                     lambda n=name, v=v: f"{n}: expected shape (O,) = ({O},), got {tuple(v.shape)}")
        check_same_device("x", x, name, v)
    return N, H, Wd, G, Wg, O, kh, kw, s, p, d, Ho, Wo


def check_conv_pool_output(Ho: int, Wo: int) -> None:
    """xnor_conv2d_maxpool2x2: a conv output holding at least one 2 x 2 window."""
    torch._check(Ho >= 2 and Wo >= 2,
                 lambda: f"x: expected a conv output of at least 2 x 2 for the 2 x 2 pool, got ({Ho}, {Wo})")


def check_conv_grad_out(grad_out, x, N, O, Ho, Wo) -> None:
    """grad_out of xnor_conv2d_weight_grad: (N, O, Ho, Wo) float32 on the device of x."""
    torch._check(grad_out.dtype == torch.float32,
                 lambda: f"grad_out: expected dtype torch.float32, got {grad_out.dtype}")
    torch._check(tuple(grad_out.shape) == (N, O, Ho, Wo),
                 lambda: f"grad_out: expected shape (N, O, Ho, Wo) = ({N}, {O}, {Ho}, {Wo}) (the conv's output), "
                 f"got {tuple(grad_out.shape)}")
    check_same_device("x", x, "grad_out", grad_out)


def alloc_named(shape, like: torch.Tensor, dtype: torch.dtype, zero: bool = False) -> torch.Tensor:
    """An output buffer; a failed allocation says which arguments made it that large."""
    try:
        return like.new_zeros(shape, dtype=dtype) if zero else like.new_empty(shape, dtype=dtype)
    except (MemoryError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and "alloc" not in str(e):
            raise
        raise RuntimeError(f"padding, stride: the output of shape {tuple(shape)} (from the input size, padding and "
                           "stride) could not be allocated") from e


def conv_out_empty(x, O, N, Ho, Wo, float_out: bool) -> torch.Tensor:
    """(N, O, Ho, Wo) int32/float32 in channels-last memory (what the implicit GEMM writes)."""
    dt = torch.float32 if float_out else torch.int32
    return alloc_named((N, Ho, Wo, O), x, dt).permute(0, 3, 1, 2)


def pairs(stride, padding, dilation) -> list[list[int]]:
    """stride, padding, dilation as lists of 2 ints (the op schemas take int[2]); bad values name the argument."""
    return [list(_pair(stride, "stride")), list(_pair(padding, "padding")), list(_pair(dilation, "dilation"))]


def _check_float_input(x) -> None:
    torch._check(x.dtype == torch.float32, lambda: f"x: expected dtype torch.float32, got {x.dtype}")
    torch._check(x.dim() == 4, lambda: f"x: expected shape (N, C, H, W), got {tuple(x.shape)}")


def _pool_geometry(x, kh, kw, stride, padding, dilation):
    """(s, p, d, Ho, Wo) of the conv before conv2d_maxpool2x2's pool; its output must hold a 2 x 2 window."""
    s, p, d = check_conv_spec(stride, padding, dilation)
    H, Wd = x.shape[2], x.shape[3]
    for i, (size, k) in enumerate(((H, kh), (Wd, kw))):
        torch._check(size + 2 * p[i] < _LIMIT and d[i] * (k - 1) + 1 < _LIMIT,
                     lambda i=i, size=size, k=k: f"padding: expected padded input size and dilated kernel < 2^31 "
                     f"(32-bit indices), got size {size}, kernel {k}, padding {list(p)}, dilation {list(d)}")
    Ho, Wo = conv_out_size(H, kh, s[0], p[0], d[0]), conv_out_size(Wd, kw, s[1], p[1], d[1])
    torch._check(Ho >= 2 and Wo >= 2,
                 lambda: f"x: expected a conv output of at least 2 x 2 for the 2 x 2 pool, got ({max(Ho, 0)}, "
                 f"{max(Wo, 0)}) from input ({H}, {Wd}), kernel ({kh}, {kw}), stride {list(s)}, padding {list(p)}, "
                 f"dilation {list(d)}")
    return s, p, d, Ho, Wo


def check_conv_maxpool2x2(x, w, stride, padding, dilation):
    """conv2d_maxpool2x2: x (N, C, H, W) and w (O, C, kh, kw) float32 on one device. Returns (s, p, d, Ho, Wo)."""
    _check_float_input(x)
    torch._check(w.dtype == torch.float32, lambda: f"w: expected dtype torch.float32, got {w.dtype}")
    torch._check(w.dim() == 4 and w.shape[1] == x.shape[1] and min(w.shape) >= 1,
                 lambda: f"w: expected shape (O, C, kh, kw) with C = {x.shape[1]} (x's channels) and every size "
                 f">= 1, got {tuple(w.shape)}")
    check_same_device("x", x, "w", w)
    return _pool_geometry(x, w.shape[2], w.shape[3], stride, padding, dilation)


def check_conv_maxpool2x2_weight_grad(grad, argmax, x, kernel_size, stride, padding, dilation):
    """conv2d_maxpool2x2_weight_grad: grad (N, O, Ho // 2, Wo // 2) float32, argmax its uint8 twin, x as the
    forward's. Returns (kh, kw, s, p, d, Ho, Wo)."""
    _check_float_input(x)
    kh, kw = _pair(kernel_size, "kernel_size")
    torch._check(kh >= 1 and kw >= 1, lambda: f"kernel_size: expected ints >= 1, got {[kh, kw]}")
    s, p, d, Ho, Wo = _pool_geometry(x, kh, kw, stride, padding, dilation)
    torch._check(grad.dtype == torch.float32, lambda: f"grad: expected dtype torch.float32, got {grad.dtype}")
    torch._check(argmax.dtype == torch.uint8, lambda: f"argmax: expected dtype torch.uint8, got {argmax.dtype}")
    want = (x.shape[0], Ho // 2, Wo // 2)
    torch._check(grad.dim() == 4 and (grad.shape[0], *grad.shape[2:]) == want and grad.shape[1] >= 1,
                 lambda: f"grad: expected shape (N, O, Ho // 2, Wo // 2) = ({want[0]}, O, {want[1]}, {want[2]}) "
                 f"(the pooled conv output), got {tuple(grad.shape)}")
    torch._check(argmax.shape == grad.shape,
                 lambda: f"argmax: expected grad's shape {tuple(grad.shape)}, got {tuple(argmax.shape)}")
    check_same_device("x", x, "grad", grad)
    check_same_device("x", x, "argmax", argmax)
    return kh, kw, s, p, d, Ho, Wo
