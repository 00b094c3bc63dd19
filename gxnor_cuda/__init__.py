"""gxnor_cuda: ternary neural networks with 2-bit packed weights and activations.

Backends: ``reference`` (pure torch), ``cpp`` (C++ CPU), ``cuda`` (CUDA C++), ``triton``.
See ``python -m gxnor_cuda`` for what loaded on this machine.
"""

from . import _backend, format  # noqa: F401  (defines ops, loads kernels)
from ._backend import STATUS as BACKEND_STATUS
from ._backend import BackendUnavailable, available
from .functional import (
    pack_ternary,
    quantize_pack,
    ternary_matmul,
    unpack_ternary,
    validate_packed,
    xnor_gemm,
)

__version__ = "0.1.0"

__all__ = [
    "BACKEND_STATUS",
    "BackendUnavailable",
    "available",
    "format",
    "pack_ternary",
    "quantize_pack",
    "ternary_matmul",
    "unpack_ternary",
    "validate_packed",
    "xnor_gemm",
]
