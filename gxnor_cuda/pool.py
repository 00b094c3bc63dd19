"""MaxPool2x2: nn.MaxPool2d(2) whose backward keeps a window argmax and not its input.

torch's max-pool saves its whole input (for the shape) and an int64 index per output for the
backward: in the GXNOR networks, where the layers keep packed activations, that is most of what a
training step holds (the first conv's float output, four times the pooled size). On the CPU (float32,
4-d) this one runs gxnor::maxpool2x2, which keeps one byte per output (the window position of the
maximum) and whose backward writes the input gradient in one pass; elsewhere torch's kernels with
their int64 indices and the input's shape and strides. Forward values, the argmax (torch's,
including its tie and NaN rules) and the gradients are nn.MaxPool2d(2)'s either way.
"""

from __future__ import annotations

import torch
from torch import nn


class _MaxPool2x2ArgmaxFn(torch.autograd.Function):
    """The CPU route: gxnor::maxpool2x2 keeps a 1-byte window argmax, and its backward writes the
    input gradient in one pass (no zero fill first)."""

    @staticmethod
    def forward(ctx, x):
        y, arg = torch.ops.gxnor.maxpool2x2(x)
        ctx.save_for_backward(arg)
        ctx.hw = x.shape[2:]
        return y

    @staticmethod
    def backward(ctx, g):
        (arg,) = ctx.saved_tensors
        return torch.ops.gxnor.maxpool2x2_backward(g.float(), arg, ctx.hw[0], ctx.hw[1])


class _MaxPool2x2Fn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y, idx = torch.nn.functional.max_pool2d_with_indices(x, 2)
        ctx.save_for_backward(idx)  # int64 as torch's kernels take it: a narrower copy costs two passes
        ctx.size, ctx.stride = x.shape, x.stride()
        return y

    @staticmethod
    def backward(ctx, g):
        (idx,) = ctx.saved_tensors
        # the backward reads its input argument for shape and memory format only: uninitialised
        # memory of the input's strides, which is never written, so it takes no pages
        like = torch.empty_strided(ctx.size, ctx.stride, dtype=g.dtype, device=g.device)
        return torch.ops.aten.max_pool2d_with_indices_backward(g, like, [2, 2], [2, 2], [0, 0], [1, 1], False, idx)


class MaxPool2x2(nn.Module):
    """nn.MaxPool2d(2) (kernel 2, stride 2, no padding, floor mode) that saves only its indices for the
    backward, not its input; same values and gradients."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (3, 4):
            raise ValueError(f"input: expected (N, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
        if not torch.is_grad_enabled() or not x.requires_grad:
            return torch.nn.functional.max_pool2d(x, 2)
        if x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4:
            return _MaxPool2x2ArgmaxFn.apply(x)
        return _MaxPool2x2Fn.apply(x)

    def extra_repr(self) -> str:
        return "kernel_size=2, stride=2"
