"""xnor_conv2d_weight_grad (the weight gradient of xnor_conv2d for a float grad_out) against the
dense conv backward: bit-exact for integer-valued grad_out (every partial sum is an exact float),
close for random floats; every backend that has it (reference, C++ on every ISA path; CUDA runs
the reference)."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as TF

from gxnor_cuda import _backend
from gxnor_cuda import functional as F
from tests.helpers import device_for, rand_ternary


def impls():
    out = [pytest.param("reference", id="reference")]
    for b in ("cpp", "cuda"):
        marks = [] if _backend.available(b) else [pytest.mark.skip(reason=f"{b}: {_backend.STATUS.get(b)}")]
        out.append(pytest.param(b, id=b, marks=marks))
    return out


def dense_grad(gy, x, w, s, p, d, g):
    """F.conv2d's weight gradient in float64, in the stored layout (O, kh, kw, C/groups)."""
    gw = torch.ops.aten.convolution_backward(gy.double(), x.double(), w.double(), None, list(s), list(p), list(d),
                                             False, [0, 0], g, [False, True, False])[1]
    return gw.permute(0, 2, 3, 1).float()


def case(n, c, h, wd, o, k, s, p, d, g, integer=True, channels_last=True):
    x = rand_ternary(n, c, h, wd)
    w = rand_ternary(o, c // g, k, k)
    y = TF.conv2d(x, w, None, s, p, d, g)
    gy = torch.randint(-9, 10, y.shape).float() if integer else torch.randn(y.shape)
    if channels_last:
        gy = gy.contiguous(memory_format=torch.channels_last)
    return gy, x, w, F.pack_conv_input(x, g, backend="reference"), F.pack_conv_weight(w, backend="reference")


def run(impl, gy, xp, wp, c, s, p, d, g):
    dev = device_for(impl) if impl != "reference" else torch.device("cpu")
    return F.xnor_conv2d_weight_grad(gy.to(dev), xp.to(dev), wp.to(dev), c, s, p, d, g, backend=impl).cpu()


# stride x padding x dilation x groups x kernel, C = 6 (not a multiple of 64), batch 1.
GRID = list(itertools.product((1, 2), (0, 1, 2), (1, 2), (1, 2, 6), (1, 3, 5)))


@pytest.mark.parametrize("impl", impls())
def test_weight_grad_grid_bit_exact(impl):
    torch.manual_seed(0)
    for s, p, d, g, k in GRID:
        gy, x, w, xp, wp = case(1, 6, 10, 9, 4 if g != 6 else 6, k, (s, s), (p, p), (d, d), g)
        got = run(impl, gy, xp, wp, 6, s, p, d, g)
        want = dense_grad(gy, x, w, (s, s), (p, p), (d, d), g)
        assert got.dtype == torch.float32 and got.shape == want.shape and got.is_contiguous(), (s, p, d, g, k)
        assert torch.equal(got, want), (s, p, d, g, k)


@pytest.mark.parametrize("impl", impls())
@pytest.mark.parametrize("n,c,h,wd,o,k,s,p,d,g", [
    (3, 70, 7, 6, 9, 3, (1, 2), (1, 0), (1, 2), 1),  # two words of channels, odd output sizes
    (2, 130, 5, 5, 70, 3, 1, 1, 1, 2),  # 65 channels per group, 35 outputs per group (partial table)
    (2, 33, 6, 7, 33, 3, 2, 1, 1, 33),  # depthwise
    (1, 1, 14, 13, 3, 5, 1, 0, 1, 1),  # one input channel, 5x5
    (4, 64, 9, 11, 130, 3, (2, 1), 2, (2, 1), 1),  # 3 channel blocks, stride and dilation per axis
    (2, 256, 6, 6, 64, 3, 1, 1, 1, 1),  # more columns than one task takes
])
def test_weight_grad_shapes(impl, n, c, h, wd, o, k, s, p, d, g):
    torch.manual_seed(1)
    s2, p2, d2 = [(v, v) if isinstance(v, int) else v for v in (s, p, d)]
    gy, x, w, xp, wp = case(n, c, h, wd, o, k, s2, p2, d2, g)
    want = dense_grad(gy, x, w, s2, p2, d2, g)
    assert torch.equal(run(impl, gy, xp, wp, c, s, p, d, g), want)
    # NCHW grad_out and random floats: the same sums in another order
    gy, x, w, xp, wp = case(n, c, h, wd, o, k, s2, p2, d2, g, integer=False, channels_last=False)
    want = dense_grad(gy, x, w, s2, p2, d2, g)
    torch.testing.assert_close(run(impl, gy, xp, wp, c, s, p, d, g), want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("n,c,h,o,k,p,g", [(2, 128, 12, 70, 3, 1, 1), (3, 32, 12, 64, 5, 0, 1),
                                           (2, 96, 9, 96, 3, 1, 3), (5, 64, 16, 128, 3, 1, 1)])
def test_weight_grad_every_cpu_isa(cpu_isa, n, c, h, o, k, p, g):
    torch.manual_seed(2)
    gy, x, w, xp, wp = case(n, c, h, h, o, k, (1, 1), (p, p), (1, 1), g)
    got = F.xnor_conv2d_weight_grad(gy, xp, wp, c, 1, p, 1, g, backend="cpp")
    assert torch.equal(got, dense_grad(gy, x, w, (1, 1), (p, p), (1, 1), g))


def test_weight_grad_threads_agree():
    # one thread (one slice of chunks) and the default (column blocks, slices): the same exact sums
    torch.manual_seed(3)
    gy, x, w, xp, wp = case(6, 40, 8, 8, 20, 3, (1, 1), (1, 1), (1, 1), 1)
    want = dense_grad(gy, x, w, (1, 1), (1, 1), (1, 1), 1)
    before = torch.get_num_threads()
    try:
        for t in sorted({1, 2, before}):
            torch.set_num_threads(t)
            assert torch.equal(F.xnor_conv2d_weight_grad(gy, xp, wp, 40, 1, 1), want), t
    finally:
        torch.set_num_threads(before)


def test_weight_grad_nonfinite_grad_out_propagates():
    gy, x, w, xp, wp = case(1, 6, 6, 6, 4, 3, (1, 1), (1, 1), (1, 1), 1)
    gy = gy.clone()
    gy[0, 1, 2, 3] = float("nan")
    got = F.xnor_conv2d_weight_grad(gy, xp, wp, 6, 1, 1)
    want = dense_grad(gy, x, w, (1, 1), (1, 1), (1, 1), 1)
    assert torch.equal(got.isnan(), want.isnan()) and bool(got[1].isnan().all())
    assert torch.equal(got[0], want[0])


@pytest.mark.parametrize("impl", impls())
def test_weight_grad_bad_input(impl):
    dev = device_for(impl) if impl != "reference" else torch.device("cpu")
    gy, _, _, xp, wp = case(1, 6, 5, 5, 4, 3, (1, 1), (1, 1), (1, 1), 1)
    gy, xp, wp = gy.to(dev), xp.to(dev), wp.to(dev)
    wg = lambda *a, **k: F.xnor_conv2d_weight_grad(*a, **k, backend=impl)  # noqa: E731
    with pytest.raises(RuntimeError, match=r"grad_out: expected dtype torch.float32, got (torch.float64|Double)"):
        wg(gy.double(), xp, wp, 6, 1, 1)
    with pytest.raises(RuntimeError, match=r"grad_out: expected shape \(N, O, Ho, Wo\) = \(1, 4, 3, 3\) "
                       r"\(the conv's output\), got .1, 4, 5, 5."):
        wg(gy, xp, wp, 6, 1, 0)
    with pytest.raises(RuntimeError, match=r"grad_out: expected shape \(N, O, Ho, Wo\) = \(1, 4, 5, 5\)"):
        wg(gy[:, :3], xp, wp, 6, 1, 1)
    with pytest.raises(RuntimeError, match=r"x: expected shape \(N, H, W, 1, 2, 4\) for C = 70"):
        wg(gy, xp, wp, 70, 1, 1)
    with pytest.raises(RuntimeError, match=r"stride: expected ints >= 1, got \[0, 1\]"):
        wg(gy, xp, wp, 6, (0, 1), 1)
    with pytest.raises(RuntimeError, match="groups: expected a divisor of C = 6, got 4"):
        wg(gy, xp, wp, 6, 1, 1, 1, 4)
    with pytest.raises(RuntimeError, match=r"padding: expected ints >= 0, got \[-1, -1\]"):
        wg(gy, xp, wp, 6, 1, -1)
    with pytest.raises(RuntimeError, match="x: expected packed dtype torch.int32"):
        wg(gy, xp.float(), wp, 6, 1, 1)


def test_weight_grad_batch_zero_and_triton_has_none():
    gy, _, _, xp, wp = case(1, 6, 5, 5, 4, 3, (1, 1), (1, 1), (1, 1), 1)
    e = F.xnor_conv2d_weight_grad(gy[:0], xp[:0], wp, 6, 1, 1)
    assert e.shape == (4, 3, 3, 6) and bool((e == 0).all())
    if _backend.available("triton"):
        with pytest.raises(_backend.BackendUnavailable, match="no xnor_conv2d_weight_grad kernel"):
            F.xnor_conv2d_weight_grad(gy, xp, wp, 6, 1, 1, backend="triton")


def test_opcheck():
    gy, _, _, xp, wp = case(2, 70, 6, 5, 9, 3, (1, 2), (1, 0), (1, 1), 1)
    torch.library.opcheck(torch.ops.gxnor.xnor_conv2d_weight_grad, (gy, xp, wp, 70, [1, 2], [1, 0], [1, 1], 1))
    gy, _, _, xp, wp = case(1, 6, 5, 5, 4, 3, (1, 1), (1, 1), (2, 2), 2)
    torch.library.opcheck(torch.ops.gxnor.xnor_conv2d_weight_grad, (gy, xp, wp, 6, [1, 1], [1, 1], [2, 2], 2))
