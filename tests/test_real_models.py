"""Conversion of real architectures (torchvision, Hugging Face; built from configs, nothing
downloaded): convert, forward, a few training steps that lower the loss, state_dict and float
checkpoint load, deepcopy, bf16, and compiled inference. Skipped where the libraries are missing."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gxnor_cuda.nn import GXNORConv2d, GXNORLinear, convert
from gxnor_cuda.optim import DST


def _corr(a, b) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])


def _compiles(model, call, inputs, train_loss=None):
    """fullgraph=True inference equal to eager and no recompile on a second input of the same shapes;
    with ``train_loss``, a fullgraph=True forward and backward too (no graph break in the GXNOR layers)."""
    import torch._dynamo as dyn

    dyn.reset()
    model.eval()
    with torch.no_grad():
        cm = torch.compile(model, fullgraph=True, backend="eager")
        torch.testing.assert_close(call(cm, inputs[0]), call(model, inputs[0]), rtol=1e-4, atol=1e-4)
        with dyn.config.patch(error_on_recompile=True):
            call(cm, inputs[1])
    if train_loss is not None:
        dyn.reset()
        model.train()
        ct = torch.compile(model, fullgraph=True, backend="aot_eager")
        train_loss(ct, inputs[0]).backward()
        assert all(p.grad is not None for n, p in model.named_parameters() if n.endswith("weight") and
                   isinstance(model.get_submodule(n.rsplit(".", 1)[0]), (GXNORConv2d, GXNORLinear)))
        model.zero_grad()


def _train_lowers_loss(model, batch, loss_fn, steps=6):
    opt = DST.for_model(model, seed=0)
    model.train()
    first = None
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model, batch)
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    with torch.no_grad():
        last = float(loss_fn(model, batch))
    assert last < first, f"loss {first:.4f} -> {last:.4f}"


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_torchvision(arch):
    tvm = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    fl = getattr(tvm, arch)(num_classes=10).eval()
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        want = fl(x)
    m = convert(copy.deepcopy(fl))
    rep = m.gxnor_report
    assert len(rep.converted()) > 10 and isinstance(m.get_submodule(rep.converted()[0]), (GXNORConv2d, GXNORLinear))
    with torch.no_grad():
        got = m.eval()(x)
    assert got.shape == want.shape and torch.isfinite(got).all()
    sd = m.state_dict()
    m2 = convert(getattr(tvm, arch)(num_classes=10))
    m2.load_state_dict(sd)
    with torch.no_grad():
        torch.testing.assert_close(m2.eval()(x), got)
    m3 = convert(getattr(tvm, arch)(num_classes=10))
    m3.load_state_dict(fl.state_dict())  # a float checkpoint into the converted model
    with torch.no_grad():
        assert _corr(m3.eval()(x), got) > 0.99
    mb = copy.deepcopy(m).to(torch.bfloat16)
    with torch.no_grad():
        assert mb(x.bfloat16()).dtype == torch.bfloat16
    _compiles(m, lambda mod, v: mod(v), (x, x + 1), lambda mod, v: mod(v).square().mean())
    y = torch.randint(0, 10, (8,))
    xb = torch.randn(8, 3, 64, 64)
    _train_lowers_loss(m, (xb, y), lambda mod, b: nn.functional.cross_entropy(mod(b[0]), b[1]))


def test_huggingface_bert_and_gpt2():
    tr = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = tr.BertConfig(vocab_size=200, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=64, num_labels=3)
    bert = tr.BertForSequenceClassification(cfg)
    ids = torch.randint(0, 200, (4, 16))
    labels = torch.tensor([0, 1, 2, 1])
    convert(bert)
    assert len(bert.gxnor_report.converted()) >= 10
    _compiles(bert, lambda mod, v: mod(input_ids=v).logits, (ids, torch.randint(0, 200, (4, 16))))
    _train_lowers_loss(bert, (ids, labels), lambda mod, b: mod(input_ids=b[0], labels=b[1]).loss)
    gcfg = tr.GPT2Config(vocab_size=200, n_embd=64, n_layer=2, n_head=4, n_positions=64)
    gpt = tr.GPT2LMHeadModel(gcfg)
    convert(gpt, skip=())
    rows = {r["layer"]: r for r in gpt.gxnor_report.rows}
    assert rows["lm_head"]["action"] == "skipped" and "tied" in rows["lm_head"]["why"]
    assert any(isinstance(m, GXNORLinear) for n, m in gpt.named_modules() if n.endswith("c_attn"))
    gpt.tie_weights()
    _train_lowers_loss(gpt, ids, lambda mod, b: mod(input_ids=b, labels=b).loss)
