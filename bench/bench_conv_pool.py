"""conv2d_maxpool2x2 (conv + 2x2 max-pool in one pass, and its weight gradient from the pooled
gradient and argmax) against torch's conv2d + max_pool2d (oneDNN) on the same shapes, same run.

Forward: the fused op vs F.max_pool2d(F.conv2d(x, w), 2) in fp32 (NCHW, as a float model runs it)
and bf16. Layer step: the forward and the weight gradient together (what a first layer's training
step runs: the fused op then conv2d_maxpool2x2_weight_grad, against torch autograd through conv2d
and max_pool2d for the weight only).

    python bench/bench_conv_pool.py [--threads 2]
"""

from __future__ import annotations

import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import emit, parser, speedup_bars, time_rounds  # noqa: E402

import gxnor_cuda  # noqa: E402, F401  (registers the ops)

# (name, N, C, O, k, H): the MNIST first layer at batch 100 / 1000, a 3-channel 3x3 first layer
SHAPES = [("mnist conv1 b100", 100, 1, 32, 5, 28), ("mnist conv1 b1000", 1000, 1, 32, 5, 28),
          ("3->64 3x3 32x32 b100", 100, 3, 64, 3, 32)]


def row(name, n, c, o, k, hw, rounds):
    F = torch.nn.functional
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(n, c, hw, hw, generator=g), torch.randn(o, c, k, k, generator=g)
    xb, wb = x.bfloat16(), w.bfloat16()
    y, arg = torch.ops.gxnor.conv2d_maxpool2x2(x, w)
    gy = torch.randn(y.shape, generator=g)
    wr = w.clone().requires_grad_()

    def torch_step():
        F.max_pool2d(F.conv2d(x, wr), 2).backward(gy)

    def fused_step():
        yy, a = torch.ops.gxnor.conv2d_maxpool2x2(x, w)
        torch.ops.gxnor.conv2d_maxpool2x2_weight_grad(gy, a, x, [k, k])

    ms = time_rounds({"fp32 conv+pool": lambda: F.max_pool2d(F.conv2d(x, w), 2),
                      "bf16 conv+pool": lambda: F.max_pool2d(F.conv2d(xb, wb), 2),
                      "fused": lambda: torch.ops.gxnor.conv2d_maxpool2x2(x, w),
                      "fp32 fwd+wgrad": torch_step, "fused fwd+wgrad": fused_step}, rounds)
    return {"layer": name, **{f"{key} ms": 1e3 * v for key, v in ms.items()},
            "fused vs fp32": ms["fp32 conv+pool"] / ms["fused"], "fused vs bf16": ms["bf16 conv+pool"] / ms["fused"],
            "fwd+wgrad vs fp32": ms["fp32 fwd+wgrad"] / ms["fused fwd+wgrad"]}


def plot(path, rows, meta):
    speedup_bars(path, rows, meta, ["fused vs fp32", "fused vs bf16", "fwd+wgrad vs fp32"], "layer",
                 "conv + max-pool in one pass vs torch")


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--name", default="bench_conv_pool", help="results name: bench/results/<name>.csv and .png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = [row(*s, args.rounds) for s in SHAPES]
    keys = ["fp32 conv+pool", "bf16 conv+pool", "fused", "fp32 fwd+wgrad", "fused fwd+wgrad"]
    emit(args.name, rows, ["layer", *[f"{k} ms" for k in keys], "fused vs fp32", "fused vs bf16",
                           "fwd+wgrad vs fp32"], plot=plot)


if __name__ == "__main__":
    main()
