"""BatchNorm after a ternary layer, trained from its integer accumulators.

A GXNOR layer whose input and weights are ternary (the fused input quantizer, no scale or bias)
outputs integer accumulators, |value| <= fan-in. ``IntBatchNorm1d`` / ``IntBatchNorm2d`` are
``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` (the same parameters, buffers and checkpoint keys, and
``freeze`` folds them alike) whose training step takes the batch statistics from exact int64
sums of those integers (``gxnor::accumulator_stats``, one pass that also writes an int16 copy)
and saves that int16 copy for backward instead of the float32 input: half the bytes, the same
values. An input that is not an integer in int16's range is refused with an error. In eval mode,
and in training for an input other than float32 (N, C) / (N, C, H, W), they are nn.BatchNorm.
"""

from __future__ import annotations

import torch
from torch import nn


class _AccumulatorBatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, factor, eps):
        q, sums = torch.ops.gxnor.accumulator_stats(x)
        n = x.numel() // x.shape[1]
        s = sums.to(torch.float64)
        mean = s[0] / n
        var = (s[1] / n - mean * mean).clamp_min(0.0)  # biased; float64 from the exact sums
        mean32, var32 = mean.float(), var.float()
        y = torch.nn.functional.batch_norm(x, mean32, var32, weight, bias, False, 0.0, eps)
        if running_mean is not None:
            running_mean.mul_(1 - factor).add_(mean32, alpha=factor)
            running_var.mul_(1 - factor).add_((var * (n / (n - 1))).float(), alpha=factor)
        ctx.save_for_backward(q, mean32, 1.0 / torch.sqrt(var32 + eps), weight)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, gy):
        q, mean, invstd, weight = ctx.saved_tensors
        need = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]]
        gx, gw, gb = torch.ops.aten.native_batch_norm_backward(gy, q.float(), weight, None, None, mean, invstd, True,
                                                               ctx.eps, need)
        return gx, gw, gb, None, None, None, None


class _FromAccumulators:
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and x.dtype == torch.float32 and x.dim() in (2, 4)):
            return super().forward(x)
        self._check_input_dim(x)
        if x.numel() <= x.shape[1]:  # nn.BatchNorm's rule, checked before any state changes
            raise ValueError(f"x: expected more than 1 value per channel when training, got shape {tuple(x.shape)}")
        count = self.track_running_stats and self.num_batches_tracked is not None
        factor = 0.0 if self.momentum is None else self.momentum
        if count and self.momentum is None:
            factor = 1.0 / float(self.num_batches_tracked + 1)
        rm, rv = (self.running_mean, self.running_var) if self.track_running_stats else (None, None)
        y = _AccumulatorBatchNorm.apply(x, self.weight, self.bias, rm, rv, factor, self.eps)
        if count:  # after the input was accepted: a refused call changes no state
            self.num_batches_tracked.add_(1)
        return y


class IntBatchNorm1d(_FromAccumulators, nn.BatchNorm1d):
    """nn.BatchNorm1d for a ternary GXNORLinear's (N, C) accumulators (see the module docstring)."""


class IntBatchNorm2d(_FromAccumulators, nn.BatchNorm2d):
    """nn.BatchNorm2d for a ternary GXNORConv2d's (N, C, H, W) accumulators (see the module docstring)."""
