"""Training step time and memory of the GXNOR networks against other ways to train the same network,
timed interleaved in one run.

Contenders (each in its own worker process, so its memory high-water mark is its own):
- gxnor: the paper's network as `python -m gxnor_cuda.train` builds it (packed weights, DST);
- float: the float twin (nn.Conv2d / nn.Linear) with Adam;
- ste: a hand-written straight-through ternary network (float latent weights, ternarised in the
  forward, identity gradient; Adam);
- brevitas: ternary QAT (2-bit narrow-range weights and activations with learned scales; Adam) and
- torchao-bitnet: torchao's BitNet b1.58 training on the linear layers (convs stay float; Adam),
  when those packages import (``--install`` installs them);
Steps are handed out round-robin: every round each worker runs `--steps` steps, so the machine's
drift lands on all contenders alike. Reported: median and min step time over the rounds, the step
peak memory (ru_maxrss after the steps minus before the first: the process, allocator caches and
first-step set-up included), the step's own tensors at their peak (step_memory.py: the storages its
ops create, alive at once), and the persistent bytes per weight (parameters, buffers and optimizer
state between steps, over the weight count).

    python bench/bench_train.py [--nets mnist cifar] [--batches 100 1000] [--rounds 4] [--steps 5] [--install]

CSV: bench/results/bench_train.csv, plot bench/results/bench_train.png (``--name`` for another name:
`make bench` writes the CIFAR rows to bench_train_cifar.csv).
"""

from __future__ import annotations

import multiprocessing as mp
import pathlib
import resource
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import emit, parser  # noqa: E402


def _ste_net(name: str):
    """The paper's network with float latent weights, ternarised weights and activations in the forward
    and straight-through gradients (what most ternary-network code does)."""
    import torch
    from torch import nn

    class Tern(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, r):
            ctx.save_for_backward(x)
            ctx.r = r
            return torch.where(x >= r, 1.0, torch.where(x <= -r, -1.0, 0.0)).to(x.dtype)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x.abs() <= ctx.r + 0.5).to(g.dtype), None

    class TConv(nn.Conv2d):
        def forward(self, x):
            w = self.weight
            wt = w + (Tern.apply(w, 0.7 * w.abs().mean().item()) - w).detach()
            return self._conv_forward(x, wt, None)

    class TLin(nn.Linear):
        def forward(self, x):
            w = self.weight
            return nn.functional.linear(x, w + (Tern.apply(w, 0.7 * w.abs().mean().item()) - w).detach())

    class Act(nn.Module):
        def forward(self, x):
            return Tern.apply(x, 0.35)

    return _paper_net(name, TConv, TLin, Act)


def _paper_net(name: str, conv, lin, act):
    """The paper's MNIST or CIFAR network built from the given conv / linear / activation classes."""
    from torch import nn

    if name == "mnist":
        return nn.Sequential(conv(1, 32, 5, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(32), act(),
                             conv(32, 64, 5, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(64), nn.Flatten(), act(),
                             lin(1024, 512, bias=False), nn.BatchNorm1d(512), act(), lin(512, 10, bias=False),
                             nn.BatchNorm1d(10))
    layers, c_in = [], 3
    for i, c in enumerate((128, 128, 256, 256, 512, 512)):
        layers += ([act()] if i else []) + [conv(c_in, c, 3, padding=1, bias=False)]
        layers += ([nn.MaxPool2d(2)] if i % 2 else []) + [nn.BatchNorm2d(c)]
        c_in = c
    return nn.Sequential(*layers, nn.Flatten(), act(), lin(8192, 1024, bias=False), nn.BatchNorm1d(1024), act(),
                         lin(1024, 10, bias=False), nn.BatchNorm1d(10))


def _brevitas_net(name: str):
    """Ternary QAT in brevitas: 2-bit narrow-range weights and activations ({-1, 0, 1} x a learned
    float scale), float latent weights."""
    import brevitas.nn as qnn

    conv = lambda *a, **k: qnn.QuantConv2d(*a, **k, weight_bit_width=2, weight_narrow_range=True)
    lin = lambda *a, **k: qnn.QuantLinear(*a, **k, weight_bit_width=2, weight_narrow_range=True)
    act = lambda: qnn.QuantIdentity(bit_width=2, narrow_range=True)
    return _paper_net(name, conv, lin, act)


def _build(contender: str, net: str):
    import torch

    from gxnor_cuda import models
    from gxnor_cuda.optim import DST

    make = models.mnist_net if net == "mnist" else models.cifar_net
    if contender == "gxnor":
        m = make(True, 1, r=0.35 if net == "mnist" else 1.0)
        return m, DST.for_model(m, lr=0.05, float_lr=3e-3)
    if contender == "float":
        m = make(False)
        return m, torch.optim.Adam(m.parameters(), lr=1e-3)
    if contender == "ste":
        m = _ste_net(net)
        return m, torch.optim.Adam(m.parameters(), lr=1e-3)
    if contender == "brevitas":
        m = _brevitas_net(net)
        return m, torch.optim.Adam(m.parameters(), lr=1e-3)
    if contender == "torchao-bitnet":  # BitNet b1.58 training on the linear layers; the convs stay float
        from torchao import quantize_
        from torchao.prototype.quantized_training import bitnet_training

        m = make(False)
        quantize_(m, bitnet_training())
        return m, torch.optim.Adam(m.parameters(), lr=1e-3)
    raise ValueError(contender)


def _worker(conn, contender: str, net: str, batch: int, threads: int) -> None:
    import torch

    from gxnor_cuda.train import squared_hinge
    from gxnor_cuda.weight import nbytes_stored

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, opt = _build(contender, net)
    shape = (batch, 1, 28, 28) if net == "mnist" else (batch, 3, 32, 32)
    x, y = torch.rand(shape) * 2 - 1, torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad()
        squared_hinge(model(x), y).backward()
        opt.step()

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    step()
    conn.send("ready")
    while True:
        cmd = conn.recv()
        if cmd == "stop":
            break
        times = []
        for _ in range(cmd):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        conn.send(times)
    peak_rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    from step_memory import StepTensorMemory

    with StepTensorMemory() as tm:  # one more step, after the timed ones (the mode slows it)
        step()
    state = [v for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)]
    nbytes = sum(nbytes_stored(t) for t in [*model.parameters(), *model.buffers(), *state])
    weights = sum(mm.weight.numel() for mm in model.modules()
                  if isinstance(mm, (torch.nn.Conv2d, torch.nn.Linear)) or type(mm).__name__ in ("GXNORConv2d",
                                                                                                 "GXNORLinear"))
    conn.send({"peak MiB": peak_rss, "step tensor MiB": tm.peak / 2**20, "persistent B/weight": nbytes / weights})


OPTIONAL = {"brevitas": "brevitas==0.13.4", "torchao-bitnet": "torchao==0.18.0"}


def _contenders() -> list[str]:
    """gxnor, float, ste, and the optional packages' contenders that import here."""
    import importlib.util

    have = [c for c, req in OPTIONAL.items() if importlib.util.find_spec(req.split("==")[0]) is not None]
    return ["gxnor", "float", "ste", *have]


def _install_optional() -> None:
    """--install: the optional contenders' packages, into this interpreter's environment."""
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *OPTIONAL.values()], check=True)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--nets", nargs="+", default=["mnist"], choices=["mnist", "cifar"])
    ap.add_argument("--batches", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--contenders", nargs="+", default=None,
                    help="a subset (gxnor and float always needed): each worker holds its own batch, so CIFAR at "
                         "batch 1000 fits 24 GiB with three")
    ap.add_argument("--name", default="bench_train", help="results name: bench/results/<name>.csv and .png")
    ap.add_argument("--install", action="store_true", help=f"pip install {' '.join(OPTIONAL.values())} first "
                    "(their contenders run whenever they import)")
    args = ap.parse_args()
    if args.install:
        _install_optional()
    ctx = mp.get_context("spawn")
    rows = []
    for net in args.nets:
        for batch in args.batches:
            workers = {}
            for c in [c for c in _contenders() if not args.contenders or c in args.contenders]:
                a, b = ctx.Pipe()
                p = ctx.Process(target=_worker, args=(b, c, net, batch, args.threads))
                p.start()
                workers[c] = (p, a)
            for _, a in workers.values():
                assert a.recv() == "ready"
            rounds = {c: [] for c in workers}
            for _ in range(args.rounds):  # round-robin: one worker at a time, each round every worker
                for c, (_, a) in workers.items():
                    a.send(args.steps)
                    rounds[c].append(statistics.median(a.recv()))
            for c, (p, a) in workers.items():
                a.send("stop")
                mem = a.recv()
                p.join()
                rows.append({"net": net, "batch": batch, "contender": c,
                             "median step ms": 1e3 * statistics.median(rounds[c]),
                             "min step ms": 1e3 * min(rounds[c]), **mem})
            fl = next(r for r in rows if r["net"] == net and r["batch"] == batch and r["contender"] == "float")
            for r in rows:
                if r["net"] == net and r["batch"] == batch:
                    r["vs float (time)"] = r["median step ms"] / fl["median step ms"]
                    r["vs float (peak memory)"] = r["peak MiB"] / max(fl["peak MiB"], 1e-9)
                    r["vs float (step tensors)"] = r["step tensor MiB"] / max(fl["step tensor MiB"], 1e-9)
            print(f"  done {net} batch {batch}", flush=True)
    emit(args.name, rows, ["net", "batch", "contender", "median step ms", "min step ms", "vs float (time)",
                               "peak MiB", "vs float (peak memory)", "step tensor MiB", "vs float (step tensors)",
                               "persistent B/weight"], plot=_plot)


def _plot(path, rows, meta) -> None:
    import matplotlib.pyplot as plt

    keys = sorted({(r["net"], r["batch"]) for r in rows})
    cons = list(dict.fromkeys(r["contender"] for r in rows))
    fig, ax = plt.subplots(figsize=(7, 3))
    width = 0.8 / len(cons)
    for j, c in enumerate(cons):
        vals = [next(r["median step ms"] for r in rows if (r["net"], r["batch"]) == k and r["contender"] == c)
                for k in keys]
        ax.bar([i + j * width for i in range(len(keys))], vals, width, label=c)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(keys))], [f"{n} b{b}" for n, b in keys])
    ax.set_ylabel("median step ms")
    ax.set_title(f"training step, {meta['threads']} threads, {meta['cpu'][:40]}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
