"""The int8 tensor-core GEMM in the tc16 layout (gxnor_cuda/_triton/tc.py), run by the Triton
interpreter here: the layout against its definition, the GEMM bit-exact against the reference,
the K limit refused before any work, and the GPU shape rule. Its compiled code is checked in
test_compiled.py (IGMMA / IMMA, no spills, decode cost, no byte permutes)."""

from __future__ import annotations

import pytest
import torch

from gxnor_cuda import _backend, reference
from gxnor_cuda import functional as F

from .helpers import device_for, rand_ternary

DEV = device_for("triton")  # a GPU when there is one, else the interpreter on the CPU

pytestmark = pytest.mark.skipif(not _backend.available("triton"), reason="triton not installed")


def _decode_by_definition(words: torch.Tensor, K: int) -> torch.Tensor:
    """tc16 words (R, T) -> values (R, K): the code of k = 16 t + 4 p + j at bits 8 j + 6 - 2 p."""
    w = words.to(torch.int64) & 0xFFFFFFFF
    R, T = w.shape
    out = torch.empty((R, T, 4, 4), dtype=torch.int64)
    for p in range(4):
        for j in range(4):
            code = (w >> (8 * j + 6 - 2 * p)) & 3
            out[:, :, p, j] = torch.where(code == 3, -1, code)  # 2-bit two's complement; 10 never occurs
            assert not bool((code == 2).any())
    return out.reshape(R, 16 * T)[:, :K]


@pytest.mark.parametrize("K", [1, 15, 16, 17, 64, 127, 128, 129, 300])
def test_tc_layout_matches_its_definition(K):
    x = rand_ternary(7, K)
    p = F.pack_ternary(x)
    ref = reference.to_tc_layout(p, K)
    assert ref.shape == (7, 8 * -(-K // 128))
    assert torch.equal(_decode_by_definition(ref, K), x.to(torch.int64))
    assert torch.equal(_decode_by_definition(ref, ref.shape[1] * 16)[:, K:], torch.zeros(7, ref.shape[1] * 16 - K,
                                                                                          dtype=torch.int64))
    from gxnor_cuda._triton.tc import to_tc_layout

    assert torch.equal(to_tc_layout(p.to(DEV), K).cpu(), ref)


@pytest.mark.parametrize("M, N, K", [(1, 1, 1), (5, 7, 130), (130, 70, 200), (3, 300, 129), (128, 128, 256),
                                     (129, 257, 383)])
@pytest.mark.parametrize("epilogue", ["int", "scale", "scale_bias", "bias"])
def test_tc_gemm_is_exact(M, N, K, epilogue):
    a = F.pack_ternary(rand_ternary(M, K, p_zero=0.2))
    b = F.pack_ternary(rand_ternary(N, K, p_zero=0.5))
    scale = torch.randn(N) if "scale" in epilogue else None
    bias = torch.randn(N) if "bias" in epilogue else None
    want = reference.xnor_gemm(a, b, K, scale, bias)
    on = lambda t: t.to(DEV) if t is not None else None  # noqa: E731
    got = F.xnor_gemm(on(a), on(b), K, on(scale), on(bias), backend="triton", method="tc").cpu()
    assert got.dtype == want.dtype and torch.equal(got, want)


def test_tc_gemm_extremes_of_the_accumulator():
    """All +1 against all -1 over a long K: every product -1, the sum -K (4096 K in the int32)."""
    K = 5000
    a = F.pack_ternary(torch.ones(3, K, device=DEV))
    b = F.pack_ternary(-torch.ones(2, K, device=DEV))
    want = torch.full((3, 2), -K, dtype=torch.int32, device=DEV)
    assert torch.equal(F.xnor_gemm(a, b, K, backend="triton", method="tc"), want)


def test_tc_refuses_k_past_the_int32_accumulator():
    from gxnor_cuda._triton.tc import MAX_K, xnor_gemm_tc

    K = MAX_K + 1
    a = torch.zeros(1, 2, 2 * -(-K // 64), dtype=torch.int32, device=DEV)
    with pytest.raises(RuntimeError, match=r"K: expected at most 524287 .* got 524288"):
        xnor_gemm_tc(a, a, K)


def test_gpu_shape_rule():
    assert F.gpu_gemm_method(4096, 4096, 4096, sm_major=8) == "b1"  # the native binary tensor-core kernel
    assert F.gpu_gemm_method(4096, 4096, 4096, sm_major=10) == "int_mm"
    assert F.gpu_gemm_method(16, 4096, 4096) == "tc"  # memory-bound: the 16-row tile streams B
    assert F.gpu_gemm_method(4096, 16, 4096) == "popcount"  # B would idle most of the 256-column tile
    assert F.gpu_gemm_method(4096, 4096, 128) == "popcount"
    assert F.gpu_gemm_method(4096, 4096, 2**19) == "popcount"  # past the int32 accumulator of the tc path



if _backend.available("triton"):
    import triton
    import triton.language as tl

    from gxnor_cuda._triton.tc import _decode

    @triton.jit
    def _decode_rows(w_ptr, o_ptr, R: tl.constexpr, BT: tl.constexpr, HW_ASM: tl.constexpr):
        r = tl.arange(0, R)
        w = tl.load(w_ptr + r[:, None] * BT + tl.arange(0, BT)[None, :])
        tl.store(o_ptr + r[:, None] * (16 * BT) + tl.arange(0, 16 * BT)[None, :], _decode(w, HW_ASM))


@pytest.mark.parametrize("hw_asm", [False, pytest.param(True, marks=pytest.mark.skipif(
    DEV.type != "cuda", reason="the inline-asm decode runs on a GPU only (the interpreter has no inline asm)"))])
def test_decode_gives_64_v_in_k_order(hw_asm):
    """The kernel's decode alone (a consistent permutation of k would leave every GEMM exact)."""
    x = rand_ternary(4, 128)
    words = reference.to_tc_layout(F.pack_ternary(x), 128).to(DEV)
    out = torch.empty(4, 128, dtype=torch.int8, device=DEV)
    _decode_rows[(1,)](words, out, 4, 8, hw_asm)
    assert torch.equal(out.cpu(), (64 * x).to(torch.int8))


def test_fake_and_traced_cuda_calls_stay_on_the_registered_op():
    """CUDA fake tensors of a tensor-core shape: the registered op's fake answers, no Triton launch."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=False):
        a = torch.empty(256, 2, 8, dtype=torch.int32, device="cuda")
        b = torch.empty(128, 2, 8, dtype=torch.int32, device="cuda")
        c = F.xnor_gemm(a, b, 256)
    assert c.shape == (256, 128) and c.dtype == torch.int32 and c.device.type == "cuda"


def test_weight_conversion_is_cached_until_the_weight_changes():
    from gxnor_cuda.nn import GXNORLinear

    layer = GXNORLinear(200, 64).to(DEV)
    w, K = layer.weight_q, 200
    a = F.pack_ternary(rand_ternary(5, K, device=DEV))
    first = F.xnor_gemm(a, w, K, backend="triton", method="tc")
    cached = w.gxnor_tc[1]
    assert torch.equal(F.xnor_gemm(a, w, K, backend="triton", method="tc"), first) and w.gxnor_tc[1] is cached
    from gxnor_cuda.optim import DST

    layer.weight.grad = torch.randn(64, K, device=DEV) * 50
    DST([layer.weight], lr=1.0).step()  # writes the storage in place and bumps its version
    got = F.xnor_gemm(a, w, K, backend="triton", method="tc")
    assert w.gxnor_tc[1] is not cached
    assert torch.equal(got.cpu(), reference.xnor_gemm(a.cpu(), w.detach().cpu(), K)) and not torch.equal(got, first)


@pytest.mark.parametrize("n, c, h, w, o, k, stride, pad, dil, groups", [
    (2, 5, 6, 7, 3, 3, 1, 1, 1, 1), (1, 130, 5, 5, 20, 3, 2, 1, 1, 1), (2, 8, 5, 6, 6, 2, 1, 0, 2, 2),
    (1, 64, 4, 4, 70, 1, 1, 0, 1, 1), (1, 3, 9, 9, 129, 5, 2, 2, 1, 1), (3, 256, 3, 3, 8, 3, 1, 1, 1, 1)])
@pytest.mark.parametrize("epilogue", ["int", "scale_bias"])
def test_tc_conv_is_exact(n, c, h, w, o, k, stride, pad, dil, groups, epilogue):
    from gxnor_cuda._triton.tc_conv import xnor_conv2d_tc

    xp = F.pack_conv_input(rand_ternary(n, c, h, w), groups)
    wp = F.pack_conv_weight(rand_ternary(o, c // groups, k, k, p_zero=0.5))
    scale, bias = (torch.randn(o), torch.randn(o)) if epilogue == "scale_bias" else (None, None)
    want = reference.xnor_conv2d(xp, wp, c, stride, pad, dil, groups, scale, bias)
    on = lambda t: t.to(DEV) if t is not None else None  # noqa: E731
    got = xnor_conv2d_tc(on(xp), on(wp), c, stride, pad, dil, groups, on(scale), on(bias)).cpu()
    assert got.dtype == want.dtype and torch.equal(got, want)
    assert got.permute(0, 2, 3, 1).is_contiguous()  # channels-last like every backend


def test_tc_conv_refuses_k_past_the_int32_accumulator():
    from gxnor_cuda._triton.tc_conv import xnor_conv2d_tc

    c = 2**19 // 9 + 64  # 3x3 taps over c channels: more than 2^19 - 1 values per output
    xp = F.pack_conv_input(torch.zeros(1, c, 3, 3, device=DEV))
    wp = F.pack_conv_weight(torch.zeros(1, c, 3, 3, device=DEV))
    with pytest.raises(RuntimeError, match=r"w: expected kh \* kw \* C / groups at most 524287"):
        xnor_conv2d_tc(xp, wp, c)


def test_gpu_conv_rule():
    assert F.gpu_conv_method(128, 256, 9) == "tc"
    assert F.gpu_conv_method(32, 64, 25) == "popcount"  # C / groups under half the 128-value K step
    assert F.gpu_conv_method(128, 128, 9, groups=128) == "popcount"  # depthwise
