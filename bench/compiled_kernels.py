"""Registers, spills and hot-loop instruction counts of every Triton launch configuration, compiled
ahead of time for sm_80 and sm_90 (no GPU needed), and of the native library's CUDA kernels.

    python bench/compiled_kernels.py      (CSV: bench/results/compiled_kernels.csv)

A static read of the machine code, not a measurement of speed.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent.parent))  # tests/sass.py reads the fatbin
from common import emit  # noqa: E402

from gxnor_cuda._triton import aot, launch  # noqa: E402

CLASSES = ("POPC", "IMMA", "IGMMA", "HMMA", "FFMA", "FMUL", "FADD", "IMAD", "LOP3")


def _triton_rows():
    cfgs = list(launch.configs())
    reqs = [(i, arch, None, {}) for i, c in enumerate(cfgs) for arch in (80, 90) if launch.runs_on(c[1], c[3], arch)]
    rows = []
    for (i, arch, _, _), c in zip(reqs, aot.compile_many(reqs), strict=True):
        name, k, sig, const = cfgs[i]
        flags = ",".join(f"{a}={int(v) if isinstance(v, bool) else v}" for a, v in const.items())
        dt = "/".join(v.strip("*") for a, v in sig.items() if a in ("x_ptr", "g_ptr", "out_ptr", "offset"))
        rows.append({"kernel": f"triton {name}", "config": f"{dt} {flags}".strip(), "arch": f"sm_{arch}",
                     "registers": c.registers, "spill bytes": c.local_bytes, "fma in PTX": len(c.fused_fp_ops()),
                     **{cl: c.count(cl) for cl in CLASSES}})
    return rows


def _native_rows():
    try:
        from tests import sass
    except ImportError:
        return []
    if sass.skip_reason():
        return []
    res = subprocess.run([sass.cuobjdump(), "-res-usage", sass.library_path()], capture_output=True, text=True).stdout
    usage = dict(re.findall(r"Function (\S+):\s+REG:(\d+)", res))
    rows = []
    for (arch, name), text in sass.kernels().items():
        short = re.sub(r"^_ZN5gxnor4cuda\d+", "", name)[:40]
        rows.append({"kernel": f"cuda {short}", "config": "", "arch": arch, "registers": int(usage.get(name, -1)),
                     "spill bytes": text.count("STL") + text.count("LDL"), "fma in PTX": "",
                     **{cl: len(re.findall(rf"\b{cl}\b", text)) for cl in CLASSES}})
    return rows


def main() -> None:
    rows = _triton_rows() + _native_rows()
    emit("compiled_kernels", rows, ["kernel", "config", "arch", "registers", "spill bytes", "fma in PTX", *CLASSES])


if __name__ == "__main__":
    main()
