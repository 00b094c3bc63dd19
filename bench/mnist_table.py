"""Renders bench/results/mnist_runs.csv (rows appended by ``python -m gxnor_cuda.train --record``)
as the README's MNIST results table, with the paper's published figure beside the runs.

    python bench/mnist_table.py [--csv bench/results/mnist_runs.csv] [--readme README.md]

--readme writes the table between the README's <!-- mnist-table --> markers.
"""

from __future__ import annotations

import argparse
import csv
import pathlib

from tabulate import tabulate

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSV = ROOT / "bench" / "results" / "mnist_runs.csv"
BEGIN, END = "<!-- mnist-table -->", "<!-- /mnist-table -->"
HEADERS = ["recipe", "DST base", "r", "a", "shift px", "BatchNorm", "epochs", "batch", "train images", "seed",
           "final %", "best-val %", "best-test %", "input sparsity", "event rate", "bytes / weight",
           "minutes (threads)", "CPU path", "git"]
# Deng et al. 2018, Table 2: MNIST 99.32 %, reported as the best test-set epoch of a 4000-epoch run.
PAPER = ["GXNOR-Net paper", "adam", "1", "0.5", "0", "running", "4000", "10000", "50000", "-", "-", "-",
         "99.32 (as published)", "-", "-", "-", "-", "GPU", "-"]


def render(path: pathlib.Path = CSV) -> str:
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["dataset"] != "mnist":
                continue
            rows.append([r["recipe"], r["base"], f"{float(r['r']):g}", f"{float(r['a']):g}", r["augment_px"],
                         r["bn"], r["epochs"], r["batch"], r["train_images"], r["seed"], r["final_test"],
                         r["best_val_test"] or "-", r["best_test"], r["input_sparsity"], r["event_rate"],
                         r["bytes_per_weight"], f"{r['minutes']} ({r['threads']})", r["cpu_isa"], r["git"]])
    return tabulate([*rows, PAPER], headers=HEADERS, tablefmt="github", disable_numparse=True)


def readme_table(readme: pathlib.Path) -> str:
    """The text between the README's markers."""
    text = readme.read_text()
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv", type=pathlib.Path, default=CSV)
    ap.add_argument("--readme", type=pathlib.Path, default=None)
    args = ap.parse_args()
    table = render(args.csv)
    print(table)
    if args.readme:
        text = args.readme.read_text()
        a, b = text.index(BEGIN) + len(BEGIN), text.index(END)
        args.readme.write_text(text[:a] + "\n" + table + "\n" + text[b:])


if __name__ == "__main__":
    main()
