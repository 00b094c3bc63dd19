"""Shared benchmark plumbing: timing (torch.utils.benchmark), metadata, table, CSV and PNG."""

from __future__ import annotations

import argparse
import csv
import os
import pathlib
import platform
import subprocess
import sys
import time

import torch
import torch.utils.benchmark as tb
from tabulate import tabulate

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def parser(doc: str) -> argparse.ArgumentParser:
    """A benchmark's command line: its docstring as the help, and --threads (default 2)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    return ap


def save_plot(fig, ax, what: str, meta: dict, path) -> None:
    """Title a benchmark's plot with the machine, threads and git sha of its CSV, and write the PNG."""
    ax.set_title(f"{what}, {meta['device']}, {meta['threads']} threads, git {meta['git']}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def speedup_bars(path, rows: list[dict], meta: dict, keys: list[str], label: str, what: str,
                 ylabel: str = "speed-up (x)") -> None:
    """One group of log-scale bars per row (its ``label`` column), one bar per ratio column in ``keys``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    w, xs = 0.8 / len(keys), range(len(rows))
    for i, key in enumerate(keys):
        ax.bar([x + w * i for x in xs], [r[key] for r in rows], width=w, label=key)
    ax.axhline(1.0, color="k", lw=0.5)
    ax.set_xticks([x + w * (len(keys) - 1) / 2 for x in xs], [r[label] for r in rows], rotation=30, ha="right",
                  fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    save_plot(fig, ax, what, meta, path)


def metadata() -> dict[str, str]:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=RESULTS.parent).stdout.strip() or "unknown"
    except OSError:
        sha = "unknown"
    try:
        import triton

        tv = triton.__version__
    except ImportError:
        tv = "none"
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else cpu
    # torch's own switch for 2 MiB pages on CPU allocations >= 2 MiB: fresh large outputs (torch's
    # and gxnor's alike) then cost far fewer page faults; recorded because it moves the ratios.
    thp = os.environ.get("THP_MEM_ALLOC_ENABLE", "0")
    return {"device": dev, "cpu": cpu, "threads": str(torch.get_num_threads()), "torch": torch.__version__,
            "triton": tv, "git": sha, "THP_MEM_ALLOC_ENABLE": thp,
            "date": time.strftime("%Y-%m-%d"), "command": " ".join(["python", *sys.argv])}


def time_cpu(fn, min_run_time: float = 1.0) -> float:
    """Median seconds per call of fn() on the CPU (torch.utils.benchmark, adaptive repeats)."""
    return time_rounds({"fn": fn}, 1, min_run_time)["fn"]


def time_rounds(fns: dict, rounds: int = 3, min_run_time: float = 0.3) -> dict[str, float]:
    """Seconds per call of each fn, timed round-robin: the best of ``rounds`` medians.

    A shared VM's speed drifts by 1.5x over minutes (steal time); timing every op of a row once per
    round, interleaved, and keeping each op's best round compares the ops under the same conditions.
    """
    for fn in fns.values():
        fn()  # warm-up
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            m = tb.Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()).blocked_autorange(
                min_run_time=min_run_time)
            best[k] = min(best[k], m.median)
    return best


def emit(name: str, rows: list[dict], headers: list[str], plot=None) -> pathlib.Path:
    """Print a table, write bench/results/<name>.csv (and <name>.png via plot(path, rows, meta))."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = metadata()
    print(" | ".join(f"{k}: {v}" for k, v in meta.items()))
    print(tabulate([[r.get(h, "") for h in headers] for r in rows], headers=headers, floatfmt=".3g"))
    path = RESULTS / f"{name}.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[*headers, *meta.keys()])
        w.writeheader()
        for r in rows:
            w.writerow({**{h: r.get(h, "") for h in headers}, **meta})
    print(f"wrote {path}")
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        png = RESULTS / f"{name}.png"
        plot(png, rows, meta)
        print(f"wrote {png}")
    return path
