"""Whole training steps of the paper's networks on CUDA fake tensors (no GPU needed).

FakeTensorMode runs every op's fake implementation with CUDA device placement: an op without a
fake, a tensor left on the CPU, or a host sync (``.item()``, ``int(t)``, a data-dependent branch)
raises. The autograd engine refuses CUDA fake tensors without a GPU, so each custom autograd
Function's backward is called directly, under the same mode, on the arguments the forward used.
"""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from gxnor_cuda import autograd as ag
from gxnor_cuda import autograd_conv as agc
from gxnor_cuda import models
from gxnor_cuda import nn as gnn
from gxnor_cuda.optim import DST, is_discrete
from gxnor_cuda.train import recalibrate_bn, squared_hinge

FUNCTIONS = (ag.TernaryWeightMatmul, ag.TernaryInputMatmul, agc.TernaryWeightConv, agc.TernaryInputConv,
             agc.TernaryWeightConvPool, gnn._PhiFn)


class _Ctx(torch.autograd.function.FunctionCtx):
    """What backward reads from its ctx, for a direct call."""

    needs_input_grad = (True,) * 8

    @property
    def saved_tensors(self):
        return self.to_save


@pytest.fixture
def recorded(monkeypatch):
    """Records (Function, args) of every custom autograd Function applied."""
    calls = []
    for fn in FUNCTIONS:
        orig = fn.apply

        def apply(*args, _fn=fn, _orig=orig):
            calls.append((_fn, args))
            return _orig(*args)

        monkeypatch.setattr(fn, "apply", apply)
    return calls


@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize("net_name, shape", [("mnist_net", (8, 1, 28, 28)), ("cifar_net", (2, 3, 32, 32))])
def test_training_step_on_fake_cuda(recorded, monkeypatch, net_name, shape, autocast):
    """autocast: the bf16 step of train.py on a GPU (the float x ternary products in bf16). CUDA
    autocast switches itself off without a GPU, so the layers are told its dtype directly."""
    if autocast:
        monkeypatch.setattr(gnn, "lowp_dtype", lambda x: torch.bfloat16)
    with FakeTensorMode():
        torch.set_default_device("cuda")
        try:
            net = getattr(models, net_name)(True, 1, r=0.35, a=0.5)
            disc = [p for p in net.parameters() if is_discrete(p)]
            flt = [p for p in net.parameters() if not is_discrete(p)]
            opt = DST([{"params": disc}, {"params": flt, "base": "adam", "lr": 1e-3}], lr=0.05, base="normalized",
                      seed=1)
            x = torch.randn(shape)
            y = torch.randint(0, 10, (shape[0],))
            loss = squared_hinge(net(x), y)
            assert loss.device.type == "cuda"
            lowp = [args[-1] for fn, args in recorded if fn not in (gnn._PhiFn, agc.TernaryWeightConvPool)]
            assert all(v == (torch.bfloat16 if autocast else None) for v in lowp)
            kinds = {fn for fn, _ in recorded}
            assert {agc.TernaryInputConv, ag.TernaryInputMatmul} <= kinds
            # the MNIST first layer pools as it convolves (the Triton twin on a GPU), except under autocast
            pooled = net_name == "mnist_net" and not autocast
            assert (agc.TernaryWeightConvPool in kinds) == pooled and (agc.TernaryWeightConv in kinds) != pooled
            for fn, args in recorded:  # every custom backward, on the forward's own arguments
                ctx = _Ctx()
                out = fn.forward(ctx, *args)
                grads = fn.backward(ctx, torch.ones_like(out))
                for g, a in zip(grads, args, strict=False):
                    if isinstance(g, torch.Tensor) and isinstance(a, torch.Tensor) and a.is_floating_point():
                        assert g.device == a.device and g.shape == a.shape, fn.__name__
            for p in disc:  # the weight gradients the backward returns have the weights' shape (above)
                p.grad = torch.randn(p.shape).as_strided(p.shape, p.stride())
            for p in flt:
                p.grad = torch.randn_like(p)
            opt.step()  # raises on a host sync: fake tensors have no values to read
            opt.step()
            assert all(p.device.type == "cuda" for p in net.parameters())
            recalibrate_bn(net, x, n=shape[0], bs=shape[0])
            sd = net.state_dict()
            assert all(v.device.type == "cuda" for v in sd.values())
            osd = opt.state_dict()
            assert osd["dst"]["rng"] == 2 and osd["dst"]["offset"] > 0
        finally:
            torch.set_default_device(None)


def test_a_host_sync_is_caught():
    """The mode does refuse a host sync (what the step test relies on)."""
    with FakeTensorMode():
        t = torch.zeros((), device="cuda")
        with pytest.raises(Exception):  # noqa: B017 (DataDependentOutputException or its kin)
            int(t + 1)
