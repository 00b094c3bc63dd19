"""Public functions with shape docs. ``backend=None`` dispatches on the tensor's device through
the ``gxnor`` ops; ``backend="reference" | "cpp" | "cuda" | "triton"`` forces one
implementation and raises ``BackendUnavailable`` (with the reason) when it is missing here.
"""

from __future__ import annotations

import torch

from . import _backend, reference


def _kernel(op: str, backend: str | None, device: torch.device):
    if backend is None:
        return getattr(torch.ops.gxnor, op)
    _backend.require(backend)
    if backend == "reference":
        return getattr(reference, op)
    if backend == "triton":
        from . import _triton

        return getattr(_triton, op)
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
    return _kernel("validate_packed", backend, packed.device)(packed, K)


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
