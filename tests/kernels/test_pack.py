"""pack_ternary / quantize_pack / unpack_ternary / count_noncanonical: every backend vs reference."""

from __future__ import annotations

import pytest
import torch

from gxnor_cuda import _backend
from gxnor_cuda import functional as F
from gxnor_cuda import reference as ref
from tests import emu
from tests.helpers import backend_params, device_for, rand_ternary

KS = [1, 31, 32, 63, 64, 65, 1000]
LEADS = [(), (0,), (1,), (3,), (2, 3)]
BACKENDS = [*backend_params(), "cuda_emu"]


def run(backend, op, *args, **kw):
    if backend == "cuda_emu":
        return getattr(emu, op)(*args, **kw)
    return getattr(F, op)(*args, backend=backend, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("K", KS)
@pytest.mark.parametrize("lead", LEADS)
def test_roundtrip_matches_reference(backend, K, lead):
    dev = device_for(backend) if backend != "cuda_emu" else torch.device("cpu")
    x = rand_ternary(*lead, K, device=dev)
    want = ref.pack_ternary(x.cpu())
    got = run(backend, "pack_ternary", x)
    assert got.dtype == torch.int32 and got.shape == (*lead, 2, 2 * ((K + 63) // 64))
    assert torch.equal(got.cpu(), want), "packed words differ from the reference"
    assert int(ref.count_noncanonical(got.cpu(), K)) == 0
    back = run(backend, "unpack_ternary", got, K)
    assert back.dtype == torch.int8 and torch.equal(back.cpu(), x.cpu().to(torch.int8))
    backf = run(backend, "unpack_ternary", got, K, torch.float32)
    assert backf.dtype == torch.float32 and torch.equal(backf.cpu(), x.cpu())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.int8, torch.float64, torch.bfloat16, torch.float16, torch.int64])
def test_input_dtypes(backend, dtype):
    if backend == "cuda_emu" and dtype not in (torch.int8, torch.float64):
        pytest.skip("the emulation wrapper feeds int8 or float32, like the CUDA binding")
    dev = device_for(backend) if backend != "cuda_emu" else torch.device("cpu")
    x = rand_ternary(4, 77, dtype=dtype, device=dev)
    assert torch.equal(run(backend, "pack_ternary", x).cpu(), ref.pack_ternary(x.cpu()))


@pytest.mark.parametrize("backend", backend_params())
def test_noncontiguous_input(backend):
    dev = device_for(backend)
    x = rand_ternary(70, 50, device=dev).t()  # (50, 70), not contiguous
    assert not x.is_contiguous()
    assert torch.equal(F.pack_ternary(x, backend=backend).cpu(), ref.pack_ternary(x.cpu()))
    p = ref.pack_ternary(rand_ternary(6, 100)).transpose(0, 1).contiguous().transpose(0, 1)
    assert not p.is_contiguous()
    assert torch.equal(F.unpack_ternary(p.to(dev), 100, backend=backend).cpu(), ref.unpack_ternary(p, 100))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("K", [1, 33, 64, 200])
def test_quantize_pack_matches_reference(backend, K):
    dev = device_for(backend) if backend != "cuda_emu" else torch.device("cpu")
    x = torch.randn(5, K, device=dev) * 1.5
    x.view(-1)[::7] = float("nan")
    x.view(-1)[1::11] = 0.75  # exactly at the threshold
    x.view(-1)[2::13] = -0.75
    want = ref.quantize_pack(x.cpu(), 0.75)
    if backend == "cuda_emu":
        got = emu.pack_ternary(x, threshold=0.75)
    else:
        got = F.quantize_pack(x, 0.75, backend=backend)
        assert torch.equal(F.pack_ternary(x, 0.75, backend=backend).cpu(), want)
    assert torch.equal(got.cpu(), want)
    d = ref.unpack_ternary(want, K, torch.float32)
    xs = x.cpu()
    assert torch.equal(d, torch.where(xs >= 0.75, 1.0, torch.where(xs <= -0.75, -1.0, 0.0)))


@pytest.mark.parametrize("backend", [*BACKENDS, "reference"])
@pytest.mark.parametrize("K", [1, 40, 64, 130])
def test_validate_counts_noncanonical(backend, K):
    dev = device_for(backend) if backend not in ("cuda_emu", "reference") else torch.device("cpu")
    p = ref.pack_ternary(rand_ternary(3, K)).to(dev)
    fn = emu.count_noncanonical if backend == "cuda_emu" else (
        lambda q, k: F.count_noncanonical(q, k, backend=backend))
    assert int(fn(p, K)) == 0
    bad = p.clone().cpu()
    bad[1, 1, 0] |= 1  # sign bit of element 0, row 1
    bad[1, 0, 0] &= ~1  # ... without its gate bit
    bad[2, 0, -1] |= -(2**31)  # top bit of the last gate word: padding unless K fills it
    expect = 1 + (K % 64 != 0)
    assert int(fn(bad.to(dev) if backend != "cuda_emu" else bad, K)) == expect
    if backend != "cuda_emu":
        with pytest.raises(ValueError, match="packed: expected canonical"):
            F.validate_packed(bad.to(dev), K, backend=backend)


def test_bool_pair_input():
    x = rand_ternary(4, 90)
    assert torch.equal(F.pack_ternary((x != 0, x < 0)), ref.pack_ternary(x))
    with pytest.raises(RuntimeError, match="sign: expected sign bits only where gate"):
        F.pack_ternary((torch.zeros(3, dtype=torch.bool), torch.ones(3, dtype=torch.bool)))


@pytest.mark.parametrize("backend", ["reference", *backend_params(include_cuda=False)])
def test_bad_input_errors(backend):
    dev = device_for(backend) if backend != "reference" else torch.device("cpu")
    x = rand_ternary(4, 40, device=dev)
    with pytest.raises(RuntimeError, match=r"x: expected values in \{-1, 0, \+1\}"):
        F.pack_ternary(x * 2, backend=backend)
    with pytest.raises(RuntimeError, match="x: expected dtype"):
        F.pack_ternary(x.to(torch.complex64), backend=backend)
    with pytest.raises(RuntimeError, match=r"x: expected K = shape\[-1\] >= 1"):
        F.pack_ternary(x[:, :0], backend=backend)
    with pytest.raises(RuntimeError, match="threshold: expected a finite float > 0"):
        F.quantize_pack(x, -1.0, backend=backend)
    with pytest.raises(RuntimeError, match="x: expected dtype"):
        F.quantize_pack(x.to(torch.int8), 0.5, backend=backend)
    p = ref.pack_ternary(x.cpu()).to(dev)
    with pytest.raises(RuntimeError, match=r"packed: expected W = 2\*ceil\(K/64\) = 6 words for K = 129"):
        F.unpack_ternary(p, 129, backend=backend)
    with pytest.raises(RuntimeError, match="K: expected an int in"):
        F.unpack_ternary(p, 0, backend=backend)
    with pytest.raises(RuntimeError, match="packed: expected packed dtype torch.int32"):
        F.unpack_ternary(p.to(torch.int64), 40, backend=backend)
    with pytest.raises(RuntimeError, match=r"packed: expected packed shape \(\.\.\., 2, W\)"):
        F.unpack_ternary(p[:, :1], 40, backend=backend)
    with pytest.raises(RuntimeError, match="dtype: expected one of"):
        F.unpack_ternary(p, 40, torch.int32, backend=backend)


def test_wrong_device_errors():
    x = rand_ternary(2, 8)
    if _backend.available("cpp"):
        with pytest.raises(RuntimeError, match="backend='cpp' runs on cpu tensors, got a tensor on meta"):
            F.pack_ternary(x.to("meta"), backend="cpp")
    else:
        with pytest.raises(_backend.BackendUnavailable, match="backend 'cpp' is not available"):
            F.pack_ternary(x, backend="cpp")
    if not torch.cuda.is_available():
        with pytest.raises(Exception, match="backend 'cuda' is not available"):
            F.pack_ternary(x, backend="cuda")


def test_bad_values_leave_nothing_half_written():
    x = rand_ternary(2, 64)
    x[1, 5] = 3.0
    with pytest.raises(RuntimeError, match="1 element"):
        F.pack_ternary(x)


@pytest.mark.parametrize("op,args", [
    ("pack_ternary", lambda: (rand_ternary(3, 70), None)),
    ("pack_ternary", lambda: (torch.randn(3, 70), 0.5)),
    ("quantize_pack", lambda: (torch.randn(2, 5, 33), 0.7)),
    ("quantize_pack", lambda: (torch.randn(2, 70, 3, 5).permute(0, 2, 3, 1), 0.7)),  # NCHW view (pack_nchw.h)
    ("unpack_ternary", lambda: (ref.pack_ternary(rand_ternary(4, 100)), 100, torch.float32)),
    ("unpack_ternary", lambda: (ref.pack_ternary(rand_ternary(4, 100)), 100, None)),
    ("count_noncanonical", lambda: (ref.pack_ternary(rand_ternary(4, 100)), 100)),
])
def test_opcheck(op, args):
    torch.library.opcheck(getattr(torch.ops.gxnor, op), args())


NCHW_SHAPES = [(2, 70, 5, 7, 1), (1, 6, 4, 4, 3), (3, 128, 6, 6, 2), (1, 1, 1, 1, 1), (2, 33, 3, 11, 1),
               (1, 64, 4, 5, 64)]


@pytest.mark.parametrize("n,c,h,w,groups", NCHW_SHAPES)
def test_pack_conv_input_nchw_every_cpu_isa(cpu_isa, n, c, h, w, groups):
    # pack_nchw.h has an AVX-512 (16-pixel) and an AVX2 (8-pixel) kernel; scalar takes the transpose copy.
    test_pack_conv_input_nchw("cpp", n, c, h, w, groups)


@pytest.mark.parametrize("backend", backend_params())
@pytest.mark.parametrize("n,c,h,w,groups", NCHW_SHAPES)
def test_pack_conv_input_nchw(backend, n, c, h, w, groups):
    # An NCHW tensor goes to the pack ops as a channels-last view (the C++ CPU kernels pack it in one
    # pass, pack_nchw.h): pixel counts that leave 8- and 16-pixel tails, channel words with tails, groups.
    torch.manual_seed(6)
    dev = device_for(backend)
    x = rand_ternary(n, c, h, w)
    want = ref.pack_ternary(x.permute(0, 2, 3, 1).contiguous().unflatten(-1, (groups, c // groups)))
    want = want.squeeze(3) if groups == 1 else want
    assert torch.equal(F.pack_conv_input(x.to(dev), groups, backend=backend).cpu(), want)
    xr = torch.randn(n, c, h, w)
    xr[0, 0, 0, 0] = float("nan")
    want = ref.quantize_pack(xr.permute(0, 2, 3, 1).contiguous().unflatten(-1, (groups, c // groups)), 0.6)
    want = want.squeeze(3) if groups == 1 else want
    assert torch.equal(F.pack_conv_input(xr.to(dev), groups, threshold=0.6, backend=backend).cpu(), want)
    x[-1, -1, -1, -1] = 0.5
    with pytest.raises(RuntimeError, match="1 element"):
        F.pack_conv_input(x.to(dev), groups, backend=backend)
