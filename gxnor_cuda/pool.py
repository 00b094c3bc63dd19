"""MaxPool2x2: nn.MaxPool2d(2) whose backward keeps a 1-byte argmax per output.

torch's max-pool saves its whole input (for the shape) and an int64 index per output for the
backward: in the GXNOR networks, where the layers keep packed activations, that is most of what a
training step holds (the first conv's float output and 8 bytes per pooled value). This one keeps
the window position of each maximum (0-3, uint8) and the input's shape; forward values, the argmax
(torch's, including its tie and NaN rules) and so the gradients are the same as nn.MaxPool2d(2)'s.
"""

from __future__ import annotations

import torch
from torch import nn


class _MaxPool2x2Fn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        y, idx = torch.nn.functional.max_pool2d_with_indices(x, 2)
        w = x.shape[-1]
        # idx = (2 oy + dy) * W + 2 ox + dx; the window position 2 dy + dx in one byte
        row = torch.div(idx, w, rounding_mode="floor")
        col = idx.sub_(row * w)
        ctx.save_for_backward(row.bitwise_and_(1).mul_(2).add_(col.bitwise_and_(1)).to(torch.uint8))
        ctx.shape = x.shape
        ctx.channels_last = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
            memory_format=torch.channels_last)
        return y

    @staticmethod
    def backward(ctx, g):
        (arg,) = ctx.saved_tensors
        fmt = torch.channels_last if ctx.channels_last else torch.contiguous_format
        gx = torch.empty(ctx.shape, dtype=g.dtype, device=g.device).contiguous(memory_format=fmt).zero_()
        ho, wo = g.shape[-2:]
        for k in range(4):
            dy, dx = divmod(k, 2)
            gx[..., dy:2 * ho:2, dx:2 * wo:2] = torch.where(arg == k, g, 0)
        return gx


class MaxPool2x2(nn.Module):
    """nn.MaxPool2d(2) (kernel 2, stride 2, no padding, floor mode) with a 1-byte argmax saved for
    the backward instead of the input and int64 indices; same values and gradients."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (3, 4):
            raise ValueError(f"input: expected (N, C, H, W) or (C, H, W), got shape {tuple(x.shape)}")
        if not torch.is_grad_enabled() or not x.requires_grad:
            return torch.nn.functional.max_pool2d(x, 2)
        return _MaxPool2x2Fn.apply(x)

    def extra_repr(self) -> str:
        return "kernel_size=2, stride=2"
