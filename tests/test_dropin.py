"""Drop-in conversion of float models: function kept, PyTorch idioms (deepcopy, pickle, dtype,
channels_last, padding modes, unbatched input, shared and tied modules) honoured."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from torch import nn

from gxnor_cuda.nn import GXNORConv2d, GXNORLinear, convert, quantize_
from gxnor_cuda.optim import DST, is_discrete


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def test_converted_mlp_keeps_its_function():
    torch.manual_seed(0)
    fl = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    x = torch.randn(512, 64)
    want = fl(x).detach()
    m = convert(copy.deepcopy(fl), skip=())
    assert all(isinstance(m[i], GXNORLinear) for i in (0, 2, 4))
    assert float((m[2].weight == 0).float().mean()) < 0.6, "real-sized weights must not all round to zero"
    got = m(x).detach()
    assert _corr(got, want) > 0.8
    assert 0.5 < float(got.std() / want.std()) < 2.0, "the per-channel scale keeps the output's magnitude"


def test_fine_tuning_a_converted_model_lowers_the_loss():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 8))
    x = torch.randn(2048, 32)
    y = teacher(x).detach()
    student = convert(nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 8)), skip=())
    opt = DST.for_model(student, lr=0.05, float_lr=1e-2, seed=1)
    loss0 = float(nn.functional.mse_loss(student(x), y).detach())
    for _ in range(60):
        opt.zero_grad()
        nn.functional.mse_loss(student(x), y).backward()
        opt.step()
    assert float(nn.functional.mse_loss(student(x), y).detach()) < 0.7 * loss0


@pytest.mark.parametrize("mode", ["reflect", "circular", "replicate"])
def test_padding_mode_matches_nn_conv2d(mode):
    conv = nn.Conv2d(3, 8, 3, padding=2, dilation=1, padding_mode=mode, bias=False)
    g = GXNORConv2d.from_float(conv, scaled=False)
    conv.weight.data = g.weight.dequantize()  # the same ternary values in the float layer
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(g(x), conv(x), rtol=1e-5, atol=1e-4)


def test_padding_same_valid_and_unbatched_input():
    for padding in ("same", "valid"):
        conv = nn.Conv2d(4, 6, (3, 4), padding=padding, dilation=(1, 2), bias=True)
        g = GXNORConv2d.from_float(conv, scaled=False)
        conv.weight.data = g.weight.dequantize()
        x = torch.randn(2, 4, 11, 10)
        torch.testing.assert_close(g(x), conv(x), rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(g(x[0]), conv(x[0]), rtol=1e-5, atol=1e-4)


def test_deepcopy_and_pickle_keep_the_discrete_weight():
    m = nn.Sequential(GXNORLinear(20, 8), GXNORConv2d(3, 4, 3))
    for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        assert all(is_discrete(p) and isinstance(p, nn.Parameter) for p in (c[0].weight, c[1].weight))
        assert torch.equal(c[0].weight, m[0].weight) and torch.equal(c[1].weight, m[1].weight)
    c = copy.deepcopy(m[0])
    c.weight.grad = torch.randn(8, 20) * 10
    w0 = c.weight_q.clone()
    DST(c.parameters(), lr=1.0, seed=3).step()
    assert not torch.equal(c.weight_q, w0), "DST must train a deep-copied layer"
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    m2 = nn.Sequential(GXNORLinear(20, 8), GXNORConv2d(3, 4, 3))
    m2.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(m2[1].weight, m[1].weight)


def test_shared_module_stays_shared_and_tied_weights_are_refused():
    shared = nn.Linear(16, 16)
    model = nn.Sequential(nn.Linear(16, 16), shared, nn.ReLU(), shared, nn.Linear(16, 4))
    convert(model, skip=())
    assert isinstance(model[1], GXNORLinear) and model[1] is model[3]

    class TiedLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 16)
            self.body = nn.Linear(16, 16)
            self.head = nn.Linear(16, 50, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, t):
            return self.head(self.body(self.emb(t)))

    lm = TiedLM()
    rep = quantize_(lm, skip=())
    assert isinstance(lm.body, GXNORLinear) and isinstance(lm.head, nn.Linear)
    assert lm.head.weight is lm.emb.weight
    assert any(r["layer"] == "head" and "tied" in r["why"] for r in rep.rows)


def test_coverage_hf_conv1d_mha_and_first_last_by_data_order():
    class Conv1D(nn.Module):  # the Hugging Face GPT-2 layer: weight (in, out), y = x @ W + b
        def __init__(self, nf, nx):
            super().__init__()
            self.nf = nf
            self.weight = nn.Parameter(torch.randn(nx, nf) * 0.1)
            self.bias = nn.Parameter(torch.zeros(nf))

        def forward(self, x):
            return x @ self.weight + self.bias

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.late = nn.Linear(32, 4)  # registered first, runs last
            self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
            self.mlp = Conv1D(32, 32)
            self.early = nn.Linear(8, 32)  # registered last, runs first

        def forward(self, x):
            h = self.early(x)
            h = self.attn(h, h, h)[0]
            return self.late(self.mlp(h))

    net = Net()
    x = torch.randn(2, 5, 8)
    want = net(x).detach()
    rep = quantize_(net, example_input=x)
    by = {r["layer"]: r for r in rep.rows}
    assert by["early"]["why"] == "first layer (skip)" and by["late"]["why"] == "last layer (skip)"
    assert by["attn.out_proj"]["action"] == "skipped"
    assert isinstance(net.mlp, GXNORLinear)
    assert _corr(net(x).detach(), want) > 0.5
    assert "converted 1 of 4 layers" in str(rep)


def test_bf16_models_and_autocast_training():
    m = nn.Sequential(GXNORConv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Flatten(), GXNORLinear(8 * 36, 4))
    x = torch.randn(2, 3, 6, 6)
    y32 = m(x)
    mb = copy.deepcopy(m).to(torch.bfloat16)
    yb = mb(x.bfloat16())
    assert yb.dtype == torch.bfloat16 and y32.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x)
        loss = out.float().pow(2).mean()
    assert out.dtype == torch.bfloat16
    loss.backward()
    assert m[0].weight.grad is not None and m[3].weight.grad is not None


def test_channels_last_model():
    m = nn.Sequential(GXNORConv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)).eval()
    x = torch.randn(2, 3, 6, 6)
    want = m(x)
    m = m.to(memory_format=torch.channels_last)
    torch.testing.assert_close(m(x.to(memory_format=torch.channels_last)), want)
    assert is_discrete(m[0].weight) and m[0].weight_q.is_contiguous()


def test_compiled_inference_fullgraph_no_recompiles():
    import torch._dynamo as dyn

    from gxnor_cuda import models

    fl = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                       nn.Conv2d(16, 32, 3, padding=1, padding_mode="reflect"), nn.BatchNorm2d(32), nn.ReLU(),
                       nn.Flatten(), nn.Linear(32 * 64, 10), nn.Linear(10, 10))
    for m, shape in ((convert(fl).eval(), (2, 3, 8, 8)), (models.mnist_net(True).eval(), (4, 1, 28, 28))):
        x = torch.randn(shape)
        dyn.reset()
        with torch.no_grad():
            want = m(x)
            cm = torch.compile(m, fullgraph=True, backend="eager")
            torch.testing.assert_close(cm(x), want)
            with torch._dynamo.config.patch(error_on_recompile=True):
                torch.testing.assert_close(cm(x + 1), m(x + 1))


def test_weights_and_activations_option():
    from gxnor_cuda.nn import TernaryActivation

    m = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))
    convert(m, activations=TernaryActivation(r=0.5))
    q = m[2].input_quantizer
    assert isinstance(q, TernaryActivation) and q.r == 0.5 and m[0].__class__ is nn.Linear
    x = torch.randn(8, 16)
    out = m(x)
    out.sum().backward()
    assert out.shape == (8, 4) and m[2].weight.grad is not None
    assert convert(nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)))[1].input_quantizer is None
