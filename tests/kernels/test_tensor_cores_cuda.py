"""The CUDA tensor-core GEMMs and conv, run through the host emulation, whose mma.sync follows the PTX ISA's
fragment layouts: int8 (csrc/gxnor/cuda/tc_gemm.cu, m16n8k32 on the tc16 layout: the layout
conversion equals the reference's) and binary (b1_gemm.cu, m16n8k256 .and.popc on format v1 bit
planes), the int8 implicit-GEMM conv (tc_conv.cu), and the float x ternary GEMM on bf16 tensor cores
(bf16_gemm.cu: m16n8k16 fed by ldmatrix and cp.async, all emulated); bit-exact against the
reference (the bf16 GEMM on integer-valued x, whose fp32 sums are exact in any order)."""

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


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("R,K", [(1, 1), (3, 17), (20, 100), (33, 64), (5, 130)])
def test_to_tb16_matches_reference(R, K, transpose):
    p = packed(R, K)
    assert torch.equal(emu.to_tb16(p, K, transpose), ref.to_bf16_layout(p, K, transpose))


# (M, N, K, layout): tails of the 128 x 128 tile in M and in the output columns, R (the reduction:
# K for nt, N for nn) inside one 64-value step, at its edge and over several.
BF16_CASES = [(1, 1, 8, "nt"), (5, 7, 16, "nt"), (129, 5, 72, "nt"), (130, 131, 200, "nt"), (3, 64, 8, "nn"),
              (130, 136, 200, "nn"), (17, 256, 129, "nn"), (2, 9, 1000, "nt")]


@pytest.mark.parametrize("M,N,K,layout", BF16_CASES)
def test_ternary_matmul_bf16_tensor_cores_bit_exact(M, N, K, layout):
    nn = layout == "nn"
    w = packed(N, K)
    x = torch.randint(-64, 65, (M, N if nn else K)).to(torch.bfloat16)  # sums exact in fp32 in any order
    assert torch.equal(emu.ternary_matmul_bf16(x, w, K, nn), ref.ternary_matmul(x, w, K, nn))
    got32 = emu.ternary_matmul_bf16(x, w, K, nn, torch.float32)
    assert torch.equal(got32, ref.ternary_matmul(x.float(), w, K, nn))


def test_ternary_matmul_bf16_tensor_cores_weight_gradient():
    """dW = dY^T X from the packed activations X (M, 2, W): the nn product with X as the ternary operand."""
    M, N, K = 136, 70, 150
    hq, gy = packed(M, K), torch.randint(-9, 10, (M, N)).to(torch.bfloat16)
    want = gy.double().T @ ref.unpack_ternary(hq, K, torch.float64)
    assert torch.equal(emu.ternary_matmul_bf16(gy.T.contiguous(), hq, K, True, torch.float32), want.float())


def test_ternary_matmul_bf16_tensor_cores_random_floats():
    M, N, K = 70, 40, 264
    w, x = packed(N, K), torch.randn(M, K).to(torch.bfloat16)
    want = ref.ternary_matmul(x.float(), w, K)
    torch.testing.assert_close(emu.ternary_matmul_bf16(x, w, K, False, torch.float32), want, rtol=1e-5, atol=1e-5)
    x[3, 5] = float("nan")  # NaN x 0 is NaN: the row's every output, as in the reference; no other row
    got = emu.ternary_matmul_bf16(x, w, K, False, torch.float32)
    assert torch.equal(torch.isnan(got), torch.isnan(ref.ternary_matmul(x.float(), w, K)))
    assert torch.isnan(got[3]).all() and not torch.isnan(got[torch.arange(M) != 3]).any()


def test_ternary_matmul_bf16_tensor_cores_refuses_partial_chunks():
    with pytest.raises(RuntimeError, match="error 1"):
        emu.ternary_matmul_bf16(torch.ones(2, 12, dtype=torch.bfloat16), packed(3, 12), 12)


@pytest.mark.skipif(not hasattr(torch.ops.gxnor_native, "cuda_bf16_uses_tc"), reason="built without CUDA")
def test_native_bf16_rule_is_the_python_rule():
    from gxnor_cuda.functional import bf16_tensor_core_shape

    for R, P in itertools.product((1, 8, 12, 64, 1000, 1024), (1, 128, 65535 * 128, 65535 * 128 + 1)):
        assert torch.ops.gxnor_native.cuda_bf16_uses_tc(R, P) == bf16_tensor_core_shape(R, P)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("M,N,K,layout", BF16_CASES)
def test_ternary_matmul_bf16_on_the_gpu_bit_exact(M, N, K, layout):
    """The compiled bf16 kernel (the native op's route for bf16 x on sm_80+) on integer-valued x."""
    from gxnor_cuda import functional as F

    nn = layout == "nn"
    w = packed(N, K)
    x = torch.randint(-64, 65, (M, N if nn else K)).to(torch.bfloat16)
    got = F.ternary_matmul(x.cuda(), w.cuda(), K, layout, backend="cuda").cpu()
    assert torch.equal(got, ref.ternary_matmul(x, w, K, nn))
