"""autograd_conv.conv_backward (the float-side grads of the ternary convs) against aten's backward
on NCHW operands, in both layouts it picks; float_conv.nchw re-strides a one-channel view."""

from __future__ import annotations

import pytest
import torch

from gxnor_cuda import float_conv as fc
from gxnor_cuda.autograd_conv import conv_backward


def test_nchw_restrides_a_one_channel_channels_last_view():
    t = torch.randn(2, 5, 4, 1).permute(0, 3, 1, 2)  # (2, 1, 5, 4), channels-last strides
    assert t.is_contiguous() and t.stride() != (20, 20, 4, 1)
    u = fc.nchw(t)
    assert u.stride() == (20, 20, 4, 1) and torch.equal(u, t)
    v = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    assert fc.nchw(v).stride() == (60, 20, 5, 1) and torch.equal(fc.nchw(v), v)


@pytest.mark.parametrize("c,o,groups,cl", [(1, 6, 1, True), (1, 6, 1, False), (6, 4, 2, True), (4, 4, 4, True),
                                           (5, 3, 1, False)])
def test_conv_backward_matches_aten(c, o, groups, cl):
    torch.manual_seed(5)
    x = torch.randint(-1, 2, (2, c, 7, 6)).float()
    wd = torch.randint(-1, 2, (o, c // groups, 3, 3)).float()
    spec = ((1, 2), (1, 0), (1, 1), groups)
    gy = torch.randn(torch.nn.functional.conv2d(x, wd, None, *spec).shape)
    want_gx, want_gw, _ = torch.ops.aten.convolution_backward(
        gy.double(), x.double(), wd.double(), None, *spec[:3], False, [0, 0], groups, [True, True, False])
    fmt = torch.channels_last if cl else torch.contiguous_format
    gx, gw = conv_backward(gy.contiguous(memory_format=fmt), x.contiguous(memory_format=fmt), wd, spec, True)
    torch.testing.assert_close(gx.double(), want_gx, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gw.double(), want_gw.permute(0, 2, 3, 1), rtol=1e-5, atol=1e-5)
    gx_only, none = conv_backward(gy, x, wd, spec, True, False)
    assert none is None
    torch.testing.assert_close(gx_only.double(), want_gx, rtol=1e-5, atol=1e-5)
