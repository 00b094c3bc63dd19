"""Two builds of gxnor_cuda side by side: the CPU kernels of each timed in its own process, the
processes alternated round by round, so a refactor's before / after ratio is measured in one run.

    python bench/compare_builds.py --old /path/to/old/checkout [--new .] [--rounds 3] [--isa cpp avx2]

Each checkout must hold a built extension (``pip install -e .`` or ``setup.py build_ext --inplace``).
Writes bench/results/compare_builds.csv (best of the rounds per op and build, new / old).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys

from common import emit


def ops() -> dict:
    """The timed calls: conv (CIFAR VGG and MNIST layers, int32 and fused pack), GEMM, pack, DST."""
    import torch

    g = torch.Generator().manual_seed(0)
    gx = torch.ops.gxnor

    def tern(*s):
        return torch.randint(-1, 2, s, generator=g).float()

    calls = {}
    for n, c, h, o in [(100, 128, 32, 128), (100, 256, 16, 256), (100, 512, 8, 512), (100, 32, 14, 64)]:
        xp = gx.pack_ternary(tern(n, h, h, c), 1)
        wp = gx.pack_ternary(tern(o, 3, 3, c), 1)
        sc, bi = torch.rand(o), torch.rand(o)
        args = (xp, wp, c)
        calls[f"xnor_conv2d {c}->{o}@{h} b{n}"] = lambda a=args: gx.xnor_conv2d(*a, [1, 1], [1, 1], [1, 1], 1,
                                                                               None, None)
        calls[f"xnor_conv2d_pack {c}->{o}@{h} b{n}"] = lambda a=args, s=sc, b=bi: gx.xnor_conv2d_pack(
            *a, 0.5, [1, 1], [1, 1], [1, 1], 1, s, b)
    for m, k, n in [(1000, 784, 512), (1024, 1024, 1024), (100, 4096, 1024)]:
        ab = (gx.pack_ternary(tern(m, k), 1), gx.pack_ternary(tern(n, k), 1), k)
        calls[f"xnor_gemm {m}x{k}x{n}"] = lambda a=ab: gx.xnor_gemm(*a, None, None)
    xf = torch.randn(4096, 4096, generator=g)
    calls["quantize_pack 4096x4096"] = lambda: gx.quantize_pack(xf, 0.5)
    wq, gr = gx.pack_ternary(tern(4096, 4096), 1), torch.randn(4096, 4096, generator=g)
    calls["dst_update_ 4096x4096"] = lambda: gx.dst_update_(wq, gr, 0.01, 3.0, 1, 0, False, 2, False)
    return calls


def worker(threads: int) -> None:
    import time

    import torch

    import gxnor_cuda  # noqa: F401  (loads the build on PYTHONPATH)

    torch.set_num_threads(threads)
    out = {}
    for name, fn in ops().items():
        fn()
        ts = []
        for _ in range(7):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        out[name] = min(ts) * 1e3
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", help="checkout of the build to compare against (required)")
    ap.add_argument("--new", default=str(pathlib.Path(__file__).resolve().parent.parent))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--isa", nargs="+", default=["cpp"], help="GXNOR_CPU_ISA settings to run (cpp: the CPU's own)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args.threads)
    if not args.old:
        ap.error("--old: expected the checkout of the build to compare against, got nothing")
    rows = []
    for isa in args.isa:
        best: dict[str, dict[str, float]] = {"old": {}, "new": {}}
        for _ in range(args.rounds):
            for side in ("old", "new"):
                env = {**os.environ, "PYTHONPATH": str(pathlib.Path(getattr(args, side)).resolve())}
                if isa != "cpp":
                    env["GXNOR_CPU_ISA"] = isa
                res = subprocess.run([sys.executable, __file__, "--worker", "--threads", str(args.threads)],
                                     env=env, capture_output=True, text=True, check=True)
                for k, v in json.loads(res.stdout.strip().splitlines()[-1]).items():
                    best[side][k] = min(best[side].get(k, float("inf")), v)
        for k, old in best["old"].items():
            new = best["new"][k]
            rows.append({"isa": isa, "op": k, "old_ms": old, "new_ms": new, "new_over_old": new / old})
    emit("compare_builds", rows, ["isa", "op", "old_ms", "new_ms", "new_over_old"])


if __name__ == "__main__":
    main()
