"""Triton kernels (GPU, or CPU through TRITON_INTERPRET=1). One op per file."""

from .conv import xnor_conv2d, xnor_conv2d_pack
from .dst import dst_update_, dst_update_states_
from .gemm import ternary_matmul, xnor_gemm
from .pack import count_noncanonical, pack_ternary, quantize_pack, unpack_ternary

__all__ = [
    "count_noncanonical",
    "dst_update_",
    "dst_update_states_",
    "pack_ternary",
    "quantize_pack",
    "ternary_matmul",
    "unpack_ternary",
    "xnor_conv2d",
    "xnor_conv2d_pack",
    "xnor_gemm",
]
