"""``python -m gxnor_cuda``: environment report and a one-op smoke check per backend."""

from __future__ import annotations

import argparse
import platform

import torch
from tabulate import tabulate

from . import _backend, reference
from . import functional as F


def _smoke(backend: str) -> str:
    dev = "cuda" if backend == "cuda" or (backend == "triton" and torch.cuda.is_available()) else "cpu"
    x = torch.randint(-1, 2, (3, 100), device=dev).float()
    p = F.pack_ternary(x, backend=backend)
    ok = torch.equal(p.cpu(), reference.pack_ternary(x.cpu())) and torch.equal(
        F.unpack_ternary(p, 100, torch.float32, backend=backend).cpu(), x.cpu()
    )
    if not ok:
        raise SystemExit(f"smoke check FAILED on backend {backend}: pack/unpack differs from reference")
    return "pack/unpack round trip == reference"


def report() -> str:
    lines = [f"gxnor_cuda on {platform.machine()} / Python {platform.python_version()}"]
    try:
        import triton

        tv = triton.__version__
    except ImportError:
        tv = "not installed"
    lines.append(f"torch {torch.__version__} (CUDA build: {torch.version.cuda}), triton {tv}, "
                 f"CUDA device: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    info = _backend.native_info()
    if info:
        lines.append(f"CPU ISA in use: {info['cpu_isa']} (detected: {info['detected_cpu_isa']}; "
                     "choices amx_int8 > avx512_vpopcntdq > avx2 > scalar, override with GXNOR_CPU_ISA)")
        lines.append(f"compiled CUDA architectures: {info.get('cuda_archs', 'none (CPU-only build)')}")
    rows = []
    for b in _backend.BACKENDS:
        ok, why = _backend.STATUS.get(b, (False, "?"))
        smoke = _smoke(b) if ok else "-"
        rows.append([b, "yes" if ok else "no", why, smoke])
    lines.append(tabulate(rows, headers=["backend", "loaded", "why", "smoke check"]))
    lines.append(f"dispatch: CPU tensors -> {_backend.STATUS['dispatch_cpu'][1]}, "
                 f"CUDA tensors -> {_backend.STATUS['dispatch_cuda'][1]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="python -m gxnor_cuda", description=__doc__).parse_args(argv)
    print(report())


if __name__ == "__main__":
    main()
