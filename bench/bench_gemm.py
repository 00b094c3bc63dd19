"""xnor_gemm and ternary_matmul against the dense torch ops on the same logical shapes, same run.

CPU: torch fp32 matmul, torch bf16 matmul, torch int8 quantized Linear (fbgemm) vs gxnor C++
xnor_gemm (packed operands) and ternary_matmul (NT: x @ W.T, NN: g @ W). On a GPU it adds
torch bf16 mm, torch._int_mm and the gxnor CUDA / Triton kernels (triton.testing.do_bench).

    python bench/bench_gemm.py [--threads 2] [--quick]
"""

from __future__ import annotations

import pathlib
import sys
import warnings

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import emit, parser, speedup_bars, time_rounds  # noqa: E402

from gxnor_cuda import functional as F  # noqa: E402

SQUARE = [(256, 1024, 1024), (1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096)]
# (batch, out_features, in_features) of the GXNOR MNIST and CIFAR-10 fully connected layers
FC = [("mnist fc1", 1024, 512), ("mnist fc2", 512, 10), ("cifar fc1", 8192, 1024), ("cifar fc2", 1024, 10)]


def int8_linear(K: int, N: int, M: int):
    torch.backends.quantized.engine = "fbgemm"
    from torch.ao.nn.quantized import Linear as QLinear

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = QLinear(K, N, bias_=False)
        q.set_weight_bias(torch.quantize_per_tensor(torch.randn(N, K), 0.02, 0, torch.qint8), None)
    xq = torch.quantize_per_tensor(torch.randn(M, K), 0.05, 128, torch.quint8)
    return lambda: q(xq)


def cpu_rows(shapes, min_time, rounds):
    rows = []
    for name, M, N, K in shapes:
        x = torch.randn(M, K)
        w = torch.randn(N, K)
        g = torch.randn(M, N)
        xb, wb = x.bfloat16(), w.bfloat16()
        a = F.pack_ternary(torch.randint(-1, 2, (M, K)).float())
        b = F.pack_ternary(torch.randint(-1, 2, (N, K)).float())
        t = time_rounds({
            "fp32 mm": lambda: x @ w.T,
            "bf16 mm": lambda: xb @ wb.T,
            "int8 linear": int8_linear(K, N, M),
            "xnor_gemm": lambda: F.xnor_gemm(a, b, K),
            "fp32 mm NN": lambda: g @ w,
            "ternary NT": lambda: F.ternary_matmul(x, b, K),
            "ternary NN": lambda: F.ternary_matmul(g, b, K, layout="nn"),
        }, rounds, min_time)
        ms = {k: v * 1e3 for k, v in t.items()}
        rows.append({
            "shape": name, "M": M, "N": N, "K": K,
            **{f"{k} ms": v for k, v in ms.items()},
            "xnor G MAC/s": M * N * K / t["xnor_gemm"] / 1e9,
            "xnor vs fp32": ms["fp32 mm"] / ms["xnor_gemm"],
            "xnor vs bf16": ms["bf16 mm"] / ms["xnor_gemm"],
            "xnor vs int8": ms["int8 linear"] / ms["xnor_gemm"],
            "NT vs fp32": ms["fp32 mm"] / ms["ternary NT"],
            "NN vs fp32": ms["fp32 mm NN"] / ms["ternary NN"],
            "weight bytes packed": b.numel() * 4, "weight bytes fp32": N * K * 4,
        })
        print(f"  done {name}: xnor {ms['xnor_gemm']:.3g} ms, fp32 {ms['fp32 mm']:.3g} ms", flush=True)
    return rows


def gpu_rows(shapes):
    import triton.testing as tt

    rows = []
    for name, M, N, K in shapes:
        x = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16)
        xi = torch.randint(-1, 2, (M, K), device="cuda", dtype=torch.int8)
        wi = torch.randint(-1, 2, (N, K), device="cuda", dtype=torch.int8)
        a, b = F.pack_ternary(xi), F.pack_ternary(wi)
        t = {
            "bf16 mm": tt.do_bench(lambda: x @ w.T),
            "_int_mm": tt.do_bench(lambda: torch._int_mm(xi, wi.T)) if M > 16 else float("nan"),
            "cuda popcount": tt.do_bench(lambda: F.xnor_gemm(a, b, K, backend="cuda")),
            "triton popcount": tt.do_bench(lambda: F.xnor_gemm(a, b, K, backend="triton", method="popcount")),
            "triton dot": tt.do_bench(lambda: F.xnor_gemm(a, b, K, backend="triton", method="dot")),
            "triton tc": tt.do_bench(lambda: F.xnor_gemm(a, b, K, backend="triton", method="tc")),
        }
        rows.append({"shape": name, "M": M, "N": N, "K": K, **{f"{k} ms": v for k, v in t.items()},
                     "best gxnor vs bf16": t["bf16 mm"] / min(t["cuda popcount"], t["triton dot"], t["triton tc"])})
    return rows


def plot(path, rows, meta):
    speedup_bars(path, rows, meta, ["xnor vs fp32", "xnor vs int8", "NT vs fp32", "NN vs fp32"], "shape",
                 "gxnor GEMM vs torch")


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="skip 4096^3, shorter timing")
    ap.add_argument("--shapes", choices=["all", "square", "fc"], default="all",
                    help="the square shapes, the MNIST/CIFAR fully connected layers, or both (default)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; best of each op (default 3)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sq = SQUARE[:-1] if args.quick else SQUARE
    shapes = [(f"{M}x{N}x{K}", M, N, K) for M, N, K in sq] if args.shapes != "fc" else []
    if args.shapes != "square":
        shapes += [(f"{n} b{bs}", bs, N, K) for bs in (100, 1000) for n, K, N in FC]
    rows = cpu_rows(shapes, 0.1 if args.quick else 0.3, 1 if args.quick else args.rounds)
    headers = ["shape", "fp32 mm ms", "bf16 mm ms", "int8 linear ms", "xnor_gemm ms", "xnor G MAC/s",
               "xnor vs fp32", "xnor vs bf16", "xnor vs int8", "ternary NT ms", "NT vs fp32", "ternary NN ms",
               "NN vs fp32", "weight bytes packed", "weight bytes fp32"]
    emit("bench_gemm_cpu", rows, headers, plot)
    if torch.cuda.is_available():
        g = gpu_rows(shapes)
        emit("bench_gemm_gpu", g, list(g[0].keys()))


if __name__ == "__main__":
    main()
