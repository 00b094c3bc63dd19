"""Autograd for ternary-weight convolutions (used by GXNORConv2d).

Weights are DiscreteWeights (gxnor_cuda.weight) stored (O, kh, kw, 2, Wg) packed (or (O, kh, kw, C/groups)
int8 states); their float gradient is computed (O, kh, kw, C/groups) and returned as the logical
(O, C/groups, kh, kw) view, whose channels-last strides are the weight's own: ``.grad`` takes it
without a copy.

- ternary input (fused phi_r, rectangular window): forward quantizes and packs the input
  channels-last in one pass and runs the exact xnor_conv2d; saves the packed activations
  (2 bits/value) and a packed window mask, never the float input. Backward: on CPUs where it
  wins (float_conv.cpu_wgrad_from_packed: AVX2) grad-weight by
  xnor_conv2d_weight_grad's float table lookups on the packed activations and grad-input by
  aten.convolution_backward with a shape-only input; elsewhere both in one
  aten.convolution_backward call on the activations unpacked for it (oneDNN / cuDNN).
- float input (first layer, or another quantizer): forward is the platform conv on the unpacked
  weight (small); saves the float input. Backward: the platform conv, except a one-channel CPU
  input's grad-weight (the MNIST first layer), which is unfold + batched GEMM.
The other float-side convs run on the platform conv, faster than im2col + ternary_matmul
(bench/bench_conv.py); the weight unpack is O*C*kh*kw/groups values.

``lowp`` (the autocast dtype the layer was called under, gxnor_cuda.autograd): the float convs
(a float-input layer's forward, both backward products) run on operands unpacked or cast to
lowp, cuDNN's bf16 tensor cores on a GPU, with float32 results; the ternary conv stays exact.
"""

from __future__ import annotations

import torch

from . import _backend
from . import float_conv as fc
from . import functional as F
from ._conv_checks import conv_out_size
from .autograd import window_mask
from .weight import decode


def dense_conv_weight(w: torch.Tensor, c_per_group: int, n_states: int, dtype=torch.float32) -> torch.Tensor:
    """Stored conv weight (O, kh, kw, ...) -> dense (O, C/groups, kh, kw)."""
    return decode(w, c_per_group, n_states, dtype).permute(0, 3, 1, 2)


def conv_backward(gy, x, wd, spec, need_input: bool, need_weight: bool = True):
    """grad-input and / or grad-weight of conv2d(x, wd) (aten.convolution_backward, oneDNN on CPU).

    gy: (N, O, Ho, Wo), x: (N, C, H, W), wd: (O, C/groups, kh, kw) float; spec: (stride, padding,
    dilation, groups). Returns (gx or None, gw (O, kh, kw, C/groups) or None), gw in the stored layout.
    The operands keep their memory format (channels-last from xnor_conv2d and the unpacked
    activations), except with one input channel per group, where every operand goes NCHW: there
    oneDNN's channels-last backward kernels are slower than NCHW (up to 2.8x for grad-weight on
    MNIST conv1, bench/bench_conv.py).
    """
    s, p, d, groups = spec
    if x.shape[1] == groups:
        gy, x, wd = fc.nchw(gy), fc.nchw(x), fc.nchw(wd)
    gx, gw, _ = torch.ops.aten.convolution_backward(gy, x, wd, None, s, p, d, False, [0, 0], groups,
                                                    [need_input, need_weight, False])
    return gx, gw.permute(0, 2, 3, 1) if need_weight else None  # (O, kh, kw, C/groups), the stored layout


def _logical(gw: torch.Tensor | None) -> torch.Tensor | None:
    """A weight gradient computed in the stored order (O, kh, kw, C/groups) as the weight's logical
    (O, C/groups, kh, kw) view, whose strides are the DiscreteWeight's own."""
    return None if gw is None else gw.contiguous().permute(0, 3, 1, 2)


def conv_input_like(hq: torch.Tensor, shape) -> torch.Tensor:
    """An uninitialised float32 (N, C, H, W) tensor in the layout of the unpacked activations of hq
    (channels-last): what grad-input needs of the conv's input, which is its shape and memory format."""
    n, c, h, w = shape
    return torch.empty((n, h, w, c), device=hq.device).permute(0, 3, 1, 2)


def conv_window_mask(h: torch.Tensor, r: float, a: float) -> torch.Tensor:
    """The surrogate window of a conv input h (N, C, H, W), packed along the channels (N, H, W, 2, Wc):
    the order pack_conv_input reads, so a channels-last h is packed in place (an NCHW one through
    the NCHW pack), never copied to another layout first."""
    return window_mask(h.permute(0, 2, 3, 1), r, a)


def unpack_conv_window(win: torch.Tensor, c: int) -> torch.Tensor:
    """conv_window_mask's bits as an int8 (N, C, H, W) channels-last view, grad-input's layout."""
    return F.unpack_ternary(win, c, torch.int8).permute(0, 3, 1, 2)


def ternary_input_conv(h, w, C, spec, r, bias=None):
    """Inference / forward: phi_r(h) packed channels-last, then xnor_conv2d to float32 (N, O, Ho, Wo)."""
    s, p, d, groups = spec
    hq = F.pack_conv_input(h, groups, threshold=r)
    ones = torch.ones(w.shape[0], device=h.device) if bias is None else None
    return F.xnor_conv2d(hq, w, C, s, p, d, groups, ones, bias), hq


_UNPACK_CHUNK_BYTES = 1 << 23  # unpacked activations per platform call on the CPU: blocks of samples


def unpacked_conv_backward(gy, hq, wd, spec, shape, need_w: bool, dt: torch.dtype, win=None):
    """grad-input (float32, channels-last) and grad-weight (float32 or None) of a conv on packed
    activations hq, through the platform conv on hq unpacked to dt. On the CPU, blocks of samples
    whose unpacked activations fit _UNPACK_CHUNK_BYTES, so the float copy of the input never
    exists whole (the weight gradient sums the blocks'); on a GPU one call. ``win``: the packed
    surrogate window of the input, multiplied into grad-input as each block is written."""
    n, c, hh, ww = shape
    cg, wdt = c // spec[3], wd.to(dt)

    def block(b0: int, b1: int):  # gw reads no weight
        xd = F.unpack_ternary(hq[b0:b1], cg, dt).reshape(b1 - b0, hh, ww, c).permute(0, 3, 1, 2)
        return conv_backward(gy[b0:b1].to(dt), xd, wdt, spec, True, need_w)

    def mask(b0: int, b1: int):
        return unpack_conv_window(win[b0:b1], c)

    step = n
    if hq.device.type == "cpu":
        step = max(1, _UNPACK_CHUNK_BYTES // max(1, hh * ww * c * torch.finfo(dt).bits // 8))
    if step >= n:
        gx, gw = block(0, n)
        gx = gx.float()
        return gx if win is None else gx.mul_(mask(0, n)), gw.float() if need_w else None
    gx = torch.empty((n, hh, ww, c), device=gy.device).permute(0, 3, 1, 2)
    gw = None
    for b0 in range(0, n, step):
        b1 = min(n, b0 + step)
        gxc, gwc = block(b0, b1)
        if win is None:
            gx[b0:b1] = gxc
        else:  # the window applied in the block's copy into gx: no second pass over grad-input
            torch.mul(gxc, mask(b0, b1), out=gx[b0:b1])
        if need_w:
            gw = gwc.float() if gw is None else gw.add_(gwc)
    return gx, gw


class TernaryInputConv(torch.autograd.Function):
    """y = conv(phi_r(h), W) with the rectangular surrogate window of half-width a."""

    @staticmethod
    def forward(ctx, h, weight, C, spec, r, a, lowp=None):
        w = weight.packed
        y, hq = ternary_input_conv(h, w, C, spec, r)
        ctx.save_for_backward(hq, conv_window_mask(h, r, a), w)
        ctx.C, ctx.spec, ctx.a, ctx.shape, ctx.lowp = C, spec, a, h.shape, lowp
        return y

    @staticmethod
    def backward(ctx, gy):
        hq, win, w = ctx.saved_tensors
        return *ternary_input_conv_backward(ctx, gy, hq, win, w), None, None, None, None, None


class TernaryInputConvPool(torch.autograd.Function):
    """y = maxpool2x2(conv(phi_r(h), W)) with the pool on the conv's accumulators in the same pass
    (gxnor::xnor_conv2d_maxpool2x2: the conv output never exists); saves what TernaryInputConv saves
    and the 1-byte window argmax. Backward: the pooled gradient unpooled, then TernaryInputConv's."""

    @staticmethod
    def forward(ctx, h, weight, C, spec, r, a):
        w = weight.packed
        s, p, d, groups = spec
        hq = F.pack_conv_input(h, groups, threshold=r)
        y, arg = torch.ops.gxnor.xnor_conv2d_maxpool2x2(hq, w, C, s, p, d, groups)
        ctx.save_for_backward(hq, conv_window_mask(h, r, a), w, arg)
        ctx.C, ctx.spec, ctx.a, ctx.shape, ctx.lowp = C, spec, a, h.shape, None
        ctx.conv_hw = [conv_out_size(h.shape[2 + i], w.shape[1 + i], s[i], p[i], d[i]) for i in range(2)]
        return y

    @staticmethod
    def backward(ctx, gy):
        hq, win, w, arg = ctx.saved_tensors
        g = torch.ops.gxnor.maxpool2x2_backward(gy.float().contiguous(memory_format=torch.channels_last), arg,
                                                *ctx.conv_hw)
        return *ternary_input_conv_backward(ctx, g, hq, win, w), None, None, None, None


def ternary_input_conv_backward(ctx, gy, hq, win, w):
    """(grad-input, grad-weight) of TernaryInputConv, and of its pooled form on the unpooled gy."""
    need_w = ctx.needs_input_grad[1]
    c = ctx.shape[1]
    groups = ctx.spec[3]
    cg = c // groups
    s, p, d, _ = ctx.spec
    wd = F.unpack_conv_weight(w, cg)
    wd_win = wd * (1.0 / (2 * ctx.a))  # the window's height folded into the small weight, not into gx
    # CPU where the lookups win (float_conv.cpu_wgrad_from_packed): grad-weight straight from the
    # packed activations (table lookups), grad-input on the platform conv, which reads its input
    # argument for shape and layout only; elsewhere (CUDA, lowp steps, AVX-512 CPUs):
    # both in one platform call on the operands unpacked to their dtype
    if hq.device.type == "cpu" and ctx.lowp is None and fc.cpu_wgrad_from_packed():
        gx, _ = conv_backward(gy, conv_input_like(hq, ctx.shape), wd_win, ctx.spec, True, False)
        gw = F.xnor_conv2d_weight_grad(gy, hq, w, ctx.C, s, p, d, groups) if need_w else None
        gx = gx.mul_(unpack_conv_window(win, c))  # a 1-byte mask, not a float copy of the input
    else:
        gx, gw = unpacked_conv_backward(gy, hq, wd_win, ctx.spec, ctx.shape, need_w, ctx.lowp or torch.float32,
                                        win)
    return gx, _logical(gw)


class TernaryWeightConv(torch.autograd.Function):
    """y = conv(x, W_dense) for real-valued x (or x already quantized by a non-fused quantizer)."""

    @staticmethod
    def forward(ctx, x, weight, C, spec, n_states, lowp=None):
        w = weight.packed
        s, p, d, groups = spec
        if x.device.type == "cpu" and x.shape[1] > groups:
            # the output goes channels-last (below) and its gradient comes back so: the input (the
            # smaller tensor here) converted once keeps the forward and both backward convs on one
            # layout, where an NCHW input would cost a copy of the output and of its gradient
            x = x.contiguous(memory_format=torch.channels_last)
        ctx.save_for_backward(x, w)
        ctx.C, ctx.spec, ctx.n_states, ctx.lowp = C, spec, n_states, lowp
        dt = lowp or x.dtype
        y = fc.float_conv2d(x.to(dt), dense_conv_weight(w, C // groups, n_states, dt), s, p, d, groups).to(x.dtype)
        # channels-last like every other GXNOR conv output: pooling, BatchNorm and their backward
        # then see one layout through the step (mixed layouts cost them a strided pass each)
        return y.contiguous(memory_format=torch.channels_last) if y.device.type == "cpu" else y

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        s, p, d, groups = ctx.spec
        out = gy.dtype
        if ctx.lowp is not None:
            gy, x = gy.to(ctx.lowp), x.to(ctx.lowp)
        wd = dense_conv_weight(w, ctx.C // groups, ctx.n_states, gy.dtype)
        need_x, need_w = ctx.needs_input_grad[:2]
        if fc.im2col_path(x, wd, groups):  # one input channel: unfold + batched GEMM
            gw = fc.float_conv2d_weight_grad(gy, x, wd.shape[2:], s, p, d) if need_w else None
            gx = conv_backward(gy, x, wd, ctx.spec, True, False)[0] if need_x else None
        else:
            gx, gw = conv_backward(gy, x, fc.weight_like_input(wd, x), ctx.spec, need_x, need_w)
        gx = gx.to(out) if gx is not None else None
        return gx, _logical(gw.to(out) if gw is not None else None), None, None, None, None


def conv_pool_route(x: torch.Tensor, groups: int) -> bool:
    """Whether maxpool2x2(conv(x, W)) runs as one gxnor::conv2d_maxpool2x2 pass: a float32 4-d input,
    groups = 1, on the CPU with the native kernels loaded or on a GPU with Triton (its twin kernel)."""
    if x.dtype != torch.float32 or x.dim() != 4 or groups != 1:
        return False
    return fc.native_cpu() if x.device.type == "cpu" else x.device.type == "cuda" and _backend.available("triton")


class TernaryWeightConvPool(torch.autograd.Function):
    """maxpool2x2(conv(x, W_dense)) for real-valued x in one pass (gxnor::conv2d_maxpool2x2): the conv
    output, four times the pooled size, is never stored; saves x and the 1-byte window argmax.
    Backward: the weight gradient straight from the pooled gradient and the argmax
    (conv2d_maxpool2x2_weight_grad); an input gradient, when asked, through the unpooled gradient."""

    @staticmethod
    def forward(ctx, x, weight, C, spec, n_states):
        w = weight.packed
        s, p, d, _ = spec
        y, arg = torch.ops.gxnor.conv2d_maxpool2x2(x, dense_conv_weight(w, C, n_states), s, p, d)
        ctx.save_for_backward(x, arg, w)
        ctx.C, ctx.spec, ctx.n_states, ctx.kernel = C, spec, n_states, list(weight.shape[2:])
        ctx.conv_hw = [conv_out_size(x.shape[2 + i], ctx.kernel[i], s[i], p[i], d[i]) for i in range(2)]
        return y

    @staticmethod
    def backward(ctx, gy):
        x, arg, w = ctx.saved_tensors
        s, p, d, _ = ctx.spec
        need_x, need_w = ctx.needs_input_grad[:2]
        gy = gy.float()
        gw = gx = None
        if need_w:
            gw = torch.ops.gxnor.conv2d_maxpool2x2_weight_grad(gy, arg, x, ctx.kernel, s, p, d).permute(0, 2, 3, 1)
        if need_x:
            gi = torch.ops.gxnor.maxpool2x2_backward(gy, arg, *ctx.conv_hw)
            wd = dense_conv_weight(w, ctx.C, ctx.n_states)
            gx = conv_backward(gi, x, fc.weight_like_input(wd, x), ctx.spec, True, False)[0]
        return gx, _logical(gw), None, None, None
