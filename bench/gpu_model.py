"""A throughput model of the GEMM / conv kernels from their compiled SASS: a prediction, not a measurement.

    python bench/gpu_model.py          (CSV: bench/results/gpu_model.csv)

For each kernel (every Triton GEMM / conv configuration compiled ahead of time for sm_80 and sm_90,
and the native library's CUDA kernels) the hot loop is the backward branch whose body holds the
most MAC-carrying instructions (POPC, IMMA, IGMMA, HMMA, FFMA). Its instructions are counted per
warp and class; each class has a per-SM issue rate (constants below); the loop's steady-state
rate is set by the slowest class or by the 4 warp-instructions per clock an SM issues. MACs per
warp-iteration come from the tile shape. The DRAM roofline (2-bit operands, int32 output) caps
memory-bound shapes. Not modelled: latency and occupancy, shared-memory bank conflicts, the MMA
wait each iteration, tails beyond the idle rows of a partly filled M tile: real kernels run at or
below these figures.

Constants (per SM per clock, in thread operations; CUDA C++ Programming Guide, "Throughput of
Native Arithmetic Instructions", compute capability 8.0 / 9.0):
  fp32 add, mul, fma 64 / 128; 32-bit integer add, logic, shift, compare, min/max, multiply-add 64;
  population count 16; conversions 16; warp shuffle 32; shared-memory load/store one warp per clock.
Tensor cores and clocks from the A100 and H100 (SXM) datasheets: dense int8 624 / 1979 TOPS, bf16
312 / 989 TFLOPS, 108 / 132 SMs at 1.41 / 1.83 GHz (the clocks the datasheet peaks use), DRAM
2.04 / 3.35 TB/s. cuBLAS is assumed to reach 75 % of the dense peaks.
"""

from __future__ import annotations

import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent.parent))
from common import emit  # noqa: E402

GPUS = {  # sm, SMs, GHz, dense int8 / bf16 MACs per clock per SM, DRAM B/s
    "A100 SXM": dict(sm=80, sms=108, ghz=1.41, int8=2048, bf16=1024, dram=2.04e12, fp32=64),
    "H100 SXM": dict(sm=90, sms=132, ghz=1.83, int8=4096, bf16=2048, dram=3.35e12, fp32=128),
}
CUBLAS = 0.75
INT_OPS = ("IADD3", "IADD", "LOP3", "SHF", "ISETP", "IMNMX", "VIMNMX", "IMAD", "LEA", "SEL", "PRMT", "MOV", "SGXT",
           "BMSK", "IABS", "FLO", "BREV", "LOP")
MAC_CLASSES = ("POPC", "IMMA", "IGMMA", "HMMA", "HGMMA", "FFMA")
_INSTR = re.compile(r"^\s*/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*)((?:\.[A-Z0-9_x]+)*)\s*([^;]*);")


def parse(sass: str) -> list[tuple[int, str, str, str]]:
    """(address, opcode, modifiers, operands) of each instruction."""
    out = []
    for line in sass.splitlines():
        m = _INSTR.match(line)
        if m:
            out.append((int(m[1], 16), m[2], m[3], m[4]))
    return out


def hot_loop(instrs) -> list[tuple[int, str, str, str]]:
    """The body of the backward branch holding the most MAC-carrying instructions."""
    best, best_n = [], -1
    for addr, op, _, args in instrs:
        m = re.match(r"0x([0-9a-f]+)", args.strip()) if op == "BRA" else None
        if not m or int(m[1], 16) >= addr:
            continue
        body = [i for i in instrs if int(m[1], 16) <= i[0] <= addr]
        n = sum(1 for i in body if i[1] in MAC_CLASSES)
        if n > best_n:
            best, best_n = body, n
    return best


def _rate(op: str, mods: str, gpu: dict) -> tuple[str, float]:
    """(pipe, warp-instructions per clock per SM) of one instruction."""
    if op in ("IMMA", "IGMMA", "HMMA", "HGMMA"):
        return "tensor", 1.0  # counted in MACs instead (mma_macs)
    if op == "POPC":
        return "popc", 16 / 32
    if op in ("FFMA", "FADD", "FMUL", "FMNMX"):
        return "fp32", gpu["fp32"] / 32
    if op in ("I2F", "F2I", "I2FP", "F2IP", "FRND"):
        return "conv", 16 / 32
    if op in ("SHFL",):
        return "shfl", 1.0
    if op in ("LDS", "STS", "LDSM", "LDGSTS"):
        return "shared", 1.0
    if op in INT_OPS:
        return "int", 64 / 32
    return "other", 4.0  # loads, branches, barriers: issue slots only


def mma_macs(op: str, mods: str) -> int:
    """MACs per warp of one tensor-core instruction (IGMMA: a quarter of its warpgroup's)."""
    m = re.search(r"\.(\d+)x(\d+)x(\d+)", mods)
    if op in ("IGMMA", "HGMMA") and m:
        return int(m[1]) * int(m[2]) * int(m[3]) // 4
    shapes = {"16832": 16 * 8 * 32, "16816": 16 * 8 * 16, "8816": 8 * 8 * 16, "1688": 16 * 8 * 8, "884": 8 * 8 * 4}
    first = mods.split(".")[1] if mods.count(".") else ""
    return shapes.get(first, 16 * 8 * 32)  # IMMA.16832: m16 n8 k32


def predict(body, macs_per_warp_iter: float, gpu: dict) -> dict:
    """Steady-state T MAC/s of a loop whose warp-iteration does macs_per_warp_iter MACs."""
    load: dict[str, float] = {}
    tensor_macs = 0
    for _, op, mods, _ in body:
        pipe, r = _rate(op, mods, gpu)
        if pipe == "tensor":
            tensor_macs += mma_macs(op, mods)
            continue
        load[pipe] = load.get(pipe, 0.0) + 1.0 / r  # clocks of the SM's pipe per warp-iteration
    load["issue"] = len(body) / 4.0
    if tensor_macs:
        load["tensor"] = tensor_macs / (gpu["int8"] if any(i[1] in ("IMMA", "IGMMA") for i in body) else gpu["bf16"])
    bound = max(load, key=load.get)
    clocks = load[bound]
    tmacs = macs_per_warp_iter / clocks * gpu["sms"] * gpu["ghz"] * 1e9 / 1e12
    return {"bound": bound, "T MAC/s": tmacs, "instr/iter": len(body)}


def _triton_kernels():
    from gxnor_cuda._triton import aot, launch

    cfgs = [(i, c) for i, c in enumerate(launch.configs()) if c[0] in ("xnor_popcount", "xnor_dot", "xnor_conv")
            and not c[3].get("HAS_SCALE") and not c[3].get("HAS_BIAS")]
    reqs = [(i, gpu["sm"], None, {}) for i, _ in cfgs for gpu in GPUS.values()]
    for (_, (name, k, _, const)), comp in zip([c for c in cfgs for _ in GPUS], aot.compile_many(reqs), strict=True):
        bm, bn = const["BM"], const["BN"]
        kper = const.get("BW", 2) * 32  # values per loop iteration (dot: 2 words = 64)
        per_warp = bm * bn * kper / k.num_warps
        yield f"triton {name} {bm}x{bn}" + (" pack" if const.get("PACK") else ""), comp.arch, comp.sass, per_warp, bm


def _cuda_kernels():
    try:
        from tests import sass
    except ImportError:
        return
    if sass.skip_reason():
        return
    for (arch, name), text in sass.kernels().items():
        if "xnor_gemm_kernel" in name or "xnor_conv2d_kernel" in name:
            # 64x64 C tile per 256-thread block, K chunks of 8 word pairs (256 values) per iteration
            yield f"cuda {'gemm' if 'gemm' in name else 'conv'} 64x64", int(arch[3:]), text, 64 * 64 * 256 / 8, 64


def main() -> None:
    rows = []
    for name, arch, text, per_warp, bm in [*_triton_kernels(), *_cuda_kernels()]:
        body = hot_loop(parse(text))
        for gname, gpu in GPUS.items():
            if gpu["sm"] != arch:
                continue
            p = predict(body, per_warp, gpu)
            bf16 = CUBLAS * gpu["bf16"] * gpu["sms"] * gpu["ghz"] * 1e9 / 1e12
            i8 = CUBLAS * gpu["int8"] * gpu["sms"] * gpu["ghz"] * 1e9 / 1e12
            for n in (16, 4096, 8192):  # M = n, N = K = 8192 (n = 16: memory-bound)
                bytes_per_mac = ((n + 8192) * 8192 / 4 + 4 * n * 8192) / (n * 8192 * 8192)
                dram = gpu["dram"] / bytes_per_mac / 1e12
                t = min(p["T MAC/s"] * n / (-(-n // bm) * bm), dram)  # rows of a partly filled tile idle
                rows.append({"kernel": name, "GPU": gname, "shape": f"{n}x8192x8192", "bound": p["bound"]
                             if t < dram else "DRAM", "instr/iter": p["instr/iter"], "model T MAC/s": t,
                             "vs cuBLAS bf16": t / bf16, "vs cuBLAS int8": t / i8})
    emit("gpu_model", rows, ["kernel", "GPU", "shape", "bound", "instr/iter", "model T MAC/s", "vs cuBLAS bf16",
                             "vs cuBLAS int8"])
    print("A model from the SASS, not a measurement (bench/gpu_model.py docstring: what it leaves out).")


if __name__ == "__main__":
    main()
