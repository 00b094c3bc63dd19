"""DST update throughput: the C++ CPU kernel on packed ternary weights (random-number contract 2,
and contract 1 beside it) vs the same rule written with plain torch ops (float32 weights,
torch.rand), and a plain copy of the bytes the kernel touches (gradient read + packed words read
and written), timed round-robin in one run. Also bytes of persistent state per weight.

    python bench/bench_dst.py [--threads 2] [--sizes 16 64]   (millions of weights)
"""

from __future__ import annotations

import pathlib
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import emit, parser, time_rounds  # noqa: E402

from gxnor_cuda import functional as F  # noqa: E402


def plain_torch_dst(w: torch.Tensor, g: torch.Tensor, lr: float, m: float) -> torch.Tensor:
    """The DST rule on float ternary weights with ordinary torch ops (the baseline)."""
    d = -lr * g
    k = d.trunc()
    v = d - k
    move = k + torch.sign(v) * (torch.rand_like(v) < torch.tanh(m * v.abs()))
    return (w + move).clamp_(-1, 1)


def _on_isa(name: str, fn):
    before = torch.ops.gxnor_native.cpu_isa()
    torch.ops.gxnor_native.set_cpu_isa(name)
    try:
        return fn()
    finally:
        torch.ops.gxnor_native.set_cpu_isa(before)


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 64])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    isa = torch.ops.gxnor_native.cpu_isa()
    rows = []
    for mw in args.sizes:
        n = mw * 2**20
        K = 4096
        g = torch.randn(n // K, K)
        wf = torch.randint(-1, 2, (n // K, K)).float()
        wp = F.pack_ternary(wf)
        touched = g.numel() * 4 + 2 * wp.numel() * 4
        src = torch.empty(touched // 4, dtype=torch.float32)
        dst = torch.empty_like(src)
        # check=False: the optimizer's steady state (it validates a weight only when someone else wrote it)
        cands = {"copy of touched bytes": lambda: dst.copy_(src),
                 "C++ DST (packed)": lambda: F.dst_update_(wp, g, 0.3, 3.0, 1, 0, check=False, backend="cpp"),
                 "C++ DST (packed, contract 1)": lambda: F.dst_update_(wp, g, 0.3, 3.0, 1, 0, rng=1, check=False,
                                                                       backend="cpp"),
                 "plain torch DST (float)": lambda: plain_torch_dst(wf, g, 0.3, 3.0)}
        if isa != "avx2" and torch.ops.gxnor_native.set_cpu_isa("avx2").startswith("avx2"):
            torch.ops.gxnor_native.set_cpu_isa(isa)
            cands["C++ DST (packed), AVX2 path"] = lambda: _on_isa("avx2", lambda: F.dst_update_(
                wp, g, 0.3, 3.0, 1, 0, check=False, backend="cpp"))
        ts = time_rounds(cands, rounds=3, min_run_time=0.5)
        t_cpp, t_copy = ts["C++ DST (packed)"], ts["copy of touched bytes"]
        for name, t in ts.items():
            rows.append({"weights (M)": mw, "impl": name, "ISA": "avx2" if "AVX2" in name else isa, "ms": t * 1e3,
                         "G weights/s": n / t / 1e9,
                         "GB/s (touched)": touched / t / 1e9,
                         "C++ speed-up": t / t_cpp if name != "C++ DST (packed)" else 1.0,
                         "x of copy time": t / t_copy})
    emit("bench_dst", rows, ["weights (M)", "impl", "ISA", "ms", "G weights/s", "GB/s (touched)", "C++ speed-up",
                             "x of copy time"])
    print("persistent bytes per ternary weight: DST sgd 0.25 (2 bits), DST normalized 0.25 (+4 B per tensor), "
          "DST adam 0.25 + 8 (two float moments), float STE + Adam 4 + 8 = 12")


if __name__ == "__main__":
    main()
