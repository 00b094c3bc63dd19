"""gxnor::accumulator_stats (int16 copy + exact per-channel sums in one pass) on every backend against
direct int64 sums, in every layout, with its errors; and IntBatchNorm1d / 2d against nn.BatchNorm in
values, running statistics and gradients, saving an int16 copy instead of the float32 input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gxnor_cuda import functional as F
from gxnor_cuda import models
from gxnor_cuda.nn import IntBatchNorm1d, IntBatchNorm2d
from tests.helpers import backend_params, device_for

LAYOUTS = {
    "2d": lambda g: torch.randint(-300, 301, (37, 70), generator=g).float(),
    "nchw": lambda g: torch.randint(-32768, 32768, (3, 40, 5, 7), generator=g).float(),
    "channels_last": lambda g: torch.randint(-4000, 4001, (4, 33, 6, 5), generator=g).float()
    .contiguous(memory_format=torch.channels_last),
    "strided": lambda g: torch.randint(-9, 10, (3, 8, 6, 10), generator=g).float()[:, :, :, ::2],
}


def _want(x):
    xi = x.to(torch.int64)
    dims = [0, *range(2, x.dim())]
    return torch.stack([xi.sum(dims), (xi * xi).sum(dims)])


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("backend", [*backend_params(), "reference"])
def test_stats_and_int16_copy_exact(backend, layout):
    g = torch.Generator().manual_seed(len(layout))
    x = LAYOUTS[layout](g)
    x[0, 0] = -32768.0  # the ends of the range
    x[-1, -1] = 32767.0
    dev = device_for(backend) if backend != "reference" else torch.device("cpu")
    q, sums = F.accumulator_stats(x.to(dev), backend=backend)
    assert q.dtype == torch.int16 and sums.dtype == torch.int64 and sums.shape == (2, x.shape[1])
    assert torch.equal(q.cpu().float(), x) and torch.equal(sums.cpu(), _want(x))
    if layout == "channels_last":
        assert q.is_contiguous(memory_format=torch.channels_last)
    elif layout != "2d":
        assert q.is_contiguous()


@pytest.mark.parametrize("backend", [*backend_params(), "reference"])
@pytest.mark.parametrize("bad", [0.5, float("nan"), 32768.0, -32769.0, float("inf")])
def test_refuses_values_past_int16_or_not_integer(backend, bad):
    dev = device_for(backend) if backend != "reference" else torch.device("cpu")
    x = torch.randint(-5, 6, (6, 9, 4, 4)).float().contiguous(memory_format=torch.channels_last)
    x[2, 3, 1, 2] = bad
    with pytest.raises(RuntimeError, match=r"x: expected integer values in \[-32768, 32767\] .* got " +
                       ("nan" if bad != bad else "inf" if bad == float("inf") else f"{bad:g}")):
        F.accumulator_stats(x.to(dev), backend=backend)


@pytest.mark.parametrize("backend", [*backend_params(), "reference"])
def test_bad_arguments_name_x(backend):
    dev = device_for(backend) if backend != "reference" else torch.device("cpu")
    with pytest.raises(RuntimeError, match="x: expected dtype torch.float32, got (torch.float64|Double)"):
        F.accumulator_stats(torch.zeros(4, 3, dtype=torch.float64, device=dev), backend=backend)
    with pytest.raises(RuntimeError, match=r"x: expected shape \(N, C\) or \(N, C, H, W\), got .4, 3, 2."):
        F.accumulator_stats(torch.zeros(4, 3, 2, device=dev), backend=backend)
    q, sums = F.accumulator_stats(torch.zeros(0, 5, 2, 2, device=dev), backend=backend)
    assert q.shape == (0, 5, 2, 2) and torch.equal(sums.cpu(), torch.zeros(2, 5, dtype=torch.int64))


def test_opcheck():
    x = torch.randint(-50, 51, (4, 6, 3, 5)).float().contiguous(memory_format=torch.channels_last)
    torch.library.opcheck(torch.ops.gxnor.accumulator_stats, (x,))
    torch.library.opcheck(torch.ops.gxnor.accumulator_stats, (x[:, :, 0, 0].contiguous(),))


def _pair(cls, ref_cls, c, **kw):
    torch.manual_seed(3)
    a, b = cls(c, **kw), ref_cls(c, **kw)
    with torch.no_grad():
        a.weight.uniform_(0.5, 1.5)
        a.bias.uniform_(-1, 1)
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("kind", ["2d", "2d_channels_last", "1d"])
def test_layer_matches_batchnorm(kind, momentum):
    cls, ref_cls, shape = ((IntBatchNorm1d, nn.BatchNorm1d, (64, 12)) if kind == "1d"
                           else (IntBatchNorm2d, nn.BatchNorm2d, (8, 12, 5, 6)))
    a, b = _pair(cls, ref_cls, 12, momentum=momentum)
    for _step in range(2):
        x = torch.randint(-400, 401, shape).float()
        if kind == "2d_channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = a(xa), b(xb)
        torch.testing.assert_close(ya, yb, rtol=2e-5, atol=2e-5)
        gy = torch.randn(shape)
        ya.backward(gy)
        yb.backward(gy)
        torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.weight.grad, b.weight.grad, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(a.bias.grad, b.bias.grad)
    torch.testing.assert_close(a.running_mean, b.running_mean)
    torch.testing.assert_close(a.running_var, b.running_var)
    assert int(a.num_batches_tracked) == int(b.num_batches_tracked) == 2
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    x = torch.randint(-400, 401, shape).float()
    assert torch.equal(a(x), b(x))  # eval: nn.BatchNorm's own path


def test_statistics_are_the_exact_integer_ones():
    """momentum 1: the running mean is this batch's, from exact int64 sums rounded once (a float32 sum
    of these values would round: 2^24 + 1 is not a float32); the variance from them in float64."""
    m = IntBatchNorm1d(2, momentum=1.0)
    x = torch.tensor([[2.0**14, 1.0], [2.0**14 - 1, 3.0], [2.0**14 - 3, -7.0]] * 700)
    m(x)
    xi = x.double()
    assert torch.equal(m.running_mean, xi.mean(0).float())
    torch.testing.assert_close(m.running_var, xi.var(0).float(), rtol=2e-7, atol=0)


def test_backward_keeps_int16_not_the_float_input():
    saved = []

    def pack(t):
        saved.append((t.dtype, tuple(t.shape)))
        return t

    m = IntBatchNorm2d(16)
    x = torch.randint(-30, 31, (8, 16, 6, 6)).float().contiguous(memory_format=torch.channels_last).requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        m(x).sum().backward()
    big = [s for s in saved if s[1] == tuple(x.shape)]
    assert big == [(torch.int16, tuple(x.shape))], saved


def test_refuses_a_non_integer_input_in_training():
    m = IntBatchNorm2d(3)
    with pytest.raises(RuntimeError, match=r"x: expected integer values .* got 0.25"):
        m(torch.full((2, 3, 2, 2), 0.25))
    assert int(m.num_batches_tracked) == 0 and torch.equal(m.running_mean, torch.zeros(3))
    with pytest.raises(ValueError, match=r"x: expected more than 1 value per channel when training, got shape "
                       r"\(1, 3\)"):
        IntBatchNorm1d(3)(torch.ones(1, 3))
    m.eval()
    m(torch.full((2, 3, 2, 2), 0.25))  # eval: nn.BatchNorm's path, any values


@pytest.mark.parametrize("net", [models.mnist_net, models.cifar_net])
def test_networks_use_it_after_ternary_layers_only(net):
    gx, fl = net(gx=True), net(gx=False)
    bns = [m for m in gx.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert type(bns[0]) is nn.BatchNorm2d  # after the real-valued first layer
    assert all(isinstance(m, (IntBatchNorm1d, IntBatchNorm2d)) for m in bns[1:])
    assert not any(isinstance(m, (IntBatchNorm1d, IntBatchNorm2d)) for m in fl.modules())
    assert not any(isinstance(m, (IntBatchNorm1d, IntBatchNorm2d)) for m in net(gx=True, n_states=2).modules())
    assert list(gx.state_dict()) == list(net(gx=True, n_states=2).state_dict())
