"""Reads the SASS of the built CUDA kernels with cuobjdump (Triton ships one)."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess

import gxnor_cuda
from gxnor_cuda import _backend


def cuobjdump() -> str | None:
    try:
        import triton

        cand = pathlib.Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
        if cand.exists():
            return str(cand)
    except ImportError:
        pass
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home and (pathlib.Path(home) / "bin" / "cuobjdump").exists():
            return str(pathlib.Path(home) / "bin" / "cuobjdump")
    return shutil.which("cuobjdump")


def skip_reason() -> str | None:
    if not _backend.STATUS.get("cpp", (False, ""))[0]:
        return "no native library loaded, so no CUDA objects to read"
    if "cuda_archs" not in _backend.native_info():
        return "the native library is a CPU-only build: no CUDA objects to read"
    if cuobjdump() is None:
        return "no cuobjdump found (neither Triton's nor CUDA_HOME's)"
    return None


def library_path() -> str:
    return next(str(p) for p in pathlib.Path(gxnor_cuda.__file__).parent.glob("_C*.so"))


def kernels() -> dict[tuple[str, str], str]:
    """(arch, mangled name) -> SASS text of each kernel in the built library."""
    out = subprocess.run([cuobjdump(), "-sass", library_path()], check=True, capture_output=True, text=True).stdout
    result: dict[tuple[str, str], str] = {}
    arch = "?"
    cur = None
    for line in out.splitlines():
        m = re.match(r"\s*arch = (sm_\d+)", line)
        if m:
            arch = m[1]
        m = re.match(r"\s*Function : (\S+)", line)
        if m:
            cur = (arch, m[1])
            result[cur] = ""
        elif cur is not None:
            result[cur] += line + "\n"
    return result
