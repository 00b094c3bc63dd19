"""The CUDA tensor-core GEMMs and conv, run through the host emulation, whose mma.sync follows the PTX ISA's
fragment layouts: int8 (csrc/gxnor/cuda/tc_gemm.cu, m16n8k32 on the tc16 layout: the layout
conversion equals the reference's) and binary (b1_gemm.cu, m16n8k256 .and.popc on format v1 bit
planes), and the int8 implicit-GEMM conv (tc_conv.cu); bit-exact against the reference."""

import itertools

import pytest
import torch

import gxnor_cuda  # noqa: F401  (the native ops)
import gxnor_cuda.reference as ref
from tests import emu
from tests.helpers import rand_ternary

# Tile tails in M and N (CTA tile 128 x 128), K tails inside a 128-value step, one and several steps.
SHAPES = [(1, 1, 1), (5, 7, 33), (16, 70, 256), (130, 129, 300), (129, 140, 600)]


def packed(rows, K):
    return ref.pack_ternary(rand_ternary(rows, K))


@pytest.mark.parametrize("R,K", [(1, 1), (3, 127), (5, 128), (7, 300), (2, 1025)])
def test_to_tc16_matches_reference(R, K):
    p = packed(R, K)
    assert torch.equal(emu.to_tc16(p, K), ref.to_tc_layout(p, K))


GEMMS = {"tc": emu.xnor_gemm_tc, "b1": emu.xnor_gemm_b1}


@pytest.mark.parametrize("kind", GEMMS)
@pytest.mark.parametrize("M,N,K", SHAPES + [(3, 5, 64), (4, 130, 320)])  # W = 2, 10: not whole 8-word steps
def test_xnor_gemm_tensor_cores_bit_exact(kind, M, N, K):
    a, b = packed(M, K), packed(N, K)
    got = GEMMS[kind](a, b, K)
    assert got.dtype == torch.int32 and torch.equal(got, ref.xnor_gemm(a, b, K))


@pytest.mark.parametrize("kind", GEMMS)
def test_xnor_gemm_tensor_cores_extreme_sums(kind):
    # all-ones and all-minus-ones rows: |C| = K, the top of the accumulators' range (4096 C for tc)
    K = 1000
    a = ref.pack_ternary(torch.tensor([[1.0] * K, [-1.0] * K, [0.0] * K]))
    b = ref.pack_ternary(torch.cat([torch.ones(4, K), -torch.ones(5, K)]))
    assert torch.equal(GEMMS[kind](a, b, K), ref.xnor_gemm(a, b, K))


@pytest.mark.parametrize("kind", GEMMS)
def test_xnor_gemm_tensor_cores_epilogue(kind):
    M, N, K = 9, 13, 200
    a, b = packed(M, K), packed(N, K)
    scale, bias = torch.randn(N), torch.randn(N)
    torch.testing.assert_close(GEMMS[kind](a, b, K, scale, bias), ref.xnor_gemm(a, b, K, scale, bias),
                               rtol=0, atol=0)


@pytest.mark.skipif(not hasattr(torch.ops.gxnor_native, "cuda_gemm_uses_tc"), reason="built without CUDA")
def test_native_tc_rule_is_the_python_rule():
    """The native CUDA op sends the shapes of gpu_gemm_method's tensor-core routes to its tensor-core
    kernels (binary on sm_8x, int8 on sm_90 and newer)."""
    from gxnor_cuda.functional import gpu_gemm_method

    for N in (1, 63, 64, 65, 4096):
        for K in (1, 255, 256, 1000, 2**19 - 1, 2**19):
            want = gpu_gemm_method(1000, N, K, 8) == "b1"
            assert want == (gpu_gemm_method(16, N, K, 8) == "tc") == (gpu_gemm_method(16, N, K, 9) == "tc")
            assert torch.ops.gxnor_native.cuda_gemm_uses_tc(N, K) == want, (N, K)


# (n, c, h, w, o, k, stride, padding, dilation, groups): tile tails in rows and channels, padding
# taps (the zero row), strides, dilation, groups, channel counts inside one and several K steps.
CONV_CASES = [(1, 3, 5, 6, 4, 3, 1, 1, 1, 1), (2, 70, 6, 5, 9, 3, 2, 1, 2, 1), (1, 130, 4, 4, 70, 3, 1, 1, 1, 1),
              (2, 8, 7, 7, 6, 5, 1, 2, 1, 2), (3, 200, 3, 3, 17, 1, 1, 0, 1, 1)]


@pytest.mark.parametrize("n,c,h,w,o,k,s,p,d,g", CONV_CASES)
def test_xnor_conv2d_tc_bit_exact(n, c, h, w, o, k, s, p, d, g):
    from gxnor_cuda import functional as F

    x = F.pack_conv_input(rand_ternary(n, c, h, w), g, backend="reference")
    wp = F.pack_conv_weight(rand_ternary(o, c // g, k, k), backend="reference")
    want = F.xnor_conv2d(x, wp, c, s, p, d, g, backend="reference")
    assert torch.equal(emu.xnor_conv2d_tc(x, wp, c, s, p, d, g), want)
    sc, bi = torch.randn(o), torch.randn(o)
    torch.testing.assert_close(emu.xnor_conv2d_tc(x, wp, c, s, p, d, g, sc, bi),
                               F.xnor_conv2d(x, wp, c, s, p, d, g, sc, bi, backend="reference"), rtol=0, atol=0)


@pytest.mark.skipif(not hasattr(torch.ops.gxnor_native, "cuda_conv_uses_tc"), reason="built without CUDA")
def test_native_conv_tc_rule_is_the_python_rule():
    from gxnor_cuda.functional import gpu_conv_method

    for c, o, taps, g in itertools.product((32, 64, 200), (63, 64, 512), (1, 9, 2**13), (1, 2)):
        assert torch.ops.gxnor_native.cuda_conv_uses_tc(c, o, taps, g) == (gpu_conv_method(c, o, taps, g) == "tc")
