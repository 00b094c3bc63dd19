"""Convert a torchvision network to ternary weights and fine-tune it with DST.

    python examples/finetune_torchvision.py [--arch resnet18] [--steps 50] [--weights DEFAULT]

Without --weights the network is built untrained from its config (nothing is downloaded) and
learns a synthetic task; with --weights (a torchvision weights name) the pretrained float model is
converted, which needs the download. Prints the conversion report and the loss as it trains.
"""

from __future__ import annotations

import argparse

import torch
import torchvision
from torch import nn

from gxnor_cuda.nn import convert
from gxnor_cuda.optim import DST


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="resnet18")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.get_model(args.arch, weights=args.weights, num_classes=1000 if args.weights else 10)
    x = torch.randn(64, 3, 64, 64)
    y = torch.randint(0, 10, (64,))
    convert(model, example_input=x[:2], verbose=True)  # first and last layers (by data order) stay float
    model.to(args.device).train()
    opt = DST.for_model(model, lr=0.02, float_lr=1e-3)
    x, y = x.to(args.device), y.to(args.device)
    for step in range(args.steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == args.steps - 1:
            print(f"step {step}: loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
