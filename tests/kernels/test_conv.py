"""xnor_conv2d bit-exact against F.conv2d on the dense values, on every backend: reference, C++
(every ISA path), Triton (interpreter), CUDA (emulated on the host, natively with a GPU)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as TF

from gxnor_cuda import float_conv as fc
from gxnor_cuda import functional as F
from tests import emu
from tests.helpers import backend_params, device_for, rand_ternary


def impls():
    return [pytest.param("reference", id="reference"), pytest.param("cuda_emu", id="cuda_emu"), *backend_params()]


def run(impl, x, w, C, *args, **kw):
    if impl == "cuda_emu":
        return emu.xnor_conv2d(x, w, C, *args, **kw)
    dev = device_for(impl) if impl != "reference" else torch.device("cpu")
    kw = {k: v.to(dev) if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
    return F.xnor_conv2d(x.to(dev), w.to(dev), C, *args, **kw, backend=impl).cpu()


def case(n, c, h, wd, o, k, groups):
    x = rand_ternary(n, c, h, wd)
    w = rand_ternary(o, c // groups, k, k)
    return x, w, F.pack_conv_input(x, groups, backend="reference"), F.pack_conv_weight(w, backend="reference")


# stride x padding x dilation x groups x kernel, C = 6 (not a multiple of 64), batch 1.
GRID = list(itertools.product((1, 2), (0, 1, 2), (1, 2), (1, 2, 6), (1, 3, 5)))


@pytest.mark.parametrize("impl", impls())
def test_xnor_conv2d_grid_bit_exact(impl):
    torch.manual_seed(0)
    # The whole grid on every backend, Triton's interpreter included (about 1-3 minutes there).
    for s, p, d, g, k in GRID:
        x, w, xp, wp = case(1, 6, 10, 9, 4 if g != 6 else 6, k, g)
        want = TF.conv2d(x, w, None, s, p, d, g).round().to(torch.int32)
        got = run(impl, xp, wp, 6, s, p, d, g)
        assert got.dtype == torch.int32 and got.shape == want.shape, (s, p, d, g, k)
        assert torch.equal(got, want), (s, p, d, g, k)


@pytest.mark.parametrize("impl", impls())
@pytest.mark.parametrize("n,c,h,wd,o,k,s,p,d,g", [
    (3, 70, 7, 6, 9, 3, (1, 2), (1, 0), (1, 2), 1),  # two words of channels, odd shapes
    (2, 130, 5, 5, 4, 3, 1, 1, 1, 2),  # 65 channels per group
    (2, 33, 6, 7, 33, 3, 2, 1, 1, 33),  # depthwise
    (1, 1, 14, 13, 3, 5, 1, 0, 1, 1),  # one input channel, 5x5
])
def test_xnor_conv2d_shapes_and_epilogue(impl, n, c, h, wd, o, k, s, p, d, g):
    torch.manual_seed(1)
    x, w, xp, wp = case(n, c, h, wd, o, k, g)
    want = TF.conv2d(x.double(), w.double(), None, s, p, d, g)
    got = run(impl, xp, wp, c, s, p, d, g)
    assert torch.equal(got, want.round().to(torch.int32))
    assert got.is_contiguous(memory_format=torch.channels_last)
    scale, bias = torch.randn(o), torch.randn(o)
    for sc, bi in ((scale, bias), (None, bias), (scale, None)):
        y = run(impl, xp, wp, c, s, p, d, g, scale=sc, bias=bi)
        exp = want * (sc.double()[:, None, None] if sc is not None else 1) + (
            bi.double()[:, None, None] if bi is not None else 0)
        assert y.dtype == torch.float32
        torch.testing.assert_close(y, exp.float(), rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("n,c,h,o,k,p,g", [(2, 128, 12, 70, 3, 1, 1), (3, 32, 12, 64, 5, 0, 1), (2, 96, 9, 96, 3, 1, 3),
                                           (40, 64, 10, 64, 3, 1, 1), (20, 96, 9, 96, 3, 1, 3),
                                           (40, 64, 16, 128, 3, 1, 1)])
def test_xnor_conv2d_every_cpu_isa(cpu_isa, n, c, h, o, k, p, g):
    # With the AMX setting, (2, 128, 12, 70), (40, 64, 10) and (20, 96, 9, groups 3) cross the work
    # threshold (fused AMX strips, partial column blocks); the others take the popcount tiles.
    # (40, 64, 16, 128): a 5 MiB output, advised onto huge pages before it is written (bind/alloc.h).
    x, w, xp, wp = case(n, c, h, h, o, k, g)
    want = TF.conv2d(x, w, None, 1, p, 1, g).round().to(torch.int32)
    assert torch.equal(F.xnor_conv2d(xp, wp, c, 1, p, 1, g, backend="cpp"), want)


def test_xnor_conv2d_noncontiguous_and_empty():
    x, w, xp, wp = case(2, 70, 6, 6, 5, 3, 1)
    xs = xp.transpose(0, 1).contiguous().transpose(0, 1)
    assert not xs.is_contiguous()
    assert torch.equal(F.xnor_conv2d(xs, wp, 70, 1, 1), TF.conv2d(x, w, None, 1, 1).to(torch.int32))
    e = F.xnor_conv2d(xp[:0], wp, 70, 1, 1)
    assert e.shape == (0, 5, 6, 6) and e.dtype == torch.int32


def phi_dense(y, r):
    """phi_r of (N, O, Ho, Wo) float64 values, channels-last: (N, Ho, Wo, O) int8."""
    yl = y.permute(0, 2, 3, 1)
    return ((yl >= r).to(torch.int8) - (yl <= -r).to(torch.int8))


def check_pack_result(got, y, r):
    o = y.shape[1]
    assert got.dtype == torch.int32 and got.shape == (y.shape[0], y.shape[2], y.shape[3], 2, 2 * ((o + 63) // 64))
    assert int(F.count_noncanonical(got, o, backend="reference")) == 0  # canonical, padding zero
    assert torch.equal(F.unpack_ternary(got, o, backend="reference"), phi_dense(y, r))


def dyadic_epilogue(o):
    """Scale in +-{1/4, 1/2, 1, 2} and bias in quarters: acc * scale + bias is exact in float32,
    so the threshold decision is the same on every backend, ties at r included."""
    scale = 2.0 ** torch.randint(-2, 2, (o,)).float() * (torch.randint(0, 2, (o,)) * 2 - 1)
    return scale, torch.randint(-8, 9, (o,)).float() / 4


@pytest.mark.parametrize("impl", impls())
@pytest.mark.parametrize("n,c,h,o,k,s,p,d,g", [
    (2, 70, 7, 40, 3, (1, 2), (1, 0), (1, 2), 1),  # two words in, 40 channels out (padding bits)
    (2, 130, 5, 70, 3, 1, 1, 1, 2),  # grouped, 70 channels out: two words
    (1, 64, 5, 64, 3, 1, 1, 1, 2),  # grouped, 32 channels per group: one word per group (fused)
    (2, 40, 9, 96, 3, 1, 1, 1, 1),  # 162 output rows, 96 channels: several row and column tiles (fused)
    (1, 6, 9, 4, 5, 2, 2, 1, 1),
])
def test_xnor_conv2d_pack(impl, n, c, h, o, k, s, p, d, g):
    torch.manual_seed(3)
    x, w, xp, wp = case(n, c, h, h, o, k, g)
    acc = TF.conv2d(x.double(), w.double(), None, s, p, d, g)
    scale, bias = dyadic_epilogue(o)
    dev = device_for(impl) if impl not in ("reference", "cuda_emu") else torch.device("cpu")
    for sc, bi, r in ((None, None, 2.0), (scale, bias, 1.0), (None, bias, 0.75), (scale, None, 3.5)):
        y = acc * (sc.double()[:, None, None] if sc is not None else 1) + (
            bi.double()[:, None, None] if bi is not None else 0)
        if impl == "cuda_emu":
            got = emu.xnor_conv2d_pack(xp, wp, c, r, s, p, d, g, sc, bi)
        else:
            sd, bd = (t.to(dev) if t is not None else None for t in (sc, bi))
            got = F.xnor_conv2d_pack(xp.to(dev), wp.to(dev), c, r, s, p, d, g, sd, bd, backend=impl).cpu()
        check_pack_result(got, y, r)
        assert 0 < int((phi_dense(y, r) != 0).sum()) < y.numel()  # the threshold is exercised


@pytest.mark.parametrize("n,c,h,o,g", [(30, 64, 10, 256, 1), (3, 64, 8, 96, 2), (30, 96, 10, 192, 3)])
def test_xnor_conv2d_pack_every_cpu_isa(cpu_isa, n, c, h, o, g):
    # (30, 64, 10, 256): 3000 output rows, 2048-row chunks: two chunks; AMX at the AMX setting.
    torch.manual_seed(4)
    x, w, xp, wp = case(n, c, h, h, o, 3, g)
    acc = TF.conv2d(x.double(), w.double(), None, 1, 1, 1, g)
    scale, bias = dyadic_epilogue(o)
    y = acc * scale.double()[:, None, None] + bias.double()[:, None, None]
    check_pack_result(F.xnor_conv2d_pack(xp, wp, c, 1.5, 1, 1, 1, g, scale, bias, backend="cpp"), y, 1.5)
    check_pack_result(F.xnor_conv2d_pack(xp, wp, c, 4.0, 1, 1, 1, g, backend="cpp"), acc, 4.0)


@pytest.mark.parametrize("impl", ["reference", *backend_params()])
def test_xnor_conv2d_pack_bad_input(impl):
    dev = device_for(impl) if impl != "reference" else torch.device("cpu")
    _, _, xp, wp = case(1, 6, 5, 5, 4, 3, 1)
    xp, wp = xp.to(dev), wp.to(dev)
    for r in (0.0, -1.0, float("nan")):
        with pytest.raises(RuntimeError, match="threshold: expected a finite float > 0"):
            F.xnor_conv2d_pack(xp, wp, 6, r, backend=impl)
    with pytest.raises(RuntimeError, match="groups: expected a divisor of C = 6, got 4"):
        F.xnor_conv2d_pack(xp, wp, 6, 1.0, groups=4, backend=impl)
    with pytest.raises(RuntimeError, match=r"bias: expected shape \(O,\) = \(4,\)"):
        F.xnor_conv2d_pack(xp, wp, 6, 1.0, bias=torch.ones(3, device=dev), backend=impl)
    e = F.xnor_conv2d_pack(xp[:0], wp, 6, 1.0, 1, 1, backend=impl)
    assert e.shape == (0, 5, 5, 2, 2) and e.dtype == torch.int32


@pytest.mark.parametrize("impl", ["reference", *backend_params()])
def test_xnor_conv2d_bad_input(impl):
    dev = device_for(impl) if impl != "reference" else torch.device("cpu")
    _, _, xp, wp = case(1, 6, 5, 5, 4, 3, 1)
    xp, wp = xp.to(dev), wp.to(dev)
    conv = lambda *a, **k: F.xnor_conv2d(*a, **k, backend=impl)  # noqa: E731
    with pytest.raises(RuntimeError, match=r"x: expected shape \(N, H, W, 1, 2, 4\) for C = 70"):
        conv(xp, wp, 70)
    with pytest.raises(RuntimeError, match="groups: expected a divisor of C = 6, got 4"):
        conv(xp, wp, 6, groups=4)
    with pytest.raises(RuntimeError, match=r"stride: expected ints >= 1, got \[0, 1\]"):
        conv(xp, wp, 6, (0, 1))
    with pytest.raises(RuntimeError, match=r"dilation: expected ints >= 1, got \[1, 0\]"):
        conv(xp, wp, 6, 1, 0, (1, 0))
    with pytest.raises(RuntimeError, match=r"padding: expected ints >= 0, got \[-1, -1\]"):
        conv(xp, wp, 6, 1, -1)
    with pytest.raises(RuntimeError, match=r"w: expected a kernel \(3, 3\) with dilation \[3, 3\] no larger than"):
        conv(xp, wp, 6, 1, 0, 3)
    with pytest.raises(RuntimeError, match=r"x: expected packed channels-last activations"):
        conv(xp[0], wp, 6)
    with pytest.raises(RuntimeError, match="x: expected packed dtype torch.int32"):
        conv(xp.float(), wp, 6)
    with pytest.raises(RuntimeError, match=r"x: expected packed channels-last activations .* \(groups = 2\)"):
        conv(xp, wp, 6, groups=2)
    with pytest.raises(RuntimeError, match="w: expected out channels O divisible by groups = 3"):
        conv(F.pack_conv_input(torch.zeros(1, 6, 5, 5, device=dev), 3), wp[:, :, :, :, :2], 6, groups=3)
    with pytest.raises(RuntimeError, match=r"bias: expected shape \(O,\) = \(4,\)"):
        conv(xp, wp, 6, bias=torch.ones(3, device=dev))


def test_opcheck():
    _, _, xp, wp = case(2, 70, 6, 5, 4, 3, 1)
    torch.library.opcheck(torch.ops.gxnor.xnor_conv2d, (xp, wp, 70, [1, 2], [1, 0], [1, 1], 1))
    torch.library.opcheck(torch.ops.gxnor.xnor_conv2d, (xp, wp, 70, [1, 1], [1, 1], [2, 1], 1, torch.randn(4),
                                                        torch.randn(4)))
    _, _, xg, wg = case(1, 6, 5, 5, 4, 3, 2)
    torch.library.opcheck(torch.ops.gxnor.xnor_conv2d, (xg, wg, 6, [1, 1], [0, 0], [1, 1], 2))
    torch.library.opcheck(torch.ops.gxnor.xnor_conv2d_pack, (xp, wp, 70, 1.5, [1, 2], [1, 0], [1, 1], 1))
    torch.library.opcheck(torch.ops.gxnor.xnor_conv2d_pack, (xg, wg, 6, 0.5, [1, 1], [1, 1], [1, 1], 2,
                                                             torch.randn(4), torch.randn(4)))


def test_pack_conv_helpers_round_trip():
    x = rand_ternary(2, 10, 3, 4)
    w = rand_ternary(6, 5, 3, 3)
    assert F.pack_conv_input(x, 2).shape == (2, 3, 4, 2, 2, 2)
    assert torch.equal(F.unpack_conv_weight(F.pack_conv_weight(w), 5), w)
    y = F.ternary_conv2d(torch.randn(2, 10, 6, 6), F.pack_conv_weight(w), 10, 1, 1, 1, 2)
    assert y.shape == (2, 6, 6, 6)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("prefers_cl", [True, False])
@pytest.mark.parametrize("c", [9, 1])
def test_ternary_conv2d_follows_the_input_layout(channels_last, prefers_cl, c, monkeypatch):
    # torch's conv runs channels-last when either operand is; the unpacked weight is a channels-last
    # view. A channels-last input keeps it; an NCHW input gets an NCHW weight (nn.Conv2d's path),
    # or, where the CPU's channels-last conv measured faster and C > 1, a channels-last one. One
    # channel runs as im2col + GEMM, whose output is channels-last.
    monkeypatch.setattr(fc, "_cpu_conv_prefers_channels_last", lambda: prefers_cl)
    w = rand_ternary(12, c, 3, 3)
    x = torch.randn(2, c, 7, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = F.ternary_conv2d(x, F.pack_conv_weight(w), c, 1, 1)
    torch.testing.assert_close(y, torch.nn.functional.conv2d(x, w, None, 1, 1))
    want_cl = c == 1 or channels_last or prefers_cl
    assert y.is_contiguous(memory_format=torch.channels_last) == want_cl
    assert y.is_contiguous() != want_cl
