"""Public functions with shape docs. ``backend=None`` dispatches on the tensor's device through
the ``gxnor`` ops; ``backend="reference" | "cpp" | "cuda" | "triton"`` forces one
implementation and raises ``BackendUnavailable`` (with the reason) when it is missing here.
"""

from __future__ import annotations

import warnings

import torch

from . import _backend, _registry
from ._checks import check_dst_scalars
from ._conv_checks import pairs as _pairs
from .float_conv import float_conv2d


def _kernel(op: str, backend: str | None, device: torch.device):
    if backend is None:
        return getattr(torch.ops.gxnor, op)
    _backend.require(backend)
    if backend == "reference":
        return _registry.REFERENCE[op]
    if backend == "triton":
        if op in _registry.TRITON_EXCEPTIONS:
            raise _backend.BackendUnavailable(f"backend 'triton' has no {op} kernel: {_registry.TRITON_EXCEPTIONS[op]}")
        return _registry.triton_table()[op]
    want = "cpu" if backend == "cpp" else "cuda"
    torch._check(
        device.type == want,
        lambda: f"backend={backend!r} runs on {want} tensors, got a tensor on {device}",
    )
    return getattr(torch.ops.gxnor, op)


def pack_ternary(
    x: torch.Tensor | tuple[torch.Tensor, torch.Tensor],
    threshold: float | None = None,
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """Pack dense ternary values into format v1.

    x: (..., K) float/int8 with values in {-1, 0, +1}; or a pair (gate, sign) of (..., K) bool
       tensors (sign only where gate is set); with ``threshold`` r any real x is quantized by phi_r.
    returns: (..., 2, W) int32, W = 2 * ceil(K / 64), canonical.
    """
    if isinstance(x, (tuple, list)):
        x = _from_bool_pair(*x)
    return _kernel("pack_ternary", backend, x.device)(x, threshold)


def _from_bool_pair(gate: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
    for name, t in (("gate", gate), ("sign", sign)):
        torch._check(t.dtype == torch.bool, lambda n=name, d=t.dtype: f"{n}: expected dtype torch.bool, got {d}")
    torch._check(
        gate.shape == sign.shape,
        lambda: f"sign: expected the shape of gate {tuple(gate.shape)}, got {tuple(sign.shape)}",
    )
    torch._check(
        not bool((sign & ~gate).any()),
        lambda: "sign: expected sign bits only where gate is set (canonical form), got sign without gate",
    )
    return gate.to(torch.int8) * (1 - 2 * sign.to(torch.int8))


def quantize_pack(x: torch.Tensor, threshold: float, *, backend: str | None = None) -> torch.Tensor:
    """phi_r and pack in one pass: +1 where x >= r, -1 where x <= -r, else 0 (NaN -> 0).

    x: (..., K) float32/float64/float16/bfloat16. returns: (..., 2, W) int32.
    """
    return _kernel("quantize_pack", backend, x.device)(x, threshold)


def unpack_ternary(
    packed: torch.Tensor, K: int, dtype: torch.dtype | None = None, *, backend: str | None = None
) -> torch.Tensor:
    """Unpack format v1 to dense values.

    packed: (..., 2, W) int32 with W = 2 * ceil(K / 64). returns: (..., K) ``dtype`` (int8 default).
    """
    return _kernel("unpack_ternary", backend, packed.device)(packed, K, dtype)


def count_noncanonical(packed: torch.Tensor, K: int, *, backend: str | None = None) -> torch.Tensor:
    """Number of non-canonical words. packed: (..., 2, W) int32. returns: () int64."""
    return _kernel("count_noncanonical", backend, packed.device)(packed, K)


def validate_packed(packed: torch.Tensor, K: int, *, backend: str | None = None) -> torch.Tensor:
    """Check canonical form; raise ``ValueError`` naming ``packed`` if any word is not canonical.

    packed: (..., 2, W) int32. returns: ``packed`` unchanged.
    """
    n = int(count_noncanonical(packed, K, backend=backend))
    if n:
        raise ValueError(
            f"packed: expected canonical format v1 (sign bits only where the gate bit is set, "
            f"padding bits zero, K = {K}), got {n} non-canonical word pair(s)"
        )
    return packed


def _eager(t: torch.Tensor) -> bool:
    """A real tensor outside torch.compile: the Triton tensor-core path is launched directly from
    Python, so traced and fake calls stay on the registered op (which has a fake and a CUDA kernel)."""
    return not torch.compiler.is_compiling() and not isinstance(t, torch._subclasses.FakeTensor)


def tensor_core_shape(N: int, K: int) -> bool:
    """B fills a tensor-core tile's columns, K amortises the layout pass, and 4096 K fits int32."""
    return N >= 64 and 256 <= K < 2**19


def bf16_tensor_core_shape(R: int, P: int) -> bool:
    """ternary_matmul's bf16 tensor-core route on a GPU (sm_80 and newer, bf16 x, else W decoded for
    torch.mm): x's rows of R values are whole 16-byte copies and the P output columns fit the grid."""
    return R % 8 == 0 and -(-P // 128) <= 65535


def gpu_gemm_method(M: int, N: int, K: int, sm_major: int = 8) -> str:
    """The one GPU shape rule (docs/gemm_dispatch.md): on Hopper and later, large shapes decode to
    int8 and run cuBLASLt ("int_mm", vendor.py: it needs M > 16 and N a multiple of 8). Otherwise,
    when B fills the tile's columns and K amortises the layout pass (and 4096 K fits int32), tensor
    cores: on sm_8x the native library's binary tensor-core kernel on the format v1 bit planes
    ("b1", Triton's "tc" where the native CUDA library is missing), else int8 tensor cores in the
    tc16 layout ("tc"; M of at most 16 takes a 16-row tile). Everything else: the CUDA-core popcount
    kernel."""
    if sm_major >= 9 and M >= 128 and N >= 128 and N % 8 == 0 and K >= 256:
        return "int_mm"
    if tensor_core_shape(N, K):
        return "b1" if sm_major == 8 and M > 16 else "tc"
    return "popcount"


def xnor_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    K: int,
    scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    *,
    backend: str | None = None,
    method: str | None = None,
) -> torch.Tensor:
    """Exact ternary GEMM with gated XNOR popcounts: C = a_dense @ b_dense.T.

    a: (M, 2, W) int32 packed, b: (N, 2, W) int32 packed (both along K).
    scale, bias: optional (N,) float32; with either, returns (M, N) float32 = C * scale + bias
    (fused epilogue), otherwise (M, N) int32.
    backend="triton" takes ``method`` = "popcount" | "dot" (int8 tensor cores, format v1 unpacked
    per tile) | "tc" (int8 tensor cores, tc16 layout); None picks by ``gpu_gemm_method``, which
    also sends CUDA tensors of the default backend to the vendor, native tensor-core or Triton "tc"
    kernels when the shape suits them.
    """
    if backend is None and a.device.type == "cuda" and _eager(a):
        route = gpu_gemm_method(a.shape[0], b.shape[0], K, torch.cuda.get_device_capability(a.device)[0])
        if route == "int_mm":
            from .vendor import xnor_gemm_int_mm

            return xnor_gemm_int_mm(a, b, K, scale, bias)
        if route == "b1" and _backend.available("cuda"):
            backend = "cuda"  # the native op runs the binary tensor-core kernel on sm_8x
        elif route in ("tc", "b1") and _backend.available("triton"):
            backend = "triton"
    if backend == "triton":
        _backend.require("triton")
        from . import _triton

        m = method or ("tc" if tensor_core_shape(b.shape[0], K) else "popcount")
        return _triton.xnor_gemm(a, b, K, scale, bias, method=m)
    return _kernel("xnor_gemm", backend, a.device)(a, b, K, scale, bias)


def ternary_matmul(
    x: torch.Tensor, w: torch.Tensor, K: int, layout: str = "nt", *, backend: str | None = None,
    nn: bool | None = None,
) -> torch.Tensor:
    """Float x ternary matmul, float32 accumulation.

    layout "nt": x (M, K) float32/bfloat16 @ w_dense.T -> (M, N)   (forward: y = x W^T)
    layout "nn": x (M, N) @ w_dense -> (M, K)                      (backward: dX = dY W)
    w: (N, 2, W) int32 packed along K. Returns x.dtype. ``nn=True`` is the former spelling of
    ``layout="nn"`` (deprecated).
    """
    if nn is not None:
        warnings.warn("ternary_matmul(nn=...) is deprecated: use layout='nn' or 'nt'", DeprecationWarning,
                      stacklevel=2)
        layout = "nn" if nn else "nt"
    if layout not in ("nt", "nn"):
        raise ValueError(f"layout: expected 'nt' (x @ W.T) or 'nn' (x @ W), got {layout!r}")
    return _kernel("ternary_matmul", backend, x.device)(x, w, K, layout == "nn")


def dst_update_(
    w: torch.Tensor, grad: torch.Tensor, lr: float, m: float = 3.0, seed: int = 0, offset: int = 0,
    increment: bool = False, rng: int = 2, check: bool = True, *, backend: str | None = None,
) -> torch.Tensor:
    """In-place DST on packed ternary weights (docs/design.md, "DST").

    w: (..., 2, W) int32 packed (updated in place); grad: (..., K) float — or D itself with
    ``increment=True``. Random numbers by contract ``rng`` (2: one Philox call per four elements
    of a row, counters offset + row * ceil(K / 4) + k // 4; 1: one call per element, counter
    offset + flat index); ``reference_dst.counters_used`` says how far to advance ``offset``.
    ``check``: refuse non-canonical words first (one host sync on a GPU); the DST optimizer skips
    it for weights only it has written. returns: () int64 count of non-finite gradient entries
    (those weights do not move).
    """
    check_dst_scalars(lr, m, seed, offset, increment)
    bad = _kernel("dst_update_", backend, w.device)(w, grad, lr, m, seed, offset, increment, rng, check)
    return _written(w, bad)


def dst_update_states_(
    s: torch.Tensor, grad: torch.Tensor, lr: float, m: float, n_states: int, seed: int = 0, offset: int = 0,
    increment: bool = False, rng: int = 2, check: bool = True, *, backend: str | None = None,
) -> torch.Tensor:
    """In-place DST on int8 state indices of Z_N (value s / 2^(N-1); N = 0 binary {-1, +1}).

    s: (...) int8, grad: (...) float; rows of K = s.shape[-1] for ``rng`` = 2, as in dst_update_.
    returns: () int64 non-finite count.
    """
    check_dst_scalars(lr, m, seed, offset, increment)
    bad = _kernel("dst_update_states_", backend, s.device)(s, grad, lr, m, n_states, seed, offset, increment, rng,
                                                          check)
    return _written(s, bad)


def _written(t: torch.Tensor, result):
    """Bump t's version counter after an in-place write by a custom op (which does not bump it), so
    that anything keyed on it (autograd's saved-tensor check, cached layouts) sees the change."""
    if not torch.compiler.is_compiling() and not t.is_inference():
        torch.autograd.graph.increment_version(t)
    return result


def pack_conv_input(x: torch.Tensor, groups: int = 1, threshold: float | None = None, *,
                    backend: str | None = None) -> torch.Tensor:
    """Pack NCHW activations channels-last for ``xnor_conv2d``.

    x: (N, C, H, W) ternary values (or any reals with ``threshold`` r: phi_r first).
    returns: (N, H, W, 2, Wc) int32 for groups = 1, else (N, H, W, groups, 2, Wg); Wg = 2*ceil(C/groups/64).
    """
    # plain raises, not torch._check with message closures: torch.compile traces these (fullgraph)
    if x.dim() != 4:
        raise RuntimeError(f"x: expected (N, C, H, W), got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    if c % groups:
        raise RuntimeError(f"groups: expected a divisor of C = {c}, got {groups}")
    # A channels-last view, no copy: the C++ CPU kernels pack an NCHW tensor through it in one pass.
    xl = x.permute(0, 2, 3, 1)
    if groups > 1:
        xl = xl.unflatten(-1, (groups, c // groups))
    return pack_ternary(xl, backend=backend) if threshold is None else quantize_pack(xl, threshold, backend=backend)


def pack_conv_weight(w: torch.Tensor, *, backend: str | None = None) -> torch.Tensor:
    """Pack a dense (O, C/groups, kh, kw) ternary weight to (O, kh, kw, 2, Wg) int32."""
    torch._check(w.dim() == 4, lambda: f"w: expected (O, C/groups, kh, kw), got shape {tuple(w.shape)}")
    return pack_ternary(w.permute(0, 2, 3, 1), backend=backend)


def unpack_conv_weight(w: torch.Tensor, c_per_group: int, dtype: torch.dtype = torch.float32, *,
                       backend: str | None = None) -> torch.Tensor:
    """(O, kh, kw, 2, Wg) int32 -> dense (O, C/groups, kh, kw) ``dtype``."""
    return unpack_ternary(w, c_per_group, dtype, backend=backend).permute(0, 3, 1, 2)


def xnor_conv2d(
    x: torch.Tensor, w: torch.Tensor, C: int, stride=1, padding=0, dilation=1, groups: int = 1,
    scale: torch.Tensor | None = None, bias: torch.Tensor | None = None, *, backend: str | None = None,
) -> torch.Tensor:
    """Exact gated-XNOR conv2d on packed channels-last operands (implicit GEMM over (kh, kw, Wg)).

    x: (N, H, W, 2, Wc) int32 (``pack_conv_input``), or (N, H, W, groups, 2, Wg) for groups > 1.
    w: (O, kh, kw, 2, Wg) int32 (``pack_conv_weight``); C: input channels; zero padding = gate off.
    scale, bias: optional (O,) float32: float32 output C * scale + bias (fused epilogue).
    returns: (N, O, Ho, Wo) int32 (or float32), equal to F.conv2d on the dense values, stored
    channels-last (``.permute(0, 2, 3, 1)`` is a free contiguous NHWC view; ``.contiguous()`` gives NCHW).
    """
    if (backend is None and x.device.type == "cuda" and _backend.available("triton") and _eager(x)
            and gpu_conv_method(C, w.shape[0], w.shape[1] * w.shape[2], groups) == "tc"):
        from ._triton.tc_conv import xnor_conv2d_tc

        return xnor_conv2d_tc(x, w, C, stride, padding, dilation, groups, scale, bias)
    return _kernel("xnor_conv2d", backend, x.device)(x, w, C, *_pairs(stride, padding, dilation),
                                                      groups, scale, bias)


def gpu_conv_method(C: int, O: int, taps: int, groups: int = 1) -> str:  # noqa: E741 (O: output channels)
    """The GPU conv rule (docs/gemm_dispatch.md): the int8 tensor-core implicit GEMM ("tc") when a
    group's output channels fill the 128-column tile at least half and its input channels fill
    half of the 128-value K step, else the CUDA-core popcount kernel (the registered op)."""
    cg, og = C // groups, O // groups
    return "tc" if (og >= 64 and cg >= 64 and taps * cg < 2**19) else "popcount"


def xnor_conv2d_pack(
    x: torch.Tensor, w: torch.Tensor, C: int, threshold: float, stride=1, padding=0, dilation=1, groups: int = 1,
    scale: torch.Tensor | None = None, bias: torch.Tensor | None = None, *, backend: str | None = None,
) -> torch.Tensor:
    """``xnor_conv2d`` that emits the next layer's packed activations: phi_r of y = C * scale + bias.

    x, w, C, stride, padding, dilation, groups, scale, bias: as ``xnor_conv2d``; threshold: r > 0.
    returns: (N, Ho, Wo, 2, Wo_words) int32 (``pack_conv_input`` layout for a groups = 1 next layer)
    = ``quantize_pack(y.permute(0, 2, 3, 1), r)``: +1 where y >= r, -1 where y <= -r, else 0.
    Every backend thresholds and packs as it computes (the C++ kernel per L2-sized chunk of rows,
    Triton and CUDA in the conv kernel's epilogue), so the float (N, O, Ho, Wo) tensor is never
    written.
    """
    return _kernel("xnor_conv2d_pack", backend, x.device)(x, w, C, float(threshold), *_pairs(stride, padding, dilation),
                                                           groups, scale, bias)


def xnor_conv2d_weight_grad(
    grad_out: torch.Tensor, x: torch.Tensor, w: torch.Tensor, C: int, stride=1, padding=0, dilation=1,
    groups: int = 1, *, backend: str | None = None,
) -> torch.Tensor:
    """Weight gradient of ``xnor_conv2d(x, w, C, ...)``: sum over pixels of grad_out x the ternary
    activations, float32, without unpacking x.

    grad_out: (N, O, Ho, Wo) float32 (any memory format; channels-last, as xnor_conv2d writes, is read
    in place); x: packed activations as ``xnor_conv2d``; w: (O, kh, kw, 2, Wg) int32 (its shape only).
    returns: (O, kh, kw, C/groups) float32, the stored weight layout. The CPU kernel sums pixel
    pairs through lookup tables, in another order than a dense conv (float rounding differs only);
    CUDA runs the reference (cuDNN on the unpacked activations).
    """
    return _kernel("xnor_conv2d_weight_grad", backend, x.device)(grad_out, x, w, C,
                                                                  *_pairs(stride, padding, dilation), groups)


def ternary_conv2d(x: torch.Tensor, w: torch.Tensor, C: int, stride=1, padding=0, dilation=1, groups: int = 1,
                   *, backend: str | None = None) -> torch.Tensor:
    """Float input x packed ternary weight conv2d (the first layer), float32 accumulation.

    x: (N, C, H, W) float32/bfloat16, w: (O, kh, kw, 2, Wg) int32. The weight is unpacked to x.dtype
    (O*C*kh*kw/groups values: small) and the platform conv runs (oneDNN on CPU, cuDNN on GPU),
    faster than im2col + ternary_matmul (bench/bench_conv.py).
    """
    return float_conv2d(x, unpack_conv_weight(w, C // groups, x.dtype, backend=backend), stride, padding, dilation,
                        groups)


def conv2d_maxpool2x2(x: torch.Tensor, w: torch.Tensor, stride=1, padding=0, dilation=1, *,
                      backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """max_pool2d(conv2d(x, w), 2) in one pass: the conv output is never stored.

    x: (N, C, H, W) float32, w: (O, C, kh, kw) float32 (groups = 1; the conv output at least 2 x 2).
    returns: the maxima (N, O, Ho // 2, Wo // 2) float32 and the window argmax (2 dy + dx, torch's tie
    and NaN rules) uint8, both channels-last. Each conv output is an fma chain over the taps (c, ky, kx)
    in order, the same bits on every CPU ISA path and on a GPU (Triton).
    """
    return _kernel("conv2d_maxpool2x2", backend, x.device)(x, w, *_pairs(stride, padding, dilation))


def conv2d_maxpool2x2_weight_grad(grad: torch.Tensor, argmax: torch.Tensor, x: torch.Tensor, kernel_size,
                                  stride=1, padding=0, dilation=1, *, backend: str | None = None) -> torch.Tensor:
    """Weight gradient (O, C, kh, kw) float32 (channels-last) of ``conv2d_maxpool2x2`` from the pooled
    gradient (N, O, Ho // 2, Wo // 2) and its argmax: each pooled position's gradient times the input
    window at its argmax; positions the pool did not pick contribute nothing."""
    ks = [kernel_size] * 2 if isinstance(kernel_size, int) else list(kernel_size)
    return _kernel("conv2d_maxpool2x2_weight_grad", backend, x.device)(grad, argmax, x, ks,
                                                                        *_pairs(stride, padding, dilation))


def accumulator_stats(x: torch.Tensor, *, backend: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A ternary layer's integer accumulators x (N, C) or (N, C, H, W) float32 -> (int16 copy of x in its
    memory format, (2, C) int64 per-channel sums and sums of squares), one pass, exact: the batch
    statistics of nn.IntBatchNorm1d / 2d. Values that are not integers in [-32768, 32767] are refused."""
    return _kernel("accumulator_stats", backend, x.device)(x)
