"""The float side of the GXNOR convolutions (a real-valued input, or the float gradients of the
backward): the platform conv in the memory format that runs fastest here, and a one-channel input
(the MNIST first layer) as im2col + GEMM on the CPU."""

from __future__ import annotations

import math

import torch

from . import _backend
from ._conv_checks import pairs


def nchw(t: torch.Tensor) -> torch.Tensor:
    """t (N, C, H, W) with NCHW strides. With one channel a channels-last view passes as contiguous
    while its strides still read as channels-last to torch's conv format choice: re-stride it."""
    t = t.contiguous()
    n, c, h, w = t.shape
    strides = (c * h * w, h * w, w, 1)
    return t if t.stride() == strides else t.as_strided(t.shape, strides)  # keeps the storage offset


def _cpu_conv_prefers_channels_last() -> bool:
    """Whether the float-side CPU conv runs faster on its channels-last path for an NCHW input:
    on CPUs without AMX, oneDNN's channels-last kernels (input conversion included) beat NCHW on the
    multi-channel GXNOR layers; with AMX they lose on the wide 8x8 layers (bench/bench_conv.py), so
    NCHW there and where the native library (the ISA probe) is missing.
    """
    return _PREFERS_CHANNELS_LAST


# Read once at import (the detected ISA): torch.compile cannot trace the string-returning probe op,
# and forcing a lower ISA later (tests) changes only which layout is faster, not any result.
_ISA = torch.ops.gxnor_native.cpu_isa() if _backend.available("cpp") else ""
_PREFERS_CHANNELS_LAST = bool(_ISA) and not _ISA.startswith("amx")


def native_cpu() -> bool:
    """Whether the native CPU kernels are loaded (else the ops run their float64 reference twins)."""
    return bool(_ISA)


def cpu_wgrad_from_packed() -> bool:
    """Whether a ternary-input conv's weight gradient on the CPU reads the packed activations
    (xnor_conv2d_weight_grad's table lookups) rather than running the platform conv on activations
    unpacked to float32 (one oneDNN call for both gradients). The lookups are load-bound and win
    where oneDNN's fp32 FMAs are 8 wide (AVX2); with AVX-512 (AMX CPUs included) oneDNN wins
    (bench/bench_conv.py, "lookups vs unpacked grad-weight"). Without the native library the op is
    the float64 reference: the platform conv then."""
    return _WGRAD_FROM_PACKED


_WGRAD_FROM_PACKED = bool(_ISA) and not _ISA.startswith(("avx512", "amx"))


def weight_like_input(wd: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Dense conv weight (O, C/groups, kh, kw) in the memory format the float-side conv should run in.

    The unpacked weight is a channels-last view; torch's conv takes its channels-last path when
    either operand is channels-last. For an NCHW (contiguous) x the weight goes NCHW, the same
    computation torch runs for nn.Conv2d on that input, unless the CPU's channels-last path measured
    faster (``_cpu_conv_prefers_channels_last``) and there is more than one channel per group (one
    channel: NCHW, see ``autograd_conv.conv_backward``).
    """
    if not x.is_contiguous():
        return wd
    if x.device.type == "cpu" and wd.shape[1] > 1 and _cpu_conv_prefers_channels_last():
        return wd.contiguous(memory_format=torch.channels_last)
    return nchw(wd)


def im2col_path(x: torch.Tensor, wd: torch.Tensor, groups: int) -> bool:
    """Whether a float32 CPU conv runs as im2col + GEMM over K = kh * kw: one input channel (the
    MNIST first layer), where oneDNN's backward-weight conv is about twice as slow
    (bench/bench_conv.py) and its forward writes NCHW, which the GXNOR layers then copy to
    channels-last; the GEMM writes channels-last directly."""
    return x.device.type == "cpu" and x.dtype == torch.float32 and groups == 1 and wd.shape[1] == 1


def _rows(x: torch.Tensor, kernel_size, stride, padding, dilation) -> torch.Tensor:
    """The kh x kw windows of a one-channel x (N, 1, H, W) as an (N, Ho, Wo, kh, kw) strided view."""
    (sh, sw), (ph, pw), (dh, dw) = pairs(stride, padding, dilation)
    kh, kw = kernel_size
    if ph or pw:
        x = torch.nn.functional.pad(x, (pw, pw, ph, ph))
    return x[:, 0].unfold(1, (kh - 1) * dh + 1, sh).unfold(2, (kw - 1) * dw + 1, sw)[..., ::dh, ::dw]


_CHUNK_BYTES = 1 << 21  # window rows copied per GEMM: a cache-sized block, never the whole batch's


def _chunks(v: torch.Tensor):
    """Sample ranges whose (samples * Ho * Wo, kh * kw) float32 rows fit _CHUNK_BYTES."""
    per = max(1, math.prod(v.shape[1:]) * 4)
    step = max(1, _CHUNK_BYTES // per)
    return [(i, min(i + step, v.shape[0])) for i in range(0, v.shape[0], step)]


def _im2col_conv1(x: torch.Tensor, wd: torch.Tensor, stride, padding, dilation) -> torch.Tensor:
    """conv2d of a one-channel x (N, 1, H, W) with wd (O, 1, kh, kw): per block of samples, the window
    rows copied once and multiplied by the weight (one GEMM); returns (N, O, Ho, Wo) stored channels-last."""
    o, k = wd.shape[0], wd.shape[2] * wd.shape[3]
    v = _rows(x, wd.shape[2:], stride, padding, dilation)
    n, ho, wo = v.shape[:3]
    wt = wd.reshape(o, k).T
    y = torch.empty((n, ho, wo, o), dtype=x.dtype, device=x.device)
    for i, j in _chunks(v):
        torch.mm(v[i:j].reshape(-1, k), wt, out=y[i:j].view(-1, o))
    return y.permute(0, 3, 1, 2)


def float_conv2d(x: torch.Tensor, wd: torch.Tensor, stride=1, padding=0, dilation=1, groups: int = 1) -> torch.Tensor:
    """conv2d(x, wd) for the float side: x (N, C, H, W), wd (O, C/groups, kh, kw) dense (unpacked);
    im2col + GEMM for one input channel on the CPU (``im2col_path``), else the platform conv in the
    layout ``weight_like_input`` picks. returns (N, O, Ho, Wo) x.dtype."""
    if im2col_path(x, wd, groups):
        return _im2col_conv1(x, wd, stride, padding, dilation)
    return torch.nn.functional.conv2d(x, weight_like_input(wd, x), None, stride, padding, dilation, groups)


def float_conv2d_weight_grad(gy: torch.Tensor, x: torch.Tensor, kernel_size, stride, padding, dilation) -> torch.Tensor:
    """Weight gradient of a one-channel conv: per block of samples, the channels-last gradient (a free
    (n Ho Wo, O) view) times the same window rows as the forward. gy (N, O, Ho, Wo), x (N, 1, H, W)
    float32. returns (O, kh, kw, 1) float32, the stored weight layout."""
    o = gy.shape[1]
    kh, kw = kernel_size
    v = _rows(x, (kh, kw), stride, padding, dilation)
    g = gy.permute(0, 2, 3, 1)
    gw = torch.zeros((o, kh * kw), dtype=torch.float32, device=gy.device)
    for i, j in _chunks(v):
        gw.addmm_(g[i:j].reshape(-1, o).T, v[i:j].reshape(-1, kh * kw))
    return gw.view(o, kh, kw, 1)
