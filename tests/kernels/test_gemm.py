"""xnor_gemm (bit-exact) and ternary_matmul (float32 rounding of the float64 reference) on every
backend: C++ (every ISA path), Triton (popcount and int8-dot kernels, interpreter), CUDA
(emulated on the host, and natively when a GPU is present)."""

from __future__ import annotations

import pytest
import torch

from gxnor_cuda import functional as F
from gxnor_cuda import reference as ref
from tests import emu
from tests.helpers import backend_params, device_for, rand_ternary

SHAPES = [(1, 1, 1), (1, 7, 33), (5, 1, 64), (3, 4, 65), (17, 9, 4097), (70, 66, 300), (2, 3, 1000)]
# ternary_matmul also: several 256 x 256 weight tiles with partial edges on both axes (the C++
# cache-blocked path, both accumulation orders), NT tiles widened along K for a short weight
# (100 rows: 640-wide K chunks, the last partial), and M above that path's limit (the one-GEMM path).
TM_SHAPES = [*SHAPES, (9, 600, 520), (5, 100, 1500), (1030, 40, 70)]


def packed(rows, K, dev="cpu"):
    return ref.pack_ternary(rand_ternary(rows, K)).to(dev)


def gemm_impls():
    out = [pytest.param(("cuda_emu", None), id="cuda_emu")]
    for b in backend_params():
        name = b.values[0]
        if name == "triton":
            out += [pytest.param(("triton", m), marks=b.marks, id=f"triton-{m}") for m in ("popcount", "dot")]
        else:
            out.append(pytest.param((name, None), marks=b.marks, id=name))
    return out


def run_gemm(impl, a, b, K, scale=None, bias=None):
    backend, method = impl
    if backend == "cuda_emu":
        return emu.xnor_gemm(a, b, K, scale, bias)
    dev = device_for(backend)
    s = scale.to(dev) if scale is not None else None
    bb = bias.to(dev) if bias is not None else None
    return F.xnor_gemm(a.to(dev), b.to(dev), K, s, bb, backend=backend, method=method).cpu()


@pytest.mark.parametrize("impl", gemm_impls())
@pytest.mark.parametrize("M,N,K", SHAPES)
def test_xnor_gemm_bit_exact(impl, M, N, K):
    a, b = packed(M, K), packed(N, K)
    want = ref.xnor_gemm(a, b, K)
    got = run_gemm(impl, a, b, K)
    assert got.dtype == torch.int32 and torch.equal(got, want)


@pytest.mark.parametrize("impl", gemm_impls())
def test_xnor_gemm_epilogue(impl):
    M, N, K = 9, 13, 200
    a, b = packed(M, K), packed(N, K)
    scale, bias = torch.randn(N), torch.randn(N)
    for s, bb in ((scale, bias), (scale, None), (None, bias)):
        got = run_gemm(impl, a, b, K, s, bb)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, ref.xnor_gemm(a, b, K, s, bb), rtol=1e-6, atol=1e-5)


def _cpp_gemm_matches_reference(M, N, K):
    """The C++ xnor_gemm on fresh random operands: int32 bit-exact, the float epilogue to rounding."""
    a, b = packed(M, K), packed(N, K)
    assert torch.equal(F.xnor_gemm(a, b, K, backend="cpp"), ref.xnor_gemm(a, b, K))
    s = torch.randn(N)
    torch.testing.assert_close(F.xnor_gemm(a, b, K, s, s, backend="cpp"), ref.xnor_gemm(a, b, K, s, s))


@pytest.mark.parametrize("M,N,K", [*SHAPES, (300, 257, 513), (64, 100, 2048)])
def test_xnor_gemm_every_cpu_isa(cpu_isa, M, N, K):
    # 300 x 257 x 513 and 64 x 100 x 2048 exceed the AMX work threshold: they take the tile path.
    _cpp_gemm_matches_reference(M, N, K)


def test_xnor_gemm_large_output_cpu():
    # 1100 x 1030 int32 (4.3 MiB) and its float32 twin: past the 4 MiB line above which the C++
    # binding advises the fresh output onto huge pages before writing it (csrc/bind/alloc.h).
    _cpp_gemm_matches_reference(1100, 1030, 70)


def test_xnor_gemm_reused_output_buffers_cpu():
    # Freed large outputs go back to a pool and the next output of about the same size reuses one
    # (csrc/bind/alloc.h): results must not depend on what the buffer held, and a live output must
    # never be handed out again.
    M, N, K = 1100, 1030, 70
    b = packed(N, K)
    live = []
    for i in range(4):
        a = packed(M - 40 * i, K)
        got = F.xnor_gemm(a, b, K, backend="cpp")
        assert torch.equal(got, ref.xnor_gemm(a, b, K)), i
        if i < 2:
            live.append((got, got.clone()))  # kept alive while later calls run
        del got
    for got, copy in live:
        assert torch.equal(got, copy)


def test_xnor_gemm_noncontiguous_and_empty():
    K = 100
    a = packed(8, K).transpose(0, 2).contiguous().transpose(0, 2)
    b = packed(6, K)
    assert not a.is_contiguous()
    assert torch.equal(F.xnor_gemm(a, b, K), ref.xnor_gemm(a.contiguous(), b, K))
    e = F.xnor_gemm(packed(0, K), b, K)
    assert e.shape == (0, 6) and e.dtype == torch.int32
    assert F.xnor_gemm(a, packed(0, K), K).shape == (8, 0)


@pytest.mark.parametrize("backend", ["reference", *backend_params()])
def test_xnor_gemm_bad_input(backend):
    dev = device_for(backend) if backend != "reference" else torch.device("cpu")
    a, b = packed(4, 100, dev), packed(5, 200, dev)
    with pytest.raises(RuntimeError, match=r"b: expected W = 2\*ceil\(K/64\) = 4 words for K = 100"):
        F.xnor_gemm(a, b, 100, backend=backend)
    with pytest.raises(RuntimeError, match=r"a: expected W = 2\*ceil\(K/64\) = 10 words for K = 300"):
        F.xnor_gemm(a, packed(5, 100, dev), 300, backend=backend)
    with pytest.raises(RuntimeError, match="a: expected packed dtype torch.int32"):
        F.xnor_gemm(a.float(), packed(5, 100, dev), 100, backend=backend)
    with pytest.raises(RuntimeError, match=r"scale: expected shape \(N,\) = \(5,\)"):
        F.xnor_gemm(a, packed(5, 100, dev), 100, torch.ones(4, device=dev), backend=backend)
    with pytest.raises(RuntimeError, match="bias: expected dtype torch.float32"):
        F.xnor_gemm(a, packed(5, 100, dev), 100, None, torch.ones(5, dtype=torch.float64, device=dev),
                    backend=backend)


def mm_impls():
    return [pytest.param("reference", id="reference"), *backend_params()]


def assert_close_to_float64(got, x, w, K, nn):
    """got == x @ w_dense.T (NT) or x @ w_dense (NN) within float32 rounding of the float64 result."""
    wd = ref.unpack_ternary(w, K, torch.float64)
    want = x.double() @ (wd if nn else wd.T)
    assert got.dtype == torch.float32 and got.shape == want.shape
    inner = w.shape[0] if nn else K
    # float32 accumulation of `inner` terms: error bound ~ inner * eps * sum|x|
    bound = 4 * inner * torch.finfo(torch.float32).eps * x.abs().sum(1, keepdim=True).double() + 1e-6
    assert bool(((got.double() - want).abs() <= bound).all())


@pytest.mark.parametrize("backend", mm_impls())
@pytest.mark.parametrize("M,N,K", TM_SHAPES)
@pytest.mark.parametrize("nn", [False, True])
def test_ternary_matmul_close_to_float64(backend, M, N, K, nn):
    dev = device_for(backend) if backend != "reference" else torch.device("cpu")
    w = packed(N, K)
    x = torch.randn(M, N if nn else K)
    got = F.ternary_matmul(x.to(dev), w.to(dev), K, "nn" if nn else "nt", backend=backend).cpu()
    assert_close_to_float64(got, x, w, K, nn)


# The C++ short-weight kernels (N <= 16 rows, AVX-512): every N (NT: N accumulator columns per
# row, 8 down to 1 rows per block plus the row tail; NN: ceil(N / 3) lookup groups, the last one
# partial), K tails of 1, 15 and 17 lanes, and an NN output over 1 MiB (non-temporal stores).
@pytest.mark.parametrize("N", range(1, 17))
@pytest.mark.parametrize("nn", [False, True])
def test_ternary_matmul_short_weight_every_cpu_isa(cpu_isa, N, nn):
    for M, K in [(1, 1), (13, 17), (9, 31), (37, 512), (300, 1024)]:
        w = packed(N, K)
        x = torch.randn(M, N if nn else K)
        assert_close_to_float64(F.ternary_matmul(x, w, K, "nn" if nn else "nt", backend="cpp"), x, w, K, nn)


@pytest.mark.parametrize("backend", backend_params(include_cuda=False))
def test_ternary_matmul_noncontiguous_and_bf16(backend):
    K, N = 130, 20
    w = packed(N, K)
    x = torch.randn(K, 6).t()
    assert not x.is_contiguous()
    torch.testing.assert_close(F.ternary_matmul(x, w, K, backend=backend), ref.ternary_matmul(x, w, K),
                               rtol=1e-5, atol=1e-4)
    xb = torch.randn(6, K).bfloat16()
    got = F.ternary_matmul(xb, w, K, backend=backend)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), ref.ternary_matmul(xb, w, K).float(), rtol=2e-2, atol=5e-1)


@pytest.mark.parametrize("backend", ["reference", *backend_params()])
def test_ternary_matmul_bad_input(backend):
    dev = device_for(backend) if backend != "reference" else torch.device("cpu")
    w = packed(5, 100, dev)
    with pytest.raises(RuntimeError, match="x: expected K = 100 columns"):
        F.ternary_matmul(torch.randn(3, 99, device=dev), w, 100, backend=backend)
    with pytest.raises(RuntimeError, match="x: expected N = 5 columns"):
        F.ternary_matmul(torch.randn(3, 100, device=dev), w, 100, "nn", backend=backend)
    with pytest.raises(RuntimeError, match="x: expected dtype float32 or bfloat16"):
        F.ternary_matmul(torch.randn(3, 100, device=dev).double(), w, 100, backend=backend)


@pytest.mark.parametrize("op,args", [
    ("xnor_gemm", lambda: (packed(7, 130), packed(5, 130), 130)),
    ("xnor_gemm", lambda: (packed(7, 130), packed(5, 130), 130, torch.randn(5), torch.randn(5))),
    ("ternary_matmul", lambda: (torch.randn(3, 70), packed(4, 70), 70, False)),
    ("ternary_matmul", lambda: (torch.randn(3, 4), packed(4, 70), 70, True)),
])
def test_opcheck(op, args):
    torch.library.opcheck(getattr(torch.ops.gxnor, op), args())


def test_ternary_matmul_layout_argument():
    w, x = packed(5, 100), torch.randn(3, 5)
    with pytest.raises(ValueError, match="layout: expected 'nt' .* or 'nn' .*, got 'tn'"):
        F.ternary_matmul(x, w, 100, "tn")
    with pytest.warns(DeprecationWarning, match="layout='nn'"):
        old = F.ternary_matmul(x, w, 100, nn=True)
    assert torch.equal(old, F.ternary_matmul(x, w, 100, "nn"))
