"""dst_update_ / dst_update_states_: every backend bit-identical to the reference for the same
(seed, offset) under both random-number contracts; Philox equals Triton's tl.randint4x; bad input
leaves w untouched."""

from __future__ import annotations

import pytest
import torch

from gxnor_cuda import functional as F
from gxnor_cuda import reference as ref
from gxnor_cuda import reference_dst as rd
from tests import emu
from tests.helpers import backend_params, device_for, rand_ternary

BACKENDS = [*backend_params(), "cuda_emu"]


def call(backend, op, *args):
    if backend == "cuda_emu":
        return getattr(emu, op)(*args)
    return getattr(F, op)(*args, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 31), (2, 64), (5, 65), (2, 3, 100), (4, 1000)])
@pytest.mark.parametrize("increment", [False, True])
@pytest.mark.parametrize("rng", [1, 2])
def test_packed_identical_to_reference(backend, shape, increment, rng):
    dev = device_for(backend) if backend != "cuda_emu" else torch.device("cpu")
    x = rand_ternary(*shape)
    w0 = ref.pack_ternary(x)
    g = torch.randn(shape) * 3
    g.view(-1)[::17] = float("nan")
    seed, offset = int(torch.randint(0, 2**40, ())), int(torch.randint(0, 2**33, ()))
    want = w0.clone()
    nbad = rd.dst_update_(want, g, 0.37, 3.0, seed, offset, increment, rng)
    got = w0.clone().to(dev)
    n = call(backend, "dst_update_", got, g.to(dev), 0.37, 3.0, seed, offset, increment, rng)
    assert torch.equal(got.cpu(), want) and int(n) == int(nbad) == int(torch.isnan(g).sum())
    assert int(ref.count_noncanonical(got.cpu(), shape[-1])) == 0
    moved = ref.unpack_ternary(want, shape[-1])[torch.isnan(g)]
    assert torch.equal(moved, x.to(torch.int8)[torch.isnan(g)]), "NaN-gradient weights moved"


@pytest.mark.parametrize("shape", [(3, 31), (5, 65), (4, 1000), (257, 31), (3, 130)])
@pytest.mark.parametrize("rng", [1, 2])
def test_packed_every_cpu_isa(cpu_isa, shape, rng):
    # AVX-512 draws 16 Philox streams per vector, AVX2 8, both walking words row by row; scalar runs
    # the generic code. (257, 31): 514 plane words, split over 2 threads into odd-length ranges.
    x = rand_ternary(*shape)
    g = torch.randn(shape) * 3
    seed, offset = int(torch.randint(0, 2**40, ())), 2**32 - 7  # the counter's low word wraps inside a vector
    want = ref.pack_ternary(x)
    rd.dst_update_(want, g, 0.37, 3.0, seed, offset, rng=rng)
    got = ref.pack_ternary(x)
    F.dst_update_(got, g, 0.37, 3.0, seed, offset, rng=rng, backend="cpp")
    assert torch.equal(got, want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n_states", [0, 2, 3])
@pytest.mark.parametrize("rng", [1, 2])
def test_states_identical_to_reference(backend, n_states, rng):
    dev = device_for(backend) if backend != "cuda_emu" else torch.device("cpu")
    hi = 1 if n_states == 0 else 2 ** (n_states - 1)
    s0 = torch.randint(-hi, hi + 1, (6, 77), dtype=torch.int8)
    if n_states == 0:
        s0 = torch.where(s0 >= 0, 1, -1).to(torch.int8)
    g = torch.randn(6, 77) * 2
    want = s0.clone()
    rd.dst_update_states_(want, g, 0.5, 3.0, n_states, 11, 5, False, rng)
    got = s0.clone().to(dev)
    call(backend, "dst_update_states_", got, g.to(dev), 0.5, 3.0, n_states, 11, 5, False, rng)
    assert torch.equal(got.cpu(), want)
    assert int(want.abs().max()) <= hi


def test_rng_v2_stream():
    """v2: element (r, k) takes output k % 4 of counter offset + r * ceil(K / 4) + k // 4; v1: the
    first output of counter offset + flat index."""
    seed, off, K = 2**35 + 17, 2**32 - 3, 7
    got = rd.rng_words(seed, off, (2, K), 2)
    for r in range(2):
        for k in range(K):
            assert int(got[r, k]) == int(rd.philox4(seed, torch.tensor([off + r * 2 + k // 4]))[k % 4][0])
    v1 = rd.rng_words(seed, off, (2, K), 1)
    assert torch.equal(v1.flatten(), rd.philox_first(seed, off + torch.arange(2 * K)))
    assert rd.counters_used((2, K), 2) == 4 and rd.counters_used((2, K), 1) == 14


def test_unchecked_update_reads_gate_bits():
    """check=False (the optimizer's path for weights it wrote itself) gives the same result on
    canonical weights, with no validation."""
    x = rand_ternary(3, 70)
    g = torch.randn(3, 70)
    a, b = ref.pack_ternary(x), ref.pack_ternary(x)
    F.dst_update_(a, g, 0.3, 3.0, 1, 0)
    F.dst_update_(b, g, 0.3, 3.0, 1, 0, check=False)
    assert torch.equal(a, b)


def test_philox_matches_triton_randint():
    triton = pytest.importorskip("triton")
    import triton.language as tl

    @triton.jit
    def k(out_ptr, seed, off_ptr, N: tl.constexpr):
        i = tl.arange(0, N)
        o = tl.load(off_ptr + i)
        tl.store(out_ptr + i, tl.randint(seed, o))

    offs = torch.tensor([0, 1, 2**32 - 1, 2**32, 2**40 + 7, 12345678901, 3, 99], dtype=torch.int64)
    out = torch.empty(8, dtype=torch.int32)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    out = out.to(dev)
    k[(1,)](out, 2**35 + 17, offs.to(dev), N=8)
    want = rd.philox_first(2**35 + 17, offs)
    assert torch.equal(torch.where(want >= 2**31, want - 2**32, want).to(torch.int32), out.cpu())

    @triton.jit
    def k4(out_ptr, seed, off_ptr, N: tl.constexpr):
        i = tl.arange(0, N)
        r0, r1, r2, r3 = tl.randint4x(seed, tl.load(off_ptr + i))
        tl.store(out_ptr + i, r0)
        tl.store(out_ptr + N + i, r1)
        tl.store(out_ptr + 2 * N + i, r2)
        tl.store(out_ptr + 3 * N + i, r3)

    out4 = torch.empty(32, dtype=torch.int32, device=dev)
    k4[(1,)](out4, 2**35 + 17, offs.to(dev), N=8)
    want4 = torch.cat(rd.philox4(2**35 + 17, offs))
    assert torch.equal(torch.where(want4 >= 2**31, want4 - 2**32, want4).to(torch.int32), out4.cpu())


@pytest.mark.parametrize("backend", ["reference", *backend_params()])
def test_bad_input_leaves_w_untouched(backend):
    dev = device_for(backend) if backend != "reference" else torch.device("cpu")
    w = ref.pack_ternary(rand_ternary(3, 70)).to(dev)
    g = torch.randn(3, 70, device=dev)
    w0 = w.clone()
    cases = [
        (dict(lr=0.0), "lr: expected a finite float32 > 0"),
        (dict(lr=float("nan")), "lr: expected a finite float32 > 0"),
        (dict(m=-1.0), "m: expected a finite float32 > 0"),
        (dict(seed=-3), r"seed: expected an int in \[0, 2\^63\)"),
        (dict(grad=torch.randn(3, 130, device=dev)), "grad: expected K with"),
        (dict(grad=torch.randn(2, 70, device=dev)), r"grad: expected the logical shape \(\.\.\., K\)"),
        (dict(grad=g.double()), "grad: expected a float32/bfloat16/float16 gradient"),
        (dict(rng=3), r"rng: expected a random-number contract in \(1, 2\)"),
    ]
    for kw, msg in cases:
        args = dict(grad=g, lr=0.3, m=3.0, seed=1, offset=0, rng=2) | kw
        with pytest.raises(RuntimeError, match=msg):
            F.dst_update_(w, args["grad"], args["lr"], args["m"], args["seed"], args["offset"], rng=args["rng"],
                          backend=backend)
        assert torch.equal(w, w0)
    bad = w.clone()
    bad[0, 1, 0] |= 1
    bad[0, 0, 0] &= ~1
    b0 = bad.clone()
    with pytest.raises(RuntimeError, match="w: expected canonical packed weights"):
        F.dst_update_(bad, g, 0.3, 3.0, 1, 0, backend=backend)
    assert torch.equal(bad, b0)


@pytest.mark.parametrize("backend", ["reference", *backend_params()])
def test_bad_states_leave_s_untouched(backend):
    dev = device_for(backend) if backend != "reference" else torch.device("cpu")
    g = torch.randn(3, 9, device=dev)
    for n_states, bad_value, msg in [(2, 3, r"s: expected state indices in \[-2, 2\]"),
                                     (0, 0, r"s: expected binary states in \{-1, \+1\}, got 0")]:
        s = torch.ones(3, 9, dtype=torch.int8, device=dev)
        s[1, 4] = bad_value
        s0 = s.clone()
        with pytest.raises(RuntimeError, match=msg):
            F.dst_update_states_(s, g, 0.3, 3.0, n_states, 1, 0, backend=backend)
        assert torch.equal(s, s0)
    with pytest.raises(RuntimeError, match=r"n_states: expected N in \[0, 7\]"):
        F.dst_update_states_(torch.ones(3, 9, dtype=torch.int8, device=dev), g, 0.3, 3.0, 8, 1, 0, backend=backend)


def test_opcheck():
    w = ref.pack_ternary(rand_ternary(4, 70))
    for rng in (1, 2):
        torch.library.opcheck(torch.ops.gxnor.dst_update_, (w, torch.randn(4, 70), 0.3, 3.0, 5, 0, False, rng))
        s = torch.randint(-2, 3, (4, 9), dtype=torch.int8)
        torch.library.opcheck(torch.ops.gxnor.dst_update_states_,
                              (s, torch.randn(4, 9), 0.3, 3.0, 2, 5, 0, False, rng, False))
