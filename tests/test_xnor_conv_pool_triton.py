"""The Triton xnor_conv2d_maxpool2x2 (the ternary conv with the 2x2 max-pool in its epilogue), both
conv loops (int8 tensor cores and CUDA-core popcount): bit-exact against the reference twin (conv,
then maxpool2x2) in maxima, argmax and strides on fresh random ternary operands, which tie often,
so the first-maximum rule is exercised; on a GPU when there is one, else the interpreter."""

from __future__ import annotations

import pytest
import torch

import gxnor_cuda.reference as ref
from gxnor_cuda import _backend, _registry
from gxnor_cuda import functional as F
from tests.helpers import device_for

pytestmark = pytest.mark.skipif(not _backend.available("triton"), reason="triton not loaded")

# (N, C, H, W, O, k, stride, padding, dilation, groups)
CASES = [
    (2, 32, 12, 12, 64, 5, 1, 0, 1, 1),  # the MNIST conv2
    (1, 64, 10, 10, 64, 3, 1, 1, 1, 1),  # a CIFAR-like layer (the tensor-core rule picks "tc")
    (2, 16, 9, 8, 24, 3, 1, 0, 1, 1),  # odd conv output (7 x 6): the last row dropped
    (2, 16, 11, 10, 16, 3, 2, 1, 2, 2),  # stride, padding, dilation, groups
    (1, 130, 5, 7, 70, 2, 1, 0, 2, 1),  # channels past one 128-value K step, columns past one tile
    (3, 4, 6, 5, 4, 1, 1, 0, 1, 1),  # 1x1 kernel, few channels: many ties
]


def _operands(n, c, h, w, o, k, groups, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(-1, 2, (n, c, h, w), generator=gen).float()
    wt = torch.randint(-1, 2, (o, c // groups, k, k), generator=gen).float()
    return F.pack_conv_input(x, groups, backend="reference"), F.pack_conv_weight(wt, backend="reference")


@pytest.mark.parametrize("method", ["popcount", "tc"])
@pytest.mark.parametrize("n, c, h, w, o, k, s, p, d, groups", CASES)
def test_equals_conv_then_pool_bit_exact(n, c, h, w, o, k, s, p, d, groups, method):
    from gxnor_cuda._triton.xnor_conv_pool import xnor_conv2d_maxpool2x2

    dev = device_for("triton")
    xp, wp = _operands(n, c, h, w, o, k, groups, seed=n * 1000 + c + o)
    y, a = xnor_conv2d_maxpool2x2(xp.to(dev), wp.to(dev), c, s, p, d, groups, method=method)
    yr, ar = ref.xnor_conv2d_maxpool2x2(xp, wp, c, s, p, d, groups)
    assert y.dtype == torch.float32 and a.dtype == torch.uint8
    assert y.stride() == yr.stride() and a.stride() == ar.stride()
    assert torch.equal(y.cpu(), yr) and torch.equal(a.cpu(), ar)


def test_the_registered_op_pools_in_the_conv_epilogue():
    """The Triton table's entry is this module's kernel (not conv, then pool), and chooses the conv loop
    as xnor_conv2d does."""
    from gxnor_cuda._triton import xnor_conv_pool

    assert _registry.triton_table()["xnor_conv2d_maxpool2x2"] is xnor_conv_pool.xnor_conv2d_maxpool2x2
    assert F.gpu_conv_method(64, 64, 9) == "tc" and F.gpu_conv_method(32, 64, 25) == "popcount"


def test_empty_batch_and_errors():
    from gxnor_cuda._triton.xnor_conv_pool import xnor_conv2d_maxpool2x2

    dev = device_for("triton")
    xp, wp = _operands(0, 8, 6, 6, 4, 3, 1, seed=1)
    y, a = xnor_conv2d_maxpool2x2(xp.to(dev), wp.to(dev), 8)
    assert y.shape == a.shape == (0, 4, 2, 2)
    xp, wp = _operands(1, 8, 4, 6, 4, 3, 1, seed=2)
    with pytest.raises(RuntimeError, match=r"x: expected a conv output of at least 2 x 2 .* got \(2, 1\)"):
        xnor_conv2d_maxpool2x2(xp.to(dev), wp.to(dev), 8, (1, 4))
    with pytest.raises(RuntimeError, match="w: expected packed dtype torch.int32, got torch.float32"):
        xnor_conv2d_maxpool2x2(xp.to(dev), wp.float().to(dev), 8)
    big_c = 2**16  # 9 taps x 65536 channels: past the tensor cores' int32 accumulator
    xb = torch.zeros((1, 3, 3, 2, big_c // 32), dtype=torch.int32, device=dev)
    wb = torch.zeros((2, 3, 3, 2, big_c // 32), dtype=torch.int32, device=dev)
    with pytest.raises(RuntimeError, match=r"w: expected kh \* kw \* C / groups at most .* got 589824"):
        xnor_conv2d_maxpool2x2(xb, wb, big_c, 1, 1, method="tc")
