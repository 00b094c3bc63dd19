"""Under autocast, a GXNOR layer's float x ternary products (a float-input layer's forward, every
backward product) run in the autocast dtype, as nn.Linear's do (on a GPU: the bf16 tensor cores),
while the ternary x ternary products stay exact. Checked on the CPU's bf16 autocast: the products
see bf16 operands, and the results stay close to the float32 step's."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gxnor_cuda import functional as F
from gxnor_cuda.nn import GXNORConv2d, GXNORLinear, TernaryActivation


@pytest.fixture
def matmul_dtypes(monkeypatch):
    """The dtypes of x in every ternary_matmul call."""
    seen = []
    orig = F.ternary_matmul

    def spy(x, *args, **kwargs):
        seen.append(x.dtype)
        return orig(x, *args, **kwargs)

    monkeypatch.setattr(F, "ternary_matmul", spy)
    return seen


def _step(m, x, autocast):
    m = copy.deepcopy(m)
    x = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        y = m(x)
    y.float().pow(2).sum().backward()
    return y.float(), x.grad, [p.grad for p in m.parameters() if p.grad is not None]


def _close(a, b, tol):
    scale = b.abs().max().clamp_min(1e-6)
    assert ((a - b).abs().max() / scale).item() < tol


@pytest.mark.parametrize("fused", [False, True])
def test_linear_products_in_bf16_under_autocast(matmul_dtypes, fused):
    torch.manual_seed(0)
    q = TernaryActivation(0.5, 0.25) if fused else None
    m = GXNORLinear(96, 40, input_quantizer=q)
    x = torch.randn(24, 96)
    y32, gx32, gw32 = _step(m, x, False)
    assert set(matmul_dtypes) == {torch.float32}
    matmul_dtypes.clear()
    y16, gx16, gw16 = _step(m, x, True)
    # float input: forward, dX, (dW is a dense matmul); ternary input: dX and dW = dY^T X
    assert matmul_dtypes == [torch.bfloat16] * 2, matmul_dtypes
    if fused:
        assert torch.equal(y16, y32)  # the ternary x ternary forward is exact in either mode
    _close(y16, y32, 2e-2)
    _close(gx16, gx32, 2e-2)
    for a, b in zip(gw16, gw32, strict=True):
        _close(a, b, 2e-2)
        assert a.dtype == torch.float32


@pytest.mark.parametrize("fused", [False, True])
def test_conv_products_in_bf16_under_autocast(monkeypatch, fused):
    """The float convs see bf16 operands (the unpacked route, one platform call for both gradients)."""
    torch.manual_seed(1)
    q = TernaryActivation(0.5, 0.25) if fused else None
    m = GXNORConv2d(8, 16, 3, padding=1, input_quantizer=q)
    x = torch.randn(2, 8, 7, 7)
    y32, gx32, gw32 = _step(m, x, False)
    seen = []
    orig = torch.ops.aten.convolution_backward

    class Spy:
        def __call__(self, gy, *args):
            seen.append(gy.dtype)
            return orig(gy, *args)

    import gxnor_cuda.autograd_conv as agc

    monkeypatch.setattr(agc.torch.ops.aten, "convolution_backward", Spy())
    y16, gx16, gw16 = _step(m, x, True)
    assert seen == [torch.bfloat16], seen
    if fused:
        assert torch.equal(y16, y32)
    _close(y16, y32, 2e-2)
    _close(gx16, gx32, 3e-2)
    _close(gw16[0], gw32[0], 3e-2)


def test_without_autocast_nothing_changes(matmul_dtypes):
    """No autocast: float32 products, bit-identical to calling the layer inside autocast(enabled=False)."""
    torch.manual_seed(2)
    m = nn.Sequential(GXNORLinear(32, 16), nn.ReLU(), GXNORLinear(16, 4, input_quantizer=TernaryActivation()))
    x = torch.randn(5, 32)
    a = _step(m, x, False)
    with torch.autocast("cpu", enabled=False):
        b = _step(m, x, False)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert set(matmul_dtypes) == {torch.float32}
