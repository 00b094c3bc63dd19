"""Converted real models: output agreement with the float model and weight memory.

    python bench/bench_convert.py

torchvision resnet18 / mobilenet_v2 / vgg11_bn (random init: no download here; BatchNorm running
statistics from 8 batches of random images so the float model is not degenerate) and a Hugging
Face BERT built from a config: `convert()` with its defaults (first and last layers float, per-
channel scales), then the Pearson correlation of the logits with the float model's on 64 inputs
and the weight bytes of the converted layers before and after. CSV: bench/results/bench_convert.csv.
"""

from __future__ import annotations

import copy
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import emit  # noqa: E402

from gxnor_cuda.nn import convert  # noqa: E402


def _corr(a, b) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten().double(), b.flatten().double()]))[0, 1])


def _vision(name):
    import torchvision

    torch.manual_seed(0)
    m = torchvision.models.get_model(name, num_classes=100)
    m.train()
    with torch.no_grad():
        for _ in range(8):
            m(torch.randn(16, 3, 64, 64))
    return m.eval(), torch.randn(64, 3, 64, 64)


def _bert():
    import transformers as tr

    torch.manual_seed(0)
    cfg = tr.BertConfig(vocab_size=1000, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=1024, num_labels=10)
    m = tr.BertForSequenceClassification(cfg).eval()
    return m, torch.randint(0, 1000, (64, 32))


def main() -> None:
    rows = []
    for name, make in (("resnet18", lambda: _vision("resnet18")), ("mobilenet_v2", lambda: _vision("mobilenet_v2")),
                       ("vgg11_bn", lambda: _vision("vgg11_bn")), ("bert (4 layers, 256)", _bert)):
        try:
            fl, x = make()
        except ImportError as e:
            print(f"{name}: skipped ({e})")
            continue
        out = (lambda mod, inp: mod(inp).logits) if "bert" in name else (lambda mod, inp: mod(inp))
        with torch.no_grad():
            want = out(fl, x)
            m = convert(copy.deepcopy(fl), example_input=x[:2])
            got = out(m, x)
        rep = m.gxnor_report
        conv = [r for r in rep.rows if r["action"] == "converted"]
        rows.append({"model": name, "layers converted": f"{len(conv)} of {len(rep.rows)}",
                     "logit correlation": _corr(got, want),
                     "weights before (MB)": sum(r["bytes before"] for r in conv) / 1e6,
                     "weights after (MB)": sum(r["bytes after"] for r in conv) / 1e6,
                     "x smaller": sum(r["bytes before"] for r in conv) / sum(r["bytes after"] for r in conv)})
    emit("bench_convert", rows, ["model", "layers converted", "logit correlation", "weights before (MB)",
                                 "weights after (MB)", "x smaller"])


if __name__ == "__main__":
    main()
