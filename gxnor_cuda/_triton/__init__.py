"""Triton kernels (GPU, or CPU through TRITON_INTERPRET=1). One op per file."""

from .gemm import ternary_matmul, xnor_gemm
from .pack import pack_ternary, quantize_pack, unpack_ternary, validate_packed

__all__ = ["pack_ternary", "quantize_pack", "ternary_matmul", "unpack_ternary", "validate_packed", "xnor_gemm"]
