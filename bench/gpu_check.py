"""``make gpu-check``: everything that needs a GPU, in one command of a few minutes.

Runs with the Python it is started by (a GPU machine's own stack), after ``make gpu-check`` has
built the extension for the local architecture only: the environment report, the test suite with
the CUDA and Triton backends required (the tests skipped on CPU-only machines run here), the GPU
benchmarks (bench_gpu.py, CSV), one MNIST epoch on the GPU (random MNIST-shaped data when the
files are not on the machine, labelled so), and one summary table.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

from tabulate import tabulate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def step(name: str, cmd: list[str], timeout: int, env=None) -> tuple[str, str, float, str]:
    t0 = time.time()
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                           env={**os.environ, **(env or {})})
        out, ok = p.stdout + p.stderr, p.returncode == 0
    except subprocess.TimeoutExpired as e:
        out, ok = f"{e.stdout or ''}\ntimed out after {timeout} s", False
    print(f"==== {name} ====\n{out[-6000:]}", flush=True)
    return name, "ok" if ok else "FAILED", time.time() - t0, out


def main() -> int:
    py = sys.executable
    results = [step("environment", [py, "-m", "gxnor_cuda"], 120)]
    name, status, secs, out = step("GPU tests", [py, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests"],
                                   300, {"GXNOR_REQUIRE_BACKENDS": "cpp,cuda,triton"})
    m = re.search(r"(\d+ passed.*?) in ", out)
    results.append((name, status, secs, m[1] if m else out.strip().splitlines()[-1:]))
    results.append(step("GPU benchmarks", [py, "bench/bench_gpu.py"], 150)[:3])
    results.append(step("one MNIST epoch on the GPU", [py, "-m", "gxnor_cuda.train", "--dataset", "mnist",
                                                       "--epochs", "1", "--device", "cuda", "--no-float-twin",
                                                       "--out", "runs/gpu-check"], 150)[:3])
    print(tabulate([r[:3] + (r[3] if len(r) > 3 else "",) for r in results],
                   headers=["step", "result", "seconds", "detail"], floatfmt=".0f"))
    return 0 if all(r[1] == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
