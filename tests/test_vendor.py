"""The vendor route (gxnor_cuda/vendor.py): int8-decoded operands through torch._int_mm, bit-exact
against the reference (torch._int_mm runs on the CPU too), and its weight cache."""

from __future__ import annotations

import pytest
import torch

from gxnor_cuda import functional as F
from gxnor_cuda import reference
from gxnor_cuda.vendor import int8_operand, xnor_gemm_int_mm

from .helpers import rand_ternary

DEV = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # cuBLASLt when there is a GPU


@pytest.mark.parametrize("M, N, K", [(17, 8, 8), (40, 24, 100), (128, 136, 300), (33, 64, 1)])
@pytest.mark.parametrize("epilogue", ["int", "scale", "scale_bias"])
def test_int_mm_route_is_exact(M, N, K, epilogue):
    a, b = F.pack_ternary(rand_ternary(M, K)), F.pack_ternary(rand_ternary(N, K, p_zero=0.6))
    scale = torch.randn(N) if "scale" in epilogue else None
    bias = torch.randn(N) if "bias" in epilogue else None
    want = reference.xnor_gemm(a, b, K, scale, bias)
    on = lambda t: t.to(DEV) if t is not None else None  # noqa: E731
    got = xnor_gemm_int_mm(on(a), on(b), K, on(scale), on(bias)).cpu()
    assert got.dtype == want.dtype and torch.equal(got, want)


def test_int8_operand_pads_k_and_caches_discrete_weights():
    from gxnor_cuda.nn import GXNORLinear
    from gxnor_cuda.optim import DST

    layer = GXNORLinear(100, 16)
    v = int8_operand(layer.weight_q, 100)
    assert v.shape == (16, 104) and v.dtype == torch.int8 and not bool(v[:, 100:].any())
    assert torch.equal(v[:, :100].float(), layer.weight.detach())
    assert int8_operand(layer.weight_q, 100) is v
    layer.weight.grad = torch.randn(16, 100) * 50
    DST([layer.weight], lr=1.0).step()
    w = int8_operand(layer.weight_q, 100)
    assert w is not v and torch.equal(w[:, :100].float(), layer.weight.detach())


def test_bad_input_is_refused_before_work():
    a = F.pack_ternary(rand_ternary(20, 64))
    with pytest.raises(RuntimeError, match=r"b: expected W = 2\*ceil\(K/64\) = 2 words for K = 64, got W = 4"):
        xnor_gemm_int_mm(a, torch.zeros(8, 2, 4, dtype=torch.int32), 64)


def test_gpu_rule_sends_large_hopper_shapes_to_cublaslt():
    assert F.gpu_gemm_method(4096, 4096, 4096, sm_major=9) == "int_mm"
    assert F.gpu_gemm_method(4096, 4096, 4096, sm_major=8) == "b1"  # binary tensor cores on sm_8x
    assert F.gpu_gemm_method(16, 4096, 4096, sm_major=8) == "tc"  # a 16-row tile for M <= 16
    assert F.gpu_gemm_method(16, 4096, 4096, sm_major=9) == "tc"  # cuBLASLt int8 wants M > 16
    assert F.gpu_gemm_method(4096, 4100, 4096, sm_major=9) == "tc"  # and N a multiple of 8
