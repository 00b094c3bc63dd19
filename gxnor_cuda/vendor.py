"""The vendor route for ternary GEMMs on a GPU: decode both operands to int8 (one memory-bound pass
each; a discrete weight once per optimizer step) and let cuBLASLt multiply them through
``torch._int_mm`` (int32 accumulation, exact). On Hopper the model predicts it above the Triton
tensor-core kernel for large shapes (docs/gemm_dispatch.md); it runs on the CPU too, which is how
the tests check it.
"""

from __future__ import annotations

import torch

from . import functional as F
from ._checks import check_gemm
from .reference import gemm_epilogue


def int8_operand(t: torch.Tensor, K: int) -> torch.Tensor:
    """(R, 2, W) packed -> (R, K8) int8 values, K8 = K rounded up to 8 (zeros past K: cuBLASLt wants
    the reduction length a multiple of 8). A discrete weight keeps its copy (attribute ``gxnor_i8``)
    until a write changes its stamp, as the tc16 layout does."""
    from .optim import derived

    def decode():
        v = F.unpack_ternary(t, K, torch.int8)
        return torch.nn.functional.pad(v, (0, -K % 8)) if K % 8 else v

    return derived(t, "gxnor_i8", K, decode)


def xnor_gemm_int_mm(a, b, K, scale=None, bias=None):
    """reference.xnor_gemm through torch._int_mm on int8-decoded operands (same results)."""
    check_gemm(a, b, K, scale, bias)
    return gemm_epilogue(torch._int_mm(int8_operand(a, K), int8_operand(b, K).t()), scale, bias)
