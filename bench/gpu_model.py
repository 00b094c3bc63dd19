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
312 / 989 TFLOPS, binary 4992 TOPS on the A100 (none listed for the H100: the binary kernel is not
modelled there), 108 / 132 SMs at 1.41 / 1.83 GHz (the clocks the datasheet peaks use), DRAM
2.04 / 3.35 TB/s. cuBLAS is assumed to reach 75 % of the dense peaks.
"""

from __future__ import annotations

import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
sys.path.insert(1, str(pathlib.Path(__file__).resolve().parent.parent))
from common import emit  # noqa: E402

from gxnor_cuda._triton.aot import INT_OPS, MAC_CLASSES, hot_loop, parse  # noqa: E402, F401

GPUS = {  # sm, SMs, GHz, dense int8 / bf16 / binary MACs per clock per SM, DRAM B/s
    "A100 SXM": dict(sm=80, sms=108, ghz=1.41, int8=2048, bf16=1024, b1=16384, dram=2.04e12, fp32=64),
    "H100 SXM": dict(sm=90, sms=132, ghz=1.83, int8=4096, bf16=2048, b1=0, dram=3.35e12, fp32=128),
}
CUBLAS = 0.75
def _rate(op: str, mods: str, gpu: dict) -> tuple[str, float]:
    """(pipe, warp-instructions per clock per SM) of one instruction."""
    if op in ("IMMA", "IGMMA", "HMMA", "HGMMA", "BMMA"):
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
    shapes = {"168256": 16 * 8 * 256,  # BMMA: bit products
              "16832": 16 * 8 * 32, "16816": 16 * 8 * 16, "8816": 8 * 8 * 16, "1688": 16 * 8 * 8, "884": 8 * 8 * 4}
    first = mods.split(".")[1] if mods.count(".") else ""
    return shapes.get(first, 16 * 8 * 32)  # IMMA.16832: m16 n8 k32


def _tensor_rate(body, gpu: dict) -> float:
    """Dense MACs per clock per SM of the loop's tensor-core instructions (binary: bit products)."""
    ops = {i[1] for i in body}
    return gpu["b1"] if "BMMA" in ops else gpu["int8"] if ops & {"IMMA", "IGMMA"} else gpu["bf16"]


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
        load["tensor"] = tensor_macs / _tensor_rate(body, gpu)
    bound = max(load, key=load.get)
    clocks = load[bound]
    tmacs = macs_per_warp_iter / clocks * gpu["sms"] * gpu["ghz"] * 1e9 / 1e12
    return {"bound": bound, "T MAC/s": tmacs, "instr/iter": len(body)}


def smem_bytes(op: str, mods: str, args: str) -> int:
    """Bytes one thread moves through shared memory with this instruction (0 for other instructions)."""
    if op not in ("LDS", "STS", "LDSM", "LDGSTS") or args.startswith("RZ, [RZ]"):
        return 0
    if op == "LDSM":  # .4: four 8x8 matrices of 16-bit elements, one register each per thread
        n = re.search(r"\.(\d)$", mods)
        return 4 * int(n[1]) if n else 4
    for width, b in ((".128", 16), (".64", 8), (".U16", 2), (".S16", 2), (".U8", 1), (".S8", 1)):
        if width in mods:
            return b
    return 4


def wgmma_smem_bytes(op: str, mods: str, args: str) -> int:
    """Bytes one warpgroup-wide IGMMA / HGMMA reads from shared memory (B always; A unless in registers)."""
    m = re.search(r"\.(\d+)x(\d+)x(\d+)", mods)
    if op not in ("IGMMA", "HGMMA") or not m:
        return 0
    elem = 1 if op == "IGMMA" else 2
    a_in_regs = re.match(r"\s*R\d+,\s*R\d+", args) is not None
    return (int(m[2]) + (0 if a_in_regs else int(m[1]))) * int(m[3]) * elem


def predict_full(body, cta_macs: float, warps: int, regs: int, gpu: dict) -> dict:
    """predict() plus shared-memory traffic (128 B per SM per clock: cp.async writes, loads and stores,
    ldmatrix, wgmma operand reads) and serialisation: a loop that waits for all its wgmma each
    iteration (WARPGROUP.DEPBAR ... 0x0) runs its MMA and the rest of the iteration one after the
    other, unless a second resident CTA (registers permitting) fills the gap."""
    per_warp = {}
    for _, op, mods, _ in body:
        pipe, r = _rate(op, mods, gpu)
        if pipe not in ("tensor", "shared"):
            per_warp[pipe] = per_warp.get(pipe, 0.0) + 1.0 / r
    rest = {k: v * warps for k, v in per_warp.items()}  # SM clocks per CTA iteration
    rest["issue"] = len(body) * warps / 4.0
    rest["smem"] = sum(smem_bytes(op, mods, args) for _, op, mods, args in body) * 32 * warps / 128
    mma = {"tensor": 0.0, "wgmma smem": 0.0}
    if any(op in ("IMMA", "IGMMA", "HMMA", "HGMMA", "BMMA") for _, op, _, _ in body):
        # a ternary MAC is four bit products on the binary tensor cores (pa.pb, na.nb, pa.~nb, na.~pb)
        mma["tensor"] = cta_macs * (4 if any(i[1] == "BMMA" for i in body) else 1) / _tensor_rate(body, gpu)
        mma["wgmma smem"] = sum(wgmma_smem_bytes(op, mods, args) for _, op, mods, args in body) * warps / 4 / 128
    serial = any(op == "WARPGROUP" and "DEPBAR" in mods and args.strip().endswith("0x0") for _, op, mods, args in body)
    ctas = max(1, min(65536 // max(1, regs * warps * 32), 64 // warps))
    t_rest, t_mma = max(rest.values()), max(mma.values())
    if serial:
        clocks = max(t_mma, t_rest, (t_mma + t_rest) / ctas)
        bound = "MMA wait + " + max(rest, key=rest.get) if clocks > max(t_mma, t_rest) else max(
            {**rest, **mma}, key={**rest, **mma}.get)
    else:
        allp = {**rest, "smem": rest["smem"] + mma["wgmma smem"], "tensor": mma["tensor"]}
        bound = max(allp, key=allp.get)
        clocks = allp[bound]
    return {"bound": bound, "T MAC/s": cta_macs / clocks * gpu["sms"] * gpu["ghz"] * 1e9 / 1e12,
            "CTAs/SM": ctas, "serial": serial}


def _triton_kernels():
    from gxnor_cuda._triton import aot, launch

    names = ("xnor_popcount", "xnor_dot", "xnor_conv", "xnor_tc", "xnor_tc_skinny", "xnor_tc_conv", "xnor_tc_conv_pool")
    all_cfgs = list(launch.configs())
    cfgs = [(i, c) for i, c in enumerate(all_cfgs) if c[0] in names and not c[3].get("HAS_SCALE")
            and not c[3].get("HAS_BIAS")]
    reqs = [(i, gpu["sm"], None, {}) for i, c in cfgs for gpu in GPUS.values() if launch.runs_on(c[1], c[3], gpu["sm"])]
    for (i, _, _, _), comp in zip(reqs, aot.compile_many(reqs), strict=True):
        name, k, _, const = all_cfgs[i]
        bm, bn = const["BM"], const["BN"]
        kper = 16 * const["BT"] if "BT" in const else const.get("BW", 2) * 32  # values per loop iteration
        yield {"name": f"triton {name} {bm}x{bn}" + (" pack" if const.get("PACK") else ""), "arch": comp.arch,
               "sass": comp.sass, "cta_macs": bm * bn * kper, "warps": k.num_warps, "regs": comp.registers, "bm": bm,
               "bn": bn}


def _cuda_kernels():
    try:
        from tests import sass
    except ImportError:
        return
    if sass.skip_reason():
        return
    for (arch, name), text in sass.kernels().items():
        if "ternary_bf16_gemm_kernel" in name:  # 128x128 C tile per 128-thread block, K step 64 values
            yield {"name": "cuda bf16 x ternary 128x128 (mma.sync)", "arch": int(arch[3:]), "sass": text,
                   "cta_macs": 128 * 128 * 64, "warps": 4, "regs": 0, "bm": 128, "bn": 128, "float": True}
        elif "xnor_b1_gemm_kernel" in name:  # 128x128 C tile per 256-thread block, K step 256 values
            yield {"name": "cuda b1 gemm 128x128 (mma.sync .b1)", "arch": int(arch[3:]), "sass": text,
                   "cta_macs": 128 * 128 * 256, "warps": 8, "regs": 0, "bm": 128, "bn": 128}
        elif "xnor_tc_conv2d_kernel" in name:  # the same tile and K step, K = (tap, channel)
            yield {"name": "cuda tc_conv 128x128 (mma.sync)", "arch": int(arch[3:]), "sass": text,
                   "cta_macs": 128 * 128 * 128, "warps": 4, "regs": 0, "bm": 128, "bn": 128}
        elif "xnor_tc_gemm_kernel" in name:  # 128x128 C tile per 128-thread block, K step 128 values
            yield {"name": "cuda tc gemm 128x128 (mma.sync)", "arch": int(arch[3:]), "sass": text,
                   "cta_macs": 128 * 128 * 128, "warps": 4, "regs": 0, "bm": 128, "bn": 128}
        elif "xnor_gemm_kernel" in name or "xnor_conv2d_kernel" in name:
            # 64x64 C tile per 256-thread block, K chunks of 8 word pairs (256 values) per iteration
            yield {"name": f"cuda {'gemm' if 'gemm' in name else 'conv'} 64x64", "arch": int(arch[3:]), "sass": text,
                   "cta_macs": 64 * 64 * 256, "warps": 8, "regs": 0, "bm": 64}  # registers matter to wgmma loops only


def cublas_t_macs(gpu: dict) -> tuple[float, float]:
    """cuBLAS bf16 and int8 in T MAC/s at CUBLAS of the dense peaks."""
    clock = gpu["sms"] * gpu["ghz"] * 1e9 / 1e12
    return CUBLAS * gpu["bf16"] * clock, CUBLAS * gpu["int8"] * clock


def rows_for(kern: dict, gpu_name: str, gpu: dict, sizes=(16, 4096, 8192)) -> list[dict]:
    body = hot_loop(parse(kern["sass"]))
    p = predict(body, kern["cta_macs"] / kern["warps"], gpu)
    f = predict_full(body, kern["cta_macs"], kern["warps"], kern["regs"], gpu)
    bf16, i8 = cublas_t_macs(gpu)
    fl = kern.get("float", False)  # float x ternary: bf16 A and output, "of dense peak" of the bf16 peak
    out = []
    for n in sizes:  # M = n, N = K = 8192 (n = 16: memory-bound)
        if fl:
            bytes_per_mac = (2 * n * 8192 + 8192 * 8192 / 4 + 2 * n * 8192) / (n * 8192 * 8192)
        else:
            bytes_per_mac = ((n + 8192) * 8192 / 4 + 4 * n * 8192) / (n * 8192 * 8192)
        dram = gpu["dram"] / bytes_per_mac / 1e12
        fill = n / (-(-n // kern["bm"]) * kern["bm"])  # rows of a partly filled tile idle
        t_pipes, t = min(p["T MAC/s"] * fill, dram), min(f["T MAC/s"] * fill, dram)
        out.append({"kernel": kern["name"], "GPU": gpu_name, "shape": f"{n}x8192x8192",
                    "bound": f["bound"] if t < dram else "DRAM", "instr/iter": p["instr/iter"],
                    "CTAs/SM": f["CTAs/SM"], "pipes only T MAC/s": t_pipes, "model T MAC/s": t,
                    "of dense peak": t / (bf16 if fl else i8) * CUBLAS, "vs cuBLAS bf16": t / bf16,
                    "vs cuBLAS int8": "" if fl else t / i8})
    return out


# The CIFAR-10 VGG network's ternary-input convs (C -> O, 3x3, padding 1, output side), batch 256
CIFAR_CONVS = [(128, 128, 32), (128, 256, 16), (256, 256, 16), (256, 512, 8), (512, 512, 8)]


def _conv_fill(c: int, o: int, bn: int) -> float:
    """The share of a conv's tiles doing work: C padded to the 128-value K step, O to the tile's columns."""
    return c / (128 * -(-c // 128)) * o / (bn * -(-o // bn))


def conv_rows(kern: dict, gpu_name: str, gpu: dict) -> list[dict]:
    """The implicit-GEMM conv's loop on the CIFAR VGG layers: K pads C to the 128-value step, the
    output channels fill the tile's columns; the per-tap address setup is not counted."""
    body = hot_loop(parse(kern["sass"]))
    f = predict_full(body, kern["cta_macs"], kern["warps"], kern["regs"], gpu)
    pipes = predict(body, kern["cta_macs"] / kern["warps"], gpu)["T MAC/s"]
    bf16, i8 = cublas_t_macs(gpu)
    out = []
    for c, o, hw in CIFAR_CONVS:
        fill = _conv_fill(c, o, kern["bn"])
        t = f["T MAC/s"] * fill
        out.append({"kernel": kern["name"], "GPU": gpu_name, "shape": f"conv {c}->{o} 3x3 {hw}x{hw} batch 256",
                    "bound": f["bound"], "instr/iter": len(body), "CTAs/SM": f["CTAs/SM"],
                    "pipes only T MAC/s": pipes * fill,
                    "model T MAC/s": t, "of dense peak": t / i8 * CUBLAS, "vs cuBLAS bf16": t / bf16,
                    "vs cuBLAS int8": t / i8})
    return out


# The CIFAR network's pooled convs (the second of each block): conv, then the 2x2 max-pool
CIFAR_POOLED = [(128, 128, 32), (256, 256, 16), (512, 512, 8)]


def xnor_conv_pool_rows(kern: dict, gpu_name: str, gpu: dict, batch: int = 256) -> list[dict]:
    """The tensor-core conv with the max-pool in its epilogue (xnor_tc_conv_pool) on the CIFAR pooled
    layers, against the same conv loop writing its float32 output and a max_pool2d pass reading it
    and writing maxima and int64 indices. The conv loop's rate is conv_rows'; DRAM bytes of the
    output side are added one pass after the other (the operands' reads are small and not counted)."""
    body = hot_loop(parse(kern["sass"]))
    f = predict_full(body, kern["cta_macs"], kern["warps"], kern["regs"], gpu)
    bf16, i8 = cublas_t_macs(gpu)
    out = []
    for c, o, hw in CIFAR_POOLED:
        fill = _conv_fill(c, o, kern["bn"])
        macs, outs = batch * hw * hw * c * o * 9, batch * hw * hw * o
        t_loop = macs / (f["T MAC/s"] * fill * 1e12)
        for name, b in ((kern["name"] + " (pool in the epilogue)", outs / 4 * (4 + 1)),
                        ("triton xnor_tc_conv + max_pool2d (two passes)", outs * 4 + outs * 4 + outs / 4 * (4 + 8))):
            t = macs / (t_loop + b / gpu["dram"]) / 1e12
            out.append({"kernel": name, "GPU": gpu_name, "shape": f"conv {c}->{o} 3x3 {hw}x{hw} + pool, batch {batch}",
                        "bound": f["bound"] + " + output bytes", "instr/iter": len(body), "CTAs/SM": f["CTAs/SM"],
                        "pipes only T MAC/s": "", "model T MAC/s": t, "of dense peak": t / i8 * CUBLAS,
                        "vs cuBLAS bf16": t / bf16, "vs cuBLAS int8": t / i8})
    return out


def vendor_rows(gpu_name: str, gpu: dict, sizes=(16, 4096, 8192)) -> list[dict]:
    """The vendor route (gxnor_cuda/vendor.py): A decoded to int8 (reads M K / 4 bytes, writes M K; the
    weight B is decoded once per optimizer step and not counted), then cuBLASLt int8 at CUBLAS of
    its dense peak, the two one after the other."""
    peak = gpu["int8"] * gpu["sms"] * gpu["ghz"] * 1e9
    bf16 = cublas_t_macs(gpu)[0]
    out = []
    for n in sizes:
        macs = n * 8192 * 8192
        seconds = n * 8192 * 1.25 / gpu["dram"] + max(macs / (CUBLAS * peak), (n * 8192 + 8192 * 8192) / gpu["dram"])
        t = macs / seconds / 1e12
        out.append({"kernel": "vendor: decode A + torch._int_mm", "GPU": gpu_name, "shape": f"{n}x8192x8192",
                    "bound": "cuBLASLt int8 + decode pass", "instr/iter": "", "CTAs/SM": "",
                    "pipes only T MAC/s": "", "model T MAC/s": t, "of dense peak": t * 1e12 / peak,
                    "vs cuBLAS bf16": t / bf16, "vs cuBLAS int8": t * 1e12 / (CUBLAS * peak)})
    return out


def float_rows(gpu_name: str, gpu: dict, n: int = 8192) -> list[dict]:
    """Float x ternary on the GPU (ternary_matmul NT / NN: the forward of a float-input layer and
    dX = dY W; the conv grad-input likewise through cuDNN): the weight decoded to bf16 in one
    memory-bound pass (reads N K / 4 bytes, writes 2 N K), then cuBLAS bf16 at CUBLAS of its peak,
    one after the other. In "of dense peak" the fraction of the bf16 peak."""
    peak = gpu["bf16"] * gpu["sms"] * gpu["ghz"] * 1e9
    macs = n * n * n
    seconds = n * n * 2.25 / gpu["dram"] + macs / (CUBLAS * peak)
    t = macs / seconds / 1e12
    return [{"kernel": "vendor: W decoded to bf16 + cuBLAS bf16 (float x ternary)", "GPU": gpu_name,
             "shape": f"{n}x{n}x{n}", "bound": "cuBLAS bf16 + decode pass", "instr/iter": "", "CTAs/SM": "",
             "pipes only T MAC/s": "", "model T MAC/s": t, "of dense peak": t * 1e12 / peak,
             "vs cuBLAS bf16": t / cublas_t_macs(gpu)[0], "vs cuBLAS int8": ""}]


def conv_backward_rows(gpu_name: str, gpu: dict) -> list[dict]:
    """A ternary-input conv's backward on a GPU under bf16 autocast (autograd_conv.TernaryInputConv):
    the packed activations unpacked to bf16 (reads N H W C / 4 bytes, writes 2 N H W C), then one
    cuDNN call for grad-input and grad-weight (twice the forward's MACs) at CUBLAS of the bf16 peak;
    the weight's unpack is small and not counted. In "of dense peak" the fraction of the bf16 peak."""
    peak = gpu["bf16"] * gpu["sms"] * gpu["ghz"] * 1e9
    out = []
    for c, o, hw in CIFAR_CONVS:
        macs = 2 * 256 * hw * hw * c * o * 9
        seconds = 256 * hw * hw * c * 2.25 / gpu["dram"] + macs / (CUBLAS * peak)
        t = macs / seconds / 1e12
        out.append({"kernel": "vendor: activations unpacked to bf16 + cuDNN bf16 (conv backward)", "GPU": gpu_name,
                    "shape": f"conv {c}->{o} 3x3 {hw}x{hw} batch 256", "bound": "cuDNN bf16 + unpack pass",
                    "instr/iter": "", "CTAs/SM": "", "pipes only T MAC/s": "", "model T MAC/s": t,
                    "of dense peak": t * 1e12 / peak, "vs cuBLAS bf16": t / cublas_t_macs(gpu)[0],
                    "vs cuBLAS int8": ""})
    return out


# The MNIST network's first layer: 1 -> 32 channels, 5x5, 28x28 input, then the 2x2 max-pool; batch 1000
CONV1 = dict(n=1000, c=1, o=32, k=5, hw=28)


def conv_pool_rows() -> list[dict]:
    """The Triton conv + max-pool (gxnor::conv2d_maxpool2x2's GPU twin) on the MNIST first layer, and the
    unfused route it replaces: cuDNN's fp32 conv at CUBLAS of the fp32 peak, writing the conv output,
    then max_pool2d reading it and writing the maxima and int64 indices, one after the other. "of dense
    peak": of the fp32 FMA peak. The fused kernel's loop (one tap: four window positions' FMAs on a
    BP x BO tile) is capped by the DRAM bytes it moves (input read, maxima and 1-byte argmax written)."""
    from gxnor_cuda._triton import aot, launch

    i, (_, k, _, const) = next((i, c) for i, c in enumerate(launch.configs()) if c[0] == "conv_pool")
    n, c, o, kk, hw = CONV1["n"], CONV1["c"], CONV1["o"], CONV1["k"], CONV1["hw"]
    ho = hw - kk + 1
    macs = n * ho * ho * o * c * kk * kk
    shape = f"conv {c}->{o} {kk}x{kk} {hw}x{hw} + pool, batch {n}"
    x_b, conv_b, pool_b = 4 * n * c * hw * hw, 4 * n * o * ho * ho, n * o * (ho // 2) ** 2
    out = []
    comps = aot.compile_many([(i, gpu["sm"], None, {}) for gpu in GPUS.values()])
    for (gname, gpu), comp in zip(GPUS.items(), comps, strict=True):
        peak = gpu["fp32"] * gpu["sms"] * gpu["ghz"] * 1e9
        body = hot_loop(parse(comp.sass))
        p = predict(body, const["BP"] * const["BO"] * 4 / k.num_warps, gpu)
        dram = gpu["dram"] / ((x_b + 5 * pool_b) / macs) / 1e12
        t = min(p["T MAC/s"], dram)
        unfused_s = macs / (CUBLAS * peak) + (x_b + conv_b) / gpu["dram"] + (conv_b + 4 * pool_b + 8 * pool_b) / gpu[
            "dram"]
        for kern, bound, tm in (("triton conv_pool 128x32 (conv + max-pool, one pass)", p["bound"] if t < dram else
                                 "DRAM", t),
                                ("vendor: cuDNN fp32 conv + max_pool2d (unfused)", "cuDNN fp32 + pool pass",
                                 macs / unfused_s / 1e12)):
            out.append({"kernel": kern, "GPU": gname, "shape": shape, "bound": bound,
                        "instr/iter": p["instr/iter"] if kern.startswith("triton") else "", "CTAs/SM": "",
                        "pipes only T MAC/s": p["T MAC/s"] if kern.startswith("triton") else "",
                        "model T MAC/s": tm, "of dense peak": tm * 1e12 / peak, "vs cuBLAS bf16": "",
                        "vs cuBLAS int8": ""})
    return out


def main() -> None:
    rows = [r for gname, gpu in GPUS.items()
            for r in [*vendor_rows(gname, gpu), *float_rows(gname, gpu), *conv_backward_rows(gname, gpu)]]
    rows += conv_pool_rows()
    for kern in [*_triton_kernels(), *_cuda_kernels()]:
        for gname, gpu in GPUS.items():
            if gpu["sm"] == kern["arch"] and (gpu["b1"] or "b1 gemm" not in kern["name"]):
                if "tc_conv_pool" in kern["name"]:
                    rows += xnor_conv_pool_rows(kern, gname, gpu)
                elif "tc_conv" in kern["name"]:
                    rows += conv_rows(kern, gname, gpu)
                else:
                    rows += rows_for(kern, gname, gpu)
    emit("gpu_model", rows, ["kernel", "GPU", "shape", "bound", "instr/iter", "CTAs/SM", "pipes only T MAC/s",
                             "model T MAC/s", "of dense peak", "vs cuBLAS bf16", "vs cuBLAS int8"])
    print("A model from the SASS, not a measurement (bench/gpu_model.py docstring: what it leaves out).")


if __name__ == "__main__":
    main()
