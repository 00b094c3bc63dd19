"""xnor_conv2d and the float-side convolutions against torch F.conv2d (oneDNN) on the GXNOR network
layers, same run, batch 100.

Ternary x ternary: torch fp32 / bf16 conv2d vs gxnor xnor_conv2d on packed operands, and with the
input quantize+pack included; next-layer output: xnor_conv2d_pack (threshold + pack fused per row
chunk) vs xnor_conv2d float output then quantize_pack. Float side (what a training step runs): the first-layer forward
(ternary_conv2d: unpack the weight + platform conv in the input's layout) and the im2col +
ternary_matmul alternative, grad-input (aten.convolution_backward with the unpacked weight and a
shape-only channels-last input, as TernaryInputConv.backward runs it) and grad-weight (xnor_conv2d_weight_grad on the
packed activations; the one-channel first layer: unfold + GEMM on its float input) vs fp32 NCHW, and
beside it the grad-weight of oneDNN on the activations unpacked to float32 (the route
float_conv.cpu_wgrad_from_packed takes on AVX-512 CPUs).

    python bench/bench_conv.py [--threads 2] [--batch 100] [--quick]
"""

from __future__ import annotations

import pathlib
import sys

import torch
import torch.nn.functional as TF

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from common import emit, parser, speedup_bars, time_rounds  # noqa: E402

from gxnor_cuda import float_conv as fc  # noqa: E402
from gxnor_cuda import functional as F  # noqa: E402
from gxnor_cuda.autograd_conv import conv_backward, conv_input_like  # noqa: E402

# (name, C_in, C_out, kernel, H = W of the input, padding)
LAYERS = [
    ("mnist conv1 1->32 5x5 28", 1, 32, 5, 28, 0),
    ("mnist conv2 32->64 5x5 12", 32, 64, 5, 12, 0),
    ("cifar 128->128 3x3 32", 128, 128, 3, 32, 1),
    ("cifar 128->256 3x3 16", 128, 256, 3, 16, 1),
    ("cifar 256->256 3x3 16", 256, 256, 3, 16, 1),
    ("cifar 256->512 3x3 8", 256, 512, 3, 8, 1),
    ("cifar 512->512 3x3 8", 512, 512, 3, 8, 1),
]


def tern(*shape):
    return torch.randint(-1, 2, shape).float()


def layer_row(name, c, o, k, h, p, bs, t):
    x, w = tern(bs, c, h, h), tern(o, c, k, k)
    xr = torch.randn(bs, c, h, h)
    xb, wb = x.bfloat16(), w.bfloat16()
    xp, wp = F.pack_conv_input(x), F.pack_conv_weight(w)
    y = TF.conv2d(x, w, None, 1, p)
    gy = torch.randn_like(y)
    zo = torch.zeros(o)
    spec = dict(stride=[1, 1], padding=[p, p], dilation=[1, 1], transposed=False, output_padding=[0, 0], groups=1)
    cb = torch.ops.aten.convolution_backward
    lib_spec = ((1, 1), (p, p), (1, 1), 1)
    # the GXNOR side as TernaryInputConv.backward runs it: operands unpacked from the packed
    # activations / weights (channels-last views), grad_out channels-last like xnor_conv2d's output
    gyc = gy.contiguous(memory_format=torch.channels_last)

    def xd():  # grad-input reads only the shape and layout of the input (conv_input_like)
        return conv_input_like(xp, (bs, c, h, h))

    # A one-channel layer is a first layer (TernaryWeightConv): its backward takes the float input
    # and the NCHW grad_out of its NCHW forward; the others run as TernaryInputConv.backward.
    gy_lib, x_lib = (gy, lambda: xr) if c == 1 else (gyc, xd)

    def grad_weight():
        if c == 1:  # first layer: float input (TernaryWeightConv.backward: unfold + GEMM)
            return fc.float_conv2d_weight_grad(gy, xr, (k, k), 1, p, 1)
        return F.xnor_conv2d_weight_grad(gyc, xp, wp, c, 1, p)  # TernaryInputConv.backward

    def grad_weight_unpacked():  # the other CPU route (float_conv.cpu_wgrad_from_packed): oneDNN on unpacked x
        if c == 1:
            return grad_weight()
        xu = F.unpack_ternary(xp, c, torch.float32).reshape(bs, h, h, c).permute(0, 3, 1, 2)
        return conv_backward(gyc, xu, F.unpack_conv_weight(wp, c), lib_spec, False, True)

    ms = t({
        "fp32 conv": lambda: TF.conv2d(x, w, None, 1, p),
        "bf16 conv": lambda: TF.conv2d(xb, wb, None, 1, p),
        "xnor_conv2d": lambda: F.xnor_conv2d(xp, wp, c, 1, p),
        "xnor +pack": lambda: F.xnor_conv2d(F.pack_conv_input(xr, threshold=1.0), wp, c, 1, p),
        "conv, quantize_pack": lambda: F.quantize_pack(
            F.xnor_conv2d(xp, wp, c, 1, p, bias=zo).permute(0, 2, 3, 1), 1.0),
        "xnor_conv2d_pack": lambda: F.xnor_conv2d_pack(xp, wp, c, 1.0, 1, p, bias=zo),
        "float fwd": lambda: F.ternary_conv2d(xr, wp, c, 1, p),
        "im2col+ternary_matmul": lambda: F.ternary_matmul(
            TF.unfold(xr, k, 1, p).transpose(1, 2).reshape(-1, c * k * k), F.pack_ternary(w.reshape(o, -1)),
            c * k * k),
        "fp32 grad-input": lambda: cb(gy, xr, w, None, **spec, output_mask=[True, False, False]),
        "grad-input": lambda: conv_backward(gy_lib, x_lib(), F.unpack_conv_weight(wp, c), lib_spec, True, False),
        "fp32 grad-weight": lambda: cb(gy, xr, w, None, **spec, output_mask=[False, True, False]),
        "grad-weight": grad_weight,
        "grad-weight unpacked": grad_weight_unpacked,
    })
    ms = {kk: v * 1e3 for kk, v in ms.items()}
    macs = bs * o * y.shape[2] * y.shape[3] * c * k * k
    return {
        "layer": name, **{f"{kk} ms": v for kk, v in ms.items()},
        "xnor G MAC/s": macs / ms["xnor_conv2d"] / 1e6,
        "xnor vs fp32": ms["fp32 conv"] / ms["xnor_conv2d"],
        "xnor vs bf16": ms["bf16 conv"] / ms["xnor_conv2d"],
        "xnor+pack vs fp32": ms["fp32 conv"] / ms["xnor +pack"],
        "fused pack vs unfused": ms["conv, quantize_pack"] / ms["xnor_conv2d_pack"],
        "fused pack vs fp32": ms["fp32 conv"] / ms["xnor_conv2d_pack"],
        "float fwd vs fp32": ms["fp32 conv"] / ms["float fwd"],
        "im2col vs fp32": ms["fp32 conv"] / ms["im2col+ternary_matmul"],
        "grad-input vs fp32": ms["fp32 grad-input"] / ms["grad-input"],
        "grad-weight vs fp32": ms["fp32 grad-weight"] / ms["grad-weight"],
        "lookups vs unpacked grad-weight": ms["grad-weight unpacked"] / ms["grad-weight"],
    }


def plot(path, rows, meta):
    speedup_bars(path, rows, meta, ["xnor vs fp32", "xnor vs bf16", "float fwd vs fp32", "grad-input vs fp32",
                                    "grad-weight vs fp32"], "layer", "gxnor conv vs torch F.conv2d",
                 "speed-up over torch (x)")


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--quick", action="store_true", help="MNIST layers and one CIFAR layer, shorter timing")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; best of each op (default 3)")
    ap.add_argument("--name", default="bench_conv_cpu", help="results name: bench/results/<name>.csv and .png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    layers = LAYERS[:3] if args.quick else LAYERS
    min_time, rounds = (0.1, 1) if args.quick else (0.3, args.rounds)
    rows = []
    for spec in layers:
        rows.append(layer_row(*spec, args.batch, lambda fns: time_rounds(fns, rounds, min_time)))
        r = rows[-1]
        print(f"  done {r['layer']}: xnor {r['xnor_conv2d ms']:.3g} ms, fp32 {r['fp32 conv ms']:.3g} ms", flush=True)
    headers = ["layer", "fp32 conv ms", "bf16 conv ms", "xnor_conv2d ms", "xnor G MAC/s", "xnor vs fp32",
               "xnor vs bf16", "xnor +pack ms", "xnor+pack vs fp32", "conv, quantize_pack ms", "xnor_conv2d_pack ms",
               "fused pack vs unfused", "fused pack vs fp32", "float fwd ms", "float fwd vs fp32",
               "im2col+ternary_matmul ms", "im2col vs fp32", "grad-input ms", "grad-input vs fp32",
               "grad-weight ms", "grad-weight vs fp32", "grad-weight unpacked ms", "lookups vs unpacked grad-weight"]
    emit(args.name, rows, headers, plot)


if __name__ == "__main__":
    main()
