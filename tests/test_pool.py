"""MaxPool2x2 equals nn.MaxPool2d(2) in values and gradients (ties, NaN, odd sizes, channels-last,
unbatched) while its backward keeps only a 1-byte argmax (CPU) or the indices, not the input; the
gxnor::maxpool2x2 op against its reference twin, bit for bit, and opcheck."""

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


def test_backward_keeps_one_byte_per_output_on_the_cpu():
    x = torch.randn(8, 16, 24, 24, requires_grad=True).contiguous(memory_format=torch.channels_last)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        MaxPool2x2()(x)
        MaxPool2x2()(x.double())  # the torch route (not float32): int64 indices
    assert [t.numel() * t.element_size() for t in saved] == [8 * 16 * 12 * 12, 8 * 8 * 16 * 12 * 12]


def _pool_input(shape, cl, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(-2, 3, shape, generator=gen).float()  # ties
    x.view(-1)[::13] = float("nan")
    x.view(-1)[5::29] = float("-inf")
    return x.contiguous(memory_format=torch.channels_last) if cl else x, gen


POOL_CASES = [((2, 5, 8, 8), False), ((2, 4, 9, 7), True), ((1, 3, 2, 3), True), ((3, 70, 6, 10), True),
              ((2, 6, 5, 4), False), ((0, 3, 4, 4), True)]


@pytest.mark.parametrize("shape, cl", POOL_CASES)
def test_maxpool2x2_op_equals_its_reference(shape, cl):
    import gxnor_cuda.reference as ref

    x, gen = _pool_input(shape, cl, sum(shape))
    y, a = torch.ops.gxnor.maxpool2x2(x)
    yr, ar = ref.maxpool2x2(x)
    assert torch.equal(y.nan_to_num(7.0), yr.nan_to_num(7.0)) and torch.equal(a, ar)
    assert y.stride() == yr.stride() and a.stride() == ar.stride() and a.dtype == torch.uint8
    g = torch.randn(y.shape, generator=gen)
    gi = torch.ops.gxnor.maxpool2x2_backward(g, a, shape[2], shape[3])
    assert torch.equal(gi, ref.maxpool2x2_backward(g, ar, shape[2], shape[3]))
    want = torch.ops.aten.max_pool2d_with_indices_backward(g, x, [2, 2], [2, 2], [0, 0], [1, 1], False,
                                                           torch.nn.functional.max_pool2d_with_indices(x, 2)[1])
    assert torch.equal(gi, want) and gi.stride() == ref.maxpool2x2_backward(g, ar, *shape[2:]).stride()


def test_maxpool2x2_backward_mixed_layouts():
    """A gradient in another memory format than the argmax (the strided path of the kernel)."""
    x, gen = _pool_input((2, 6, 8, 6), True, 3)
    _, a = torch.ops.gxnor.maxpool2x2(x)
    g = torch.randn(2, 6, 4, 3, generator=gen)  # NCHW while a is channels-last
    import gxnor_cuda.reference as ref

    assert torch.equal(torch.ops.gxnor.maxpool2x2_backward(g, a, 8, 6), ref.maxpool2x2_backward(g, a, 8, 6))


def test_maxpool2x2_opcheck():
    x, _ = _pool_input((2, 5, 6, 7), True, 1)
    x = x.nan_to_num(0.5)  # opcheck compares outputs without equal_nan; NaN is the tests' above
    torch.library.opcheck(torch.ops.gxnor.maxpool2x2, (x,))
    _, a = torch.ops.gxnor.maxpool2x2(x)
    torch.library.opcheck(torch.ops.gxnor.maxpool2x2_backward, (torch.randn(a.shape), a, 6, 7))


@pytest.mark.parametrize("impl", ["native", "reference"])
def test_maxpool2x2_bad_input(impl):
    import gxnor_cuda.reference as ref

    pool = torch.ops.gxnor.maxpool2x2 if impl == "native" else ref.maxpool2x2
    back = torch.ops.gxnor.maxpool2x2_backward if impl == "native" else ref.maxpool2x2_backward
    with pytest.raises(RuntimeError, match="x: expected dtype torch.float32, got"):
        pool(torch.zeros(1, 1, 2, 2, dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"x: expected shape \(N, C, H, W\)"):
        pool(torch.zeros(2, 2, 2))
    with pytest.raises(RuntimeError, match=r"x: expected H, W >= 2 \(a 2 x 2 window\), got shape \(1, 1, 1, 5\)"):
        pool(torch.zeros(1, 1, 1, 5))
    a = torch.zeros(1, 2, 3, 3, dtype=torch.uint8)
    with pytest.raises(RuntimeError, match="argmax: expected dtype torch.uint8, got"):
        back(torch.zeros(1, 2, 3, 3), a.long(), 6, 6)
    with pytest.raises(RuntimeError, match=r"argmax: expected grad's shape"):
        back(torch.zeros(1, 2, 3, 3), a, 8, 6)
