"""Pack / unpack throughput (GB/s of bytes touched) of the C++ CPU kernels vs the pure-torch
reference, on a 64M-element tensor; a plain tensor copy of the input is the memory-speed yardstick.

    python bench/bench_pack.py [--rows 8192 --cols 8192] [--threads 2]
"""

from __future__ import annotations

import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import emit, parser, save_plot, time_cpu  # noqa: E402

from gxnor_cuda import functional as F  # noqa: E402
from gxnor_cuda import reference as ref  # noqa: E402


def plot(path, rows, meta):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = [f"{r['op']}\n{r['impl']}" for r in rows]
    ax.bar(labels, [r["GB/s"] for r in rows], color=["C0" if r["impl"] == "cpp" else "C7" for r in rows])
    ax.set_ylabel("GB/s (bytes touched)")
    ax.set_yscale("log")
    save_plot(fig, ax, "pack/unpack", meta, path)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--rows", type=int, default=8192)
    ap.add_argument("--cols", type=int, default=8192)
    ap.add_argument("--skip-reference", action="store_true", help="the reference takes seconds and GBs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shape = (args.rows, args.cols)
    n = args.rows * args.cols
    x = torch.randint(-1, 2, shape).float()
    xi8 = x.to(torch.int8)
    p = F.pack_ternary(x, backend="cpp")
    pbytes = p.numel() * 4
    cases = [
        ("copy f32 (yardstick)", "torch", lambda: x.clone(), 2 * n * 4),
        ("pack f32", "cpp", lambda: F.pack_ternary(x, backend="cpp"), n * 4 + pbytes),
        ("pack int8", "cpp", lambda: F.pack_ternary(xi8, backend="cpp"), n + pbytes),
        ("quantize_pack f32", "cpp", lambda: F.quantize_pack(x, 0.5, backend="cpp"), n * 4 + pbytes),
        ("unpack -> int8", "cpp", lambda: F.unpack_ternary(p, args.cols, backend="cpp"), n + pbytes),
        ("unpack -> f32", "cpp", lambda: F.unpack_ternary(p, args.cols, torch.float32, backend="cpp"),
         n * 4 + pbytes),
    ]
    if not args.skip_reference:
        cases += [
            ("pack f32", "reference", lambda: ref.pack_ternary(x), n * 4 + pbytes),
            ("unpack -> f32", "reference", lambda: ref.unpack_ternary(p, args.cols, torch.float32),
             n * 4 + pbytes),
        ]
    rows = []
    for op, impl, fn, nbytes in cases:
        t = time_cpu(fn, min_run_time=0.5 if impl != "reference" else 0.1)
        rows.append({"op": op, "impl": impl, "shape": f"{shape[0]}x{shape[1]}", "ms": t * 1e3,
                     "GB/s": nbytes / t / 1e9, "Gelem/s": n / t / 1e9})
    for r in rows:
        base = next((q for q in rows if q["op"] == r["op"] and q["impl"] == "reference"), None)
        r["x vs reference"] = base["ms"] / r["ms"] if base else ""
    emit("bench_pack", rows, ["op", "impl", "shape", "ms", "GB/s", "Gelem/s", "x vs reference"], plot)


if __name__ == "__main__":
    main()
