"""Triton kernels (GPU, or CPU through TRITON_INTERPRET=1). One op per file."""

from .pack import pack_ternary, quantize_pack, unpack_ternary, validate_packed

__all__ = ["pack_ternary", "quantize_pack", "unpack_ternary", "validate_packed"]
