"""GPU kernels against the dense torch ops on the same shapes (triton.testing.do_bench, ms).

    python bench/bench_gpu.py [--sizes 4096 8192]

Rows: xnor_gemm (CUDA popcount, Triton popcount, Triton int8 tl.dot on format v1 and on the tc16 layout,
with and without the layout pass) vs torch.mm bf16 and
torch._int_mm int8 at M = N = K; DST update (packed, contract 2) vs a copy of the bytes it touches.
Needs a CUDA device. CSV: bench/results/bench_gpu.csv.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import emit  # noqa: E402

from gxnor_cuda import functional as F  # noqa: E402
from gxnor_cuda._triton.tc import tc_gemm, to_tc_layout  # noqa: E402
from gxnor_cuda.vendor import xnor_gemm_int_mm  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192])
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu: no CUDA device")
    from triton.testing import do_bench

    rows = []
    for n in args.sizes:
        a = F.pack_ternary(torch.randint(-1, 2, (n, n), device="cuda").float())
        b = F.pack_ternary(torch.randint(-1, 2, (n, n), device="cuda").float())
        xb = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        xi = torch.randint(-1, 2, (n, n), device="cuda", dtype=torch.int8)
        at, bt = to_tc_layout(a, n), to_tc_layout(b, n)
        cands = {
            "torch.mm bf16": lambda: torch.mm(xb, xb),
            "torch._int_mm int8": lambda: torch._int_mm(xi, xi),
            "xnor_gemm cuda (tensor cores: b1 on sm_8x, int8 on sm_90+)": lambda: F.xnor_gemm(a, b, n, backend="cuda"),
            "xnor_gemm triton popcount": lambda: F.xnor_gemm(a, b, n, backend="triton", method="popcount"),
            "xnor_gemm triton dot": lambda: F.xnor_gemm(a, b, n, backend="triton", method="dot"),
            "xnor_gemm triton tc (incl. layout pass)": lambda: F.xnor_gemm(a, b, n, backend="triton", method="tc"),
            "xnor_gemm triton tc kernel only": lambda: tc_gemm(at, bt),
            "xnor_gemm vendor (decode + torch._int_mm)": lambda: xnor_gemm_int_mm(a, b, n),
            "ternary_matmul bf16 nt cuda (bf16 tensor cores)": lambda: F.ternary_matmul(xb, b, n, backend="cuda"),
            "ternary_matmul bf16 nn cuda (dX = dY W)": lambda: F.ternary_matmul(xb, b, n, "nn", backend="cuda"),
        }
        ms = {k: do_bench(fn, warmup=25, rep=100) for k, fn in cands.items()}
        for k, t in ms.items():
            rows.append({"op": k, "shape": f"{n}^3", "ms": t, "T MAC/s": n**3 / t / 1e9,
                         "vs bf16": ms["torch.mm bf16"] / t})
    for mw in (16, 64):
        nw = mw * 2**20
        K = 4096
        g = torch.randn(nw // K, K, device="cuda")
        w = F.pack_ternary(torch.randint(-1, 2, (nw // K, K), device="cuda").float())
        touched = g.numel() * 4 + 2 * w.numel() * 4
        src = torch.empty(touched // 4, device="cuda")
        dst = torch.empty_like(src)
        for k, fn in (("copy of touched bytes", lambda: dst.copy_(src)),
                      ("dst_update_ cuda", lambda: F.dst_update_(w, g, 0.3, 3.0, 1, 0, check=False, backend="cuda")),
                      ("dst_update_ triton", lambda: F.dst_update_(w, g, 0.3, 3.0, 1, 0, check=False,
                                                                   backend="triton"))):
            t = do_bench(fn, warmup=10, rep=50)
            rows.append({"op": k, "shape": f"{mw}M weights", "ms": t, "GB/s (touched)": touched / t / 1e6})
    rows += conv_rows(do_bench)
    rows += conv_pool_rows(do_bench)
    emit("bench_gpu", rows, ["op", "shape", "ms", "T MAC/s", "vs bf16", "GB/s (touched)"])


def conv_rows(do_bench) -> list[dict]:
    """CIFAR VGG 3x3 convs at batch 256: cuDNN bf16 (channels-last) against the popcount CUDA kernel
    and the Triton tensor-core implicit GEMM (with its input layout pass); then each with its 2x2
    max-pool: cuDNN + max_pool2d, the Triton conv + max_pool2d, and the pool in the conv's epilogue
    ("vs bf16" of the pooled rows: against cuDNN bf16 + max_pool2d)."""
    from gxnor_cuda._triton.tc_conv import xnor_conv2d_tc

    rows = []
    for c, o, hw in ((128, 128, 32), (256, 256, 16), (512, 512, 8)):
        n = 256
        x = torch.randint(-1, 2, (n, c, hw, hw), device="cuda").float()
        wt = torch.randint(-1, 2, (o, c, 3, 3), device="cuda").float()
        xb = x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        wb = wt.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
        xp, wp = F.pack_conv_input(x), F.pack_conv_weight(wt)
        ones, pool = torch.ones(o, device="cuda"), torch.nn.functional.max_pool2d_with_indices
        conv = torch.nn.functional.conv2d
        cands = {"conv2d cuDNN bf16": lambda: torch.nn.functional.conv2d(xb, wb, padding=1),
                 "xnor_conv2d cuda popcount": lambda: F.xnor_conv2d(xp, wp, c, 1, 1, backend="cuda"),
                 "xnor_conv2d triton tc": lambda: xnor_conv2d_tc(xp, wp, c, 1, 1),
                 "+ pool: conv2d + max_pool2d cuDNN bf16": lambda: pool(conv(xb, wb, padding=1), 2),
                 "+ pool: xnor_conv2d triton tc, then max_pool2d":
                     lambda: pool(xnor_conv2d_tc(xp, wp, c, 1, 1, None, ones), 2),
                 "+ pool: xnor_conv2d_maxpool2x2 triton tc (pool in the epilogue)":
                     lambda: torch.ops.gxnor.xnor_conv2d_maxpool2x2(xp, wp, c, [1, 1], [1, 1], [1, 1], 1)}
        ms = {k: do_bench(fn, warmup=10, rep=50) for k, fn in cands.items()}
        macs = n * hw * hw * o * c * 9
        for k, t in ms.items():
            base = ms["+ pool: conv2d + max_pool2d cuDNN bf16" if k.startswith("+ pool") else "conv2d cuDNN bf16"]
            rows.append({"op": k, "shape": f"{c}->{o} 3x3 {hw}x{hw} batch {n}", "ms": t, "T MAC/s": macs / t / 1e9,
                         "vs bf16": base / t})
    return rows


def conv_pool_rows(do_bench) -> list[dict]:
    """The MNIST first layer and its pool at batch 1000: the Triton one-pass kernel (the conv output is
    never stored) against cuDNN's conv + max_pool2d, fp32 and bf16 ("vs bf16": against cuDNN bf16)."""
    n, hw = 1000, 28
    x, w = torch.randn(n, 1, hw, hw, device="cuda"), torch.randn(32, 1, 5, 5, device="cuda")
    xb, wb = x.to(torch.bfloat16), w.to(torch.bfloat16)
    pool = torch.nn.functional.max_pool2d_with_indices
    cands = {"conv + max_pool2d cuDNN bf16": lambda: pool(torch.nn.functional.conv2d(xb, wb), 2),
             "conv + max_pool2d cuDNN fp32": lambda: pool(torch.nn.functional.conv2d(x, w), 2),
             "conv2d_maxpool2x2 triton fp32": lambda: torch.ops.gxnor.conv2d_maxpool2x2(x, w)}
    ms = {k: do_bench(fn, warmup=10, rep=50) for k, fn in cands.items()}
    macs = n * 24 * 24 * 32 * 25
    return [{"op": k, "shape": f"1->32 5x5 {hw}x{hw} + pool, batch {n}", "ms": t, "T MAC/s": macs / t / 1e9,
             "vs bf16": ms["conv + max_pool2d cuDNN bf16"] / t} for k, t in ms.items()]


if __name__ == "__main__":
    main()
