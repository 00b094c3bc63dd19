"""Inference of the paper's networks: the frozen GXNOR net (``gxnor_cuda.inference.freeze``: BatchNorm
and phi folded into integer thresholds, max-pooling on packed activations) against the GXNOR eval
model it came from and the float twin (nn.Conv2d / nn.Linear, eval), on the same input.

    python bench/bench_infer.py [--batches 100 1000] [--nets mnist cifar]

Timed round-robin (common.time_rounds: the best of 3 interleaved medians). BatchNorm statistics are
random (a trained net's would do the same work). Also reported: whether the frozen logits' argmax
equals the eval model's on the batch. CSV: bench/results/bench_infer.csv.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import warnings

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import emit, time_rounds  # noqa: E402

from gxnor_cuda import models  # noqa: E402
from gxnor_cuda.inference import freeze  # noqa: E402


def _stats(m: torch.nn.Module) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(0)
    for b in m.modules():
        if isinstance(b, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = b.num_features
            b.running_mean.copy_(torch.randn(n, generator=gen) * 4)
            b.running_var.copy_(torch.rand(n, generator=gen) * 60 + 2)
    return m.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nets", nargs="+", default=["mnist", "cifar"], choices=["mnist", "cifar"])
    ap.add_argument("--batches", nargs="+", type=int, default=[100, 1000])
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for net in args.nets:
        make = models.mnist_net if net == "mnist" else models.cifar_net
        torch.manual_seed(0)
        gx = _stats(make(True, 1, r=1.0, a=0.5))
        fl = _stats(make(False, 1, r=1.0, a=0.5))
        fz = freeze(gx)
        for batch in args.batches:
            shape = (batch, 1, 28, 28) if net == "mnist" else (batch, 3, 32, 32)
            x = torch.rand(shape) * 2 - 1
            with torch.no_grad():
                same = float((fz(x).argmax(1) == gx(x).argmax(1)).float().mean())
                t = time_rounds({"frozen": lambda: fz(x), "eval": lambda: gx(x), "float": lambda: fl(x)})
            rows.append({"net": net, "batch": batch, "frozen ms": t["frozen"] * 1e3, "gxnor eval ms": t["eval"] * 1e3,
                         "float ms": t["float"] * 1e3, "frozen vs eval": t["eval"] / t["frozen"],
                         "frozen vs float": t["float"] / t["frozen"], "argmax agreement": same})
    emit("bench_infer", rows, ["net", "batch", "frozen ms", "gxnor eval ms", "float ms", "frozen vs eval",
                               "frozen vs float", "argmax agreement"])


if __name__ == "__main__":
    main()
