"""DiscreteWeight: a GXNOR layer's ``.weight`` is a Parameter of the float layer's shape whose values
live in 2 bits, with an ordinary ``.grad``; what PyTorch does to weights works on it."""

from __future__ import annotations

import copy
import io
import pickle
import warnings

import pytest
import torch
from torch import nn

from gxnor_cuda import models
from gxnor_cuda.nn import GXNORConv2d, GXNORLinear, TernaryActivation
from gxnor_cuda.optim import DST, is_discrete
from gxnor_cuda.train import squared_hinge
from gxnor_cuda.weight import DiscreteWeight, nbytes_stored


def _layers():
    return [GXNORLinear(100, 16), GXNORLinear(70, 8, n_states=2),
            GXNORConv2d(8, 16, 3, padding=1, input_quantizer=TernaryActivation(0.5, 0.25)),
            GXNORConv2d(6, 4, (3, 2), groups=2, n_states=3)]


@pytest.mark.parametrize("i", range(4))
def test_weight_is_a_parameter_of_the_logical_shape_with_a_plain_grad(i):
    m = _layers()[i]
    w = m.weight
    assert isinstance(w, DiscreteWeight) and isinstance(w, nn.Parameter) and w.requires_grad
    assert dict(m.named_parameters())["weight"] is w and is_discrete(w)
    float_shape = (m.out_features, m.in_features) if isinstance(m, GXNORLinear) else \
        (m.out_channels, m.in_channels // m.groups, *m.kernel_size)
    assert tuple(w.shape) == float_shape and w.dtype == torch.float32
    assert nbytes_stored(w) == w.packed.numel() * w.packed.element_size() < w.numel() * 4
    assert w.packed.dtype == (torch.int32 if m.n_states == 1 else torch.int8)
    x = torch.randn(4, m.in_features) if isinstance(m, GXNORLinear) else torch.randn(2, m.in_channels, 6, 6)
    x.requires_grad_()
    m(x).square().sum().backward()
    g = w.grad
    assert type(g) is torch.Tensor and g.shape == w.shape and g.stride() == w.stride()
    # the same gradient as a float layer holding the dense values
    wd = w.dequantize().requires_grad_()
    ref = nn.functional.linear(x, wd) if isinstance(m, GXNORLinear) else nn.functional.conv2d(
        m.input_quantizer(x) if m.input_quantizer is not None else x, wd, None, m.stride, m.padding, m.dilation,
        m.groups)
    ref = m._epilogue(ref)
    ref.square().sum().backward()
    torch.testing.assert_close(g, wd.grad, rtol=1e-4, atol=1e-3)


def test_a_frozen_weight_gets_no_gradient():
    m = GXNORConv2d(8, 16, 3, input_quantizer=TernaryActivation(0.5, 0.25))
    m.weight.requires_grad_(False)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    m(x).sum().backward()
    assert m.weight.grad is None and x.grad is not None


def test_reading_ops_see_the_dense_values_and_writes_are_refused():
    m = GXNORConv2d(4, 6, 3)
    w, d = m.weight, m.weight.dequantize()
    assert type(d) is torch.Tensor and set(d.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.equal(w == 0, d == 0) and float(w.sum()) == float(d.sum())
    x = torch.randn(1, 4, 5, 5)
    torch.testing.assert_close(nn.functional.conv2d(x, w), nn.functional.conv2d(x, d))
    assert torch.equal(w.contiguous(), d.contiguous())  # a conv weight is channels-last: dense NCHW copy
    assert type(w.long()) is torch.Tensor and torch.equal(w.long(), d.long())  # integer dtypes: dense values
    before = m.weight_q.clone()
    with torch.no_grad(), pytest.raises(RuntimeError, match="in-place .*add_.* not supported.*DST"):
        w.add_(1)
    with torch.no_grad(), pytest.raises(ValueError, match="src: expected values on the 1-state grid"):
        w.copy_(d * 0.5)
    assert torch.equal(m.weight_q, before), "a refused write must leave the weight as it was"
    with torch.no_grad():
        w.copy_(-d)  # dense values on the grid are packed (how DDP broadcasts rank 0's weights)
    assert torch.equal(w.dequantize(), -d)


def test_deepcopy_pickle_save_and_to_keep_it():
    m = nn.Sequential(GXNORLinear(20, 8), GXNORConv2d(3, 4, 3, n_states=2))
    buf = io.BytesIO()
    torch.save(m[1].weight, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    copies = [copy.deepcopy(m), pickle.loads(pickle.dumps(m))]
    for c in copies:
        for a, b in zip(c, m, strict=True):
            assert isinstance(a.weight, DiscreteWeight) and isinstance(a.weight, nn.Parameter)
            assert torch.equal(a.weight_q, b.weight_q) and a.weight_q.data_ptr() != b.weight_q.data_ptr()
    assert isinstance(loaded, DiscreteWeight) and torch.equal(loaded.packed, m[1].weight_q)
    h = copy.deepcopy(m).to(torch.bfloat16)
    assert h[0].weight.dtype == torch.bfloat16 and h[0].weight_q.dtype == torch.int32
    assert h[0](torch.randn(2, 20, dtype=torch.bfloat16)).dtype == torch.bfloat16
    assert torch.equal(h[1].weight_q, m[1].weight_q)


def test_old_checkpoints_with_an_anchor_still_load():
    m = GXNORLinear(30, 5)
    sd = dict(m.state_dict())
    assert "weight" not in sd and sd["weight_q"].dtype == torch.int32  # the storage, a plain tensor
    sd["anchor"] = torch.zeros(())  # what modules saved before the weight was a Parameter
    m2 = GXNORLinear(30, 5)
    m2.load_state_dict(sd, strict=True)
    assert torch.equal(m2.weight_q, m.weight_q)


def test_dst_finds_discrete_weights_by_type():
    m = models.mnist_net(True, 1, r=1.0, a=0.5)
    opt = DST.for_model(m)
    disc = opt.param_groups[0]["params"]
    assert disc and all(isinstance(p, DiscreteWeight) for p in disc)
    assert not any(isinstance(p, DiscreteWeight) for p in opt.param_groups[1]["params"])
    tagged = torch.zeros(3, 2, 2, dtype=torch.int32)
    tagged.gxnor_K = 64  # a storage tag does not make a plain tensor a discrete weight
    assert not is_discrete(tagged)


def test_compiled_training_step_has_no_graph_break_and_follows_dst():
    """fullgraph=True forward and backward of the MNIST net (the weights' gradients from the compiled
    backward equal eager's), then a DST step: the compiled model reads the new weights without a recompile."""
    import torch._dynamo as dyn

    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    eager = models.mnist_net(True, 1, r=1.0, a=0.5)
    comp = copy.deepcopy(eager)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    dyn.reset()
    cm = torch.compile(comp, fullgraph=True, backend="aot_eager")
    opts = [DST.for_model(n, seed=5) for n in (eager, comp)]
    for step in range(2):
        with dyn.config.patch(error_on_recompile=step > 0):
            for net, opt in zip((eager, cm), opts, strict=True):
                opt.zero_grad()
                squared_hinge(net(x), y).backward()
        for a, b in zip(eager.parameters(), comp.parameters(), strict=True):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)
        for opt in opts:
            opt.step()
        for a, b in zip(eager.parameters(), comp.parameters(), strict=True):
            if is_discrete(a):
                assert torch.equal(a.packed, b.packed)


def test_a_replaced_weight_is_refused_by_name():
    """Wrappers that swap parameters for their own (FSDP's sharded ones) are not supported: a clear
    error instead of an AttributeError deep in a kernel call."""
    m = GXNORLinear(16, 4)
    m.weight = nn.Parameter(torch.zeros(4, 16))
    with pytest.raises(TypeError, match="GXNORLinear.weight: expected a gxnor_cuda.weight.DiscreteWeight, got "
                                        "Parameter"):
        m(torch.randn(2, 16))
