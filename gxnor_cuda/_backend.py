"""Backend discovery: loads the native library, records why a backend is missing, and registers
Triton / reference kernels (the tables of ``_registry.py``) for dispatch keys the native library
does not cover.

Import never fails for lack of a GPU, nvcc or a built library; asking for a missing backend by
name raises ``BackendUnavailable`` with the recorded reason.
"""

from __future__ import annotations

import importlib
import os

import torch

from . import _ops, _registry  # noqa: F401  (_ops defines the schemas before kernels register)

BACKENDS = ("reference", "cpp", "cuda", "triton")
STATUS: dict[str, tuple[bool, str]] = {"reference": (True, "pure torch, always available")}


class BackendUnavailable(RuntimeError):
    """Raised when a backend is requested by name but is not available here."""


def _load_native() -> None:
    if os.environ.get("GXNOR_NO_NATIVE") == "1":
        STATUS["cpp"] = (False, "disabled by GXNOR_NO_NATIVE=1")
        STATUS["cuda"] = (False, "disabled by GXNOR_NO_NATIVE=1")
        return
    try:
        importlib.import_module("gxnor_cuda._C")
    except ImportError as e:
        STATUS["cpp"] = (False, f"native library not built or failed to load: {e}")
        STATUS["cuda"] = (False, "native library not built or failed to load")
        return
    STATUS["cpp"] = (True, f"C++ CPU kernels, ISA {torch.ops.gxnor_native.cpu_isa()}")
    if not hasattr(torch.ops.gxnor_native, "cuda_archs"):
        STATUS["cuda"] = (False, "the native library was built without CUDA (CPU-only build)")
    elif not torch.cuda.is_available():
        STATUS["cuda"] = (False, "CUDA kernels built, but no CUDA device is visible")
    else:
        STATUS["cuda"] = (True, f"CUDA kernels for {torch.ops.gxnor_native.cuda_archs()}")


def _load_triton() -> None:
    try:
        import triton  # noqa: F401
    except ImportError as e:
        STATUS["triton"] = (False, f"triton not importable: {e}")
        return
    if os.environ.get("TRITON_INTERPRET") == "1":
        STATUS["triton"] = (True, f"triton {triton.__version__}, interpreter (TRITON_INTERPRET=1)")
    elif torch.cuda.is_available():
        STATUS["triton"] = (True, f"triton {triton.__version__} on {torch.cuda.get_device_name()}")
    else:
        STATUS["triton"] = (False, "no CUDA device and TRITON_INTERPRET is not 1")


def native_info() -> dict[str, object]:
    """What the native library reports about itself (empty when it is not loaded)."""
    if not STATUS.get("cpp", (False, ""))[0]:
        return {}
    ns = torch.ops.gxnor_native
    info: dict[str, object] = {
        "cpu_isa": ns.cpu_isa(),
        "detected_cpu_isa": ns.detected_cpu_isa(),
        "format_constants": list(ns.format_constants()),
    }
    if hasattr(ns, "cuda_archs"):
        info["cuda_archs"] = ns.cuda_archs()
    return info


def available(name: str) -> bool:
    return STATUS.get(name, (False, ""))[0]


def require(name: str) -> None:
    """Raise ``BackendUnavailable`` naming why ``name`` cannot be used here."""
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {name!r}")
    ok, why = STATUS.get(name, (False, "unknown"))
    if not ok:
        raise BackendUnavailable(f"backend {name!r} is not available: {why}")


def _register_fallbacks() -> None:
    """Fill CPU / CUDA dispatch keys the native library left empty, and record it."""
    ref = _registry.REFERENCE
    if not available("cpp"):
        for op, fn in ref.items():
            torch.library.impl(f"gxnor::{op}", "CPU", lib=_FALLBACK_LIB)(fn)
        STATUS["dispatch_cpu"] = (True, "reference (native library missing)")
    else:
        STATUS["dispatch_cpu"] = (True, "cpp")
    if not hasattr(torch.ops.gxnor_native, "cuda_archs"):
        tri = _registry.triton_table() if torch.cuda.is_available() and available("triton") else {}
        for op, fn in ref.items():
            torch.library.impl(f"gxnor::{op}", "CUDA", lib=_FALLBACK_LIB)(tri.get(op, fn))
        STATUS["dispatch_cuda"] = (True, "triton" if tri else "reference (no CUDA build)")
    else:
        # ops the CUDA library leaves to the platform (the float-side weight gradient: cuDNN)
        for op, fn in ref.items():
            if not torch._C._dispatch_has_kernel_for_dispatch_key(f"gxnor::{op}", "CUDA"):
                torch.library.impl(f"gxnor::{op}", "CUDA", lib=_FALLBACK_LIB)(fn)
        STATUS["dispatch_cuda"] = (True, "cuda")


_FALLBACK_LIB = torch.library.Library("gxnor", "IMPL")  # noqa: TOR901
_load_native()
_load_triton()
_register_fallbacks()
