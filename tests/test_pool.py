"""MaxPool2x2 equals nn.MaxPool2d(2) in values and gradients (ties, NaN, odd sizes, channels-last,
unbatched) while its backward keeps only the indices, not the input."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gxnor_cuda.pool import MaxPool2x2


@pytest.mark.parametrize("shape, cl", [((3, 5, 8, 8), False), ((2, 4, 9, 7), True), ((4, 6, 5), False),
                                       ((2, 3, 12, 10), True)])
def test_values_and_gradients_equal_nn_maxpool(shape, cl):
    gen = torch.Generator().manual_seed(sum(shape))
    x = torch.randint(-2, 3, shape, generator=gen).float()  # many ties: torch's first-max rule decides
    x.view(-1)[::17] = float("nan")
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    g = torch.randn(nn.functional.max_pool2d(x, 2).shape, generator=gen)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = MaxPool2x2()(a), nn.MaxPool2d(2)(b)
    assert torch.equal(ya.nan_to_num(7.0), yb.nan_to_num(7.0))
    ya.backward(g)
    yb.backward(g)
    assert torch.equal(a.grad, b.grad) and a.grad.stride() == b.grad.stride()


def test_backward_keeps_the_indices_only():
    x = torch.randn(8, 16, 24, 24, requires_grad=True).contiguous(memory_format=torch.channels_last)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        MaxPool2x2()(x)
    assert sum(t.numel() * t.element_size() for t in saved) == 8 * 8 * 16 * 12 * 12  # int64 indices
