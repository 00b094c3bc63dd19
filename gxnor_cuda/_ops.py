"""The ONE place op schemas are defined (torch.library, namespace ``gxnor``), with fake impls.

Kernels register themselves per dispatch key: the native library (csrc/bind) for CPU and CUDA;
where it is missing, ``_backend.py`` registers the Triton or reference twins and records why.
"""

from __future__ import annotations

import torch

from . import format as fmt
from ._checks import (
    check_accumulator_stats,
    check_dst,
    check_gemm,
    check_maxpool2x2,
    check_maxpool2x2_backward,
    check_out_dtype,
    check_pack_input,
    check_packed,
    check_ternary_matmul,
    check_threshold,
)
from ._conv_checks import (
    check_conv,
    check_conv_grad_out,
    check_conv_maxpool2x2,
    check_conv_maxpool2x2_weight_grad,
    check_conv_pool_output,
    conv_out_empty,
)

LIB = torch.library.Library("gxnor", "DEF")  # noqa: TOR901

SCHEMAS = {
    "pack_ternary": "pack_ternary(Tensor x, float? threshold=None) -> Tensor",
    "quantize_pack": "quantize_pack(Tensor x, float threshold) -> Tensor",
    "unpack_ternary": "unpack_ternary(Tensor packed, int K, ScalarType? dtype=None) -> Tensor",
    "count_noncanonical": "count_noncanonical(Tensor packed, int K) -> Tensor",
    "xnor_gemm": "xnor_gemm(Tensor a, Tensor b, int K, Tensor? scale=None, Tensor? bias=None) -> Tensor",
    "ternary_matmul": "ternary_matmul(Tensor x, Tensor w, int K, bool nn=False) -> Tensor",
    "xnor_conv2d": "xnor_conv2d(Tensor x, Tensor w, int C, int[2] stride=1, int[2] padding=0, int[2] dilation=1, "
    "int groups=1, Tensor? scale=None, Tensor? bias=None) -> Tensor",
    "xnor_conv2d_pack": "xnor_conv2d_pack(Tensor x, Tensor w, int C, float threshold, int[2] stride=1, "
    "int[2] padding=0, int[2] dilation=1, int groups=1, Tensor? scale=None, Tensor? bias=None) -> Tensor",
    "xnor_conv2d_weight_grad": "xnor_conv2d_weight_grad(Tensor grad_out, Tensor x, Tensor w, int C, "
    "int[2] stride=1, int[2] padding=0, int[2] dilation=1, int groups=1) -> Tensor",
    "dst_update_": "dst_update_(Tensor(a!) w, Tensor grad, float lr, float m, int seed, int offset, "
    "bool increment=False, int rng=2, bool check=True) -> Tensor",
    "dst_update_states_": "dst_update_states_(Tensor(a!) s, Tensor grad, float lr, float m, int n_states, "
    "int seed, int offset, bool increment=False, int rng=2, bool check=True) -> Tensor",
    "maxpool2x2": "maxpool2x2(Tensor x) -> (Tensor, Tensor)",
    "maxpool2x2_backward": "maxpool2x2_backward(Tensor grad, Tensor argmax, int H, int W) -> Tensor",
    "xnor_conv2d_maxpool2x2": "xnor_conv2d_maxpool2x2(Tensor x, Tensor w, int C, int[2] stride=1, int[2] padding=0, "
    "int[2] dilation=1, int groups=1) -> (Tensor, Tensor)",
    "conv2d_maxpool2x2": "conv2d_maxpool2x2(Tensor x, Tensor w, int[2] stride=1, int[2] padding=0, "
    "int[2] dilation=1) -> (Tensor, Tensor)",
    "conv2d_maxpool2x2_weight_grad": "conv2d_maxpool2x2_weight_grad(Tensor grad, Tensor argmax, Tensor x, "
    "int[2] kernel_size, int[2] stride=1, int[2] padding=0, int[2] dilation=1) -> Tensor",
    "accumulator_stats": "accumulator_stats(Tensor x) -> (Tensor, Tensor)",
}
for _schema in SCHEMAS.values():
    LIB.define(_schema)


@torch.library.register_fake("gxnor::pack_ternary")
def _pack_ternary_fake(x, threshold=None):
    check_pack_input(x, "x", allow_any_values=threshold is not None)
    if threshold is not None:
        check_threshold(threshold)
    return x.new_empty(fmt.packed_shape(tuple(x.shape)), dtype=torch.int32)


@torch.library.register_fake("gxnor::quantize_pack")
def _quantize_pack_fake(x, threshold):
    check_pack_input(x, "x", allow_any_values=True)
    check_threshold(threshold)
    return x.new_empty(fmt.packed_shape(tuple(x.shape)), dtype=torch.int32)


@torch.library.register_fake("gxnor::unpack_ternary")
def _unpack_ternary_fake(packed, K, dtype=None):
    check_packed(packed, "packed", K)
    dtype = torch.int8 if dtype is None else dtype
    check_out_dtype(dtype)
    return packed.new_empty((*packed.shape[:-2], K), dtype=dtype)


@torch.library.register_fake("gxnor::count_noncanonical")
def _count_noncanonical_fake(packed, K):
    check_packed(packed, "packed", K)
    return packed.new_empty((), dtype=torch.int64)


@torch.library.register_fake("gxnor::xnor_gemm")
def _xnor_gemm_fake(a, b, K, scale=None, bias=None):
    check_gemm(a, b, K, scale, bias)
    dtype = torch.float32 if (scale is not None or bias is not None) else torch.int32
    return a.new_empty((a.shape[0], b.shape[0]), dtype=dtype)


@torch.library.register_fake("gxnor::ternary_matmul")
def _ternary_matmul_fake(x, w, K, nn=False):
    check_ternary_matmul(x, w, K, nn)
    return x.new_empty((x.shape[0], K if nn else w.shape[0]))


@torch.library.register_fake("gxnor::xnor_conv2d")
def _xnor_conv2d_fake(x, w, C, stride=1, padding=0, dilation=1, groups=1, scale=None, bias=None):
    N, _, _, _, _, O, _, _, _, _, _, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups, scale, bias)
    return conv_out_empty(x, O, N, Ho, Wo, scale is not None or bias is not None)


@torch.library.register_fake("gxnor::xnor_conv2d_pack")
def _xnor_conv2d_pack_fake(x, w, C, threshold, stride=1, padding=0, dilation=1, groups=1, scale=None, bias=None):
    check_threshold(threshold)
    N, _, _, _, _, O, _, _, _, _, _, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups, scale, bias)
    return x.new_empty((N, Ho, Wo, 2, fmt.packed_words(O)), dtype=torch.int32)


@torch.library.register_fake("gxnor::xnor_conv2d_weight_grad")
def _xnor_conv2d_weight_grad_fake(grad_out, x, w, C, stride=1, padding=0, dilation=1, groups=1):
    N, _, _, _, _, O, kh, kw, _, _, _, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups)
    check_conv_grad_out(grad_out, x, N, O, Ho, Wo)
    return grad_out.new_empty((O, kh, kw, C // groups))


@torch.library.register_fake("gxnor::dst_update_")
def _dst_update_fake(w, grad, lr, m, seed, offset, increment=False, rng=2, check=True):
    check_dst(w, grad, lr, m, seed, offset, increment, packed=True, rng=rng)
    return w.new_empty((), dtype=torch.int64)


@torch.library.register_fake("gxnor::dst_update_states_")
def _dst_update_states_fake(s, grad, lr, m, n_states, seed, offset, increment=False, rng=2, check=True):
    check_dst(s, grad, lr, m, seed, offset, increment, packed=False, n_states=n_states, rng=rng)
    return s.new_empty((), dtype=torch.int64)


def pool_out(x: torch.Tensor, shape, dtype) -> torch.Tensor:
    """An empty tensor of ``shape`` in x's memory format (channels-last or contiguous)."""
    cl = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    return torch.empty(shape, dtype=dtype, device=x.device,
                       memory_format=torch.channels_last if cl else torch.contiguous_format)


@torch.library.register_fake("gxnor::maxpool2x2")
def _maxpool2x2_fake(x):
    check_maxpool2x2(x)
    shape = (x.shape[0], x.shape[1], x.shape[2] // 2, x.shape[3] // 2)
    return pool_out(x, shape, x.dtype), pool_out(x, shape, torch.uint8)


@torch.library.register_fake("gxnor::maxpool2x2_backward")
def _maxpool2x2_backward_fake(grad, argmax, H, W):
    check_maxpool2x2_backward(grad, argmax, H, W)
    return pool_out(argmax, (grad.shape[0], grad.shape[1], H, W), grad.dtype)


def channels_last_empty(shape, like: torch.Tensor, dtype) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device=like.device, memory_format=torch.channels_last)


@torch.library.register_fake("gxnor::conv2d_maxpool2x2")
def _conv2d_maxpool2x2_fake(x, w, stride=1, padding=0, dilation=1):
    *_, Ho, Wo = check_conv_maxpool2x2(x, w, stride, padding, dilation)
    shape = (x.shape[0], w.shape[0], Ho // 2, Wo // 2)
    return channels_last_empty(shape, x, torch.float32), channels_last_empty(shape, x, torch.uint8)


@torch.library.register_fake("gxnor::conv2d_maxpool2x2_weight_grad")
def _conv2d_maxpool2x2_weight_grad_fake(grad, argmax, x, kernel_size, stride=1, padding=0, dilation=1):
    kh, kw, *_ = check_conv_maxpool2x2_weight_grad(grad, argmax, x, kernel_size, stride, padding, dilation)
    return channels_last_empty((grad.shape[1], x.shape[1], kh, kw), x, torch.float32)


@torch.library.register_fake("gxnor::xnor_conv2d_maxpool2x2")
def _xnor_conv2d_maxpool2x2_fake(x, w, C, stride=1, padding=0, dilation=1, groups=1):
    N, *_, O, _kh, _kw, _s, _p, _d, Ho, Wo = check_conv(x, w, C, stride, padding, dilation, groups)
    check_conv_pool_output(Ho, Wo)
    shape = (N, O, Ho // 2, Wo // 2)
    return channels_last_empty(shape, x, torch.float32), channels_last_empty(shape, x, torch.uint8)


@torch.library.register_fake("gxnor::accumulator_stats")
def _accumulator_stats_fake(x):
    check_accumulator_stats(x)
    return stats_outputs(x)


def stats_outputs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """accumulator_stats' outputs: the int16 copy in x's memory format (pool_out's rule) and the (2, C)
    int64 sums."""
    return pool_out(x, x.shape, torch.int16), torch.empty((2, x.shape[1]), dtype=torch.int64, device=x.device)
