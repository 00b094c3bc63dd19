"""Training step time and memory of the GXNOR MNIST network against its float twin (nn.Conv2d +
nn.Linear + Adam), batch 100 and 1000, 2 threads.

Each (network, batch) runs in a fresh subprocess so its peak resident memory (ru_maxrss) is its
own: "step peak MiB" is the high-water mark during the timed steps minus the resident size before
the first step (activations, saved tensors, gradients, workspaces). "persistent KiB" counts the
parameters, buffers and optimizer state that live between steps.

    python bench/bench_train.py [--threads 2] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import resource
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import emit  # noqa: E402


def tensor_bytes(ts) -> int:
    return sum(t.numel() * t.element_size() for t in ts)


def child(gx: bool, bs: int, steps: int, threads: int) -> dict:
    import torch

    from gxnor_cuda import models
    from gxnor_cuda.optim import DST, is_discrete
    from gxnor_cuda.train import squared_hinge

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = models.mnist_net(gx)
    if gx:
        disc = [p for p in net.parameters() if is_discrete(p)]
        flt = [p for p in net.parameters() if not is_discrete(p)]
        opt = DST([{"params": disc}, {"params": flt, "base": "adam", "lr": 3e-3}], lr=0.02, base="normalized",
                  seed=0)
    else:
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = torch.rand(bs, 1, 28, 28) * 2 - 1, torch.randint(0, 10, (bs,))

    def step():
        opt.zero_grad()
        loss = squared_hinge(net(x), y)
        loss.backward()
        opt.step()

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()
    step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    state = [v for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)]
    persistent = tensor_bytes(net.parameters()) + tensor_bytes(net.buffers()) + tensor_bytes(state)
    times.sort()
    return {"step ms": 1e3 * times[len(times) // 2], "step peak MiB": (peak - base) / 1024,
            "persistent KiB": persistent / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        gx, bs = args.child.split(",")
        print(json.dumps(child(gx == "1", int(bs), args.steps, args.threads)))
        return
    rows = []
    for bs in (100, 1000):
        r = {"batch": bs}
        for gx, tag in ((True, "gxnor"), (False, "float")):
            out = subprocess.run([sys.executable, __file__, "--child", f"{int(gx)},{bs}", "--steps", str(args.steps),
                                  "--threads", str(args.threads)], capture_output=True, text=True, check=True)
            for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items():
                r[f"{tag} {k}"] = v
        r["step speed-up"] = r["float step ms"] / r["gxnor step ms"]
        r["persistent ratio"] = r["float persistent KiB"] / r["gxnor persistent KiB"]
        rows.append(r)
        print(f"  done batch {bs}", flush=True)
    headers = ["batch", "gxnor step ms", "float step ms", "step speed-up", "gxnor step peak MiB",
               "float step peak MiB", "gxnor persistent KiB", "float persistent KiB", "persistent ratio"]
    emit("bench_train_cpu", rows, headers)


if __name__ == "__main__":
    main()
