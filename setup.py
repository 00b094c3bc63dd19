"""Builds gxnor_cuda with its native extension gxnor_cuda._C.

- CUDA extension (sm_80, sm_90) when torch is a CUDA build and nvcc is found;
- CPU-only extension otherwise (or with GXNOR_NO_CUDA=1);
- no native code at all with GXNOR_NO_NATIVE=1 (reference and Triton backends only).
Prints which it builds and why. Install with ``pip install --no-build-isolation -e .`` so the
build uses the torch already installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))


def say(msg: str) -> None:
    print(f"[gxnor_cuda setup] {msg}", file=sys.stderr, flush=True)


def find_cuda_home() -> str | None:
    for cand in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if cand and os.path.exists(os.path.join(cand, "bin", "nvcc")):
            return cand
    nvcc = shutil.which("nvcc")
    if nvcc:
        home = os.path.dirname(os.path.dirname(os.path.realpath(nvcc)))
        if os.path.exists(os.path.join(home, "include", "cuda_runtime.h")):
            return home
    return None


def native_extensions():
    if os.environ.get("GXNOR_NO_NATIVE") == "1":
        say("GXNOR_NO_NATIVE=1: building no native code (reference and Triton backends only)")
        return [], {}
    try:
        import torch
    except ImportError:
        say("torch is not importable in the build environment: building no native code "
            "(use pip install --no-build-isolation)")
        return [], {}
    cuda_home = find_cuda_home()
    want_cuda = os.environ.get("GXNOR_NO_CUDA") != "1"
    why = ""
    if not want_cuda:
        why = "GXNOR_NO_CUDA=1"
    elif torch.version.cuda is None:
        why = f"torch {torch.__version__} is a CPU-only build"
    elif cuda_home is None:
        why = "nvcc not found (set CUDA_HOME)"
    use_cuda = not why
    if use_cuda:
        os.environ["CUDA_HOME"] = cuda_home
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")  # PTX: loads on newer GPUs
    from torch.utils import cpp_extension as ce

    cxx = ["-O3", "-std=c++20", "-fvisibility=hidden", "-fopenmp", "-ffp-contract=off"]
    # -fopenmp: at::parallel_for is OpenMP-inline; -ffp-contract=off: DST rounds like the other backends
    sources = ["csrc/bind/module.cpp", "csrc/bind/cpu_ops.cpp", *sorted(glob.glob("csrc/bind/cpu_*.cpp"))]
    sources = list(dict.fromkeys(sources))
    if use_cuda:
        archs = os.environ["TORCH_CUDA_ARCH_LIST"]
        arch_tag = ",".join("sm_" + a.replace(".", "").replace("+PTX", "") for a in archs.split(";"))
        say(f"building the CUDA extension ({arch_tag}) with nvcc from {cuda_home}")
        sources += ["csrc/bind/cuda_ops.cpp", *sorted(glob.glob("csrc/gxnor/cuda/*.cu"))]
        inc = []
        try:
            import nvidia

            for base in nvidia.__path__:
                inc += glob.glob(os.path.join(base, "cu*", "include"))
        except ImportError:
            pass
        # --fmad=false: float epilogues and DST round like the C++ and Triton kernels (no FMA contraction)
        nvcc = ["-O3", "-std=c++20", "--expt-relaxed-constexpr", "-lineinfo", "--fmad=false",
                f'-DGXNOR_CUDA_ARCHS="{arch_tag}"']
        ext = ce.CUDAExtension(
            "gxnor_cuda._C", sources, include_dirs=inc,
            extra_compile_args={"cxx": cxx, "nvcc": nvcc}, extra_link_args=["-fopenmp"],
        )
    else:
        say(f"building the CPU-only extension: {why}")
        ext = ce.CppExtension("gxnor_cuda._C", sources, extra_compile_args={"cxx": cxx},
                              extra_link_args=["-fopenmp"])
    return [ext], {"build_ext": ce.BuildExtension.with_options(use_ninja=shutil.which("ninja") is not None)}


ext_modules, cmdclass = native_extensions()

setup(
    name="gxnor_cuda",
    version="0.1.0",
    packages=find_packages(include=["gxnor_cuda", "gxnor_cuda.*"]),
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
