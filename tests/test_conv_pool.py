"""gxnor::conv2d_maxpool2x2 (conv + 2x2 max-pool in one pass) and its weight gradient: bit-exact against
the reference twin and the unfused conv -> max-pool on integer-valued inputs (every sum exact) on every
CPU ISA path, the same bits on every path for random floats, opcheck, errors naming the argument; and
GXNORConv2d(max_pool=True) against the unfused layer + MaxPool2x2 in values and gradients."""

from __future__ import annotations

import pytest
import torch

import gxnor_cuda.reference as ref
from gxnor_cuda import _backend, _registry
from gxnor_cuda import functional as F
from gxnor_cuda.nn import GXNORConv2d
from gxnor_cuda.pool import MaxPool2x2
from tests.helpers import backend_params, device_for

# (x shape, w shape, stride, padding, dilation)
CASES = [
    ((3, 1, 28, 28), (32, 1, 5, 5), 1, 0, 1),  # the MNIST first layer
    ((2, 3, 11, 9), (40, 3, 3, 3), 1, 1, 1),  # channel tail past one block, odd conv size, padding
    ((2, 2, 13, 12), (7, 2, 2, 3), (2, 1), (0, 1), (1, 2)),  # strides, dilation, few channels
    ((40, 1, 6, 6), (5, 1, 3, 3), 1, 0, 1),  # more pooled rows than one gradient block
    ((0, 1, 6, 6), (4, 1, 3, 3), 1, 0, 1),  # an empty batch
]


def _ints(shape, gen, lo=-2, hi=3):
    return torch.randint(lo, hi, shape, generator=gen).float()


@pytest.mark.parametrize("xs, ws, s, p, d", CASES)
def test_equals_reference_and_unfused_bit_exact(xs, ws, s, p, d, cpu_isa):
    gen = torch.Generator().manual_seed(sum(xs) + sum(ws))
    x, w = _ints(xs, gen), _ints(ws, gen, -1, 2)  # many equal conv outputs: the pool's tie rule decides
    y, a = torch.ops.gxnor.conv2d_maxpool2x2(x, w, s, p, d)
    yr, ar = ref.conv2d_maxpool2x2(x, w, s, p, d)
    assert torch.equal(y, yr) and torch.equal(a, ar) and y.stride() == yr.stride() and a.stride() == ar.stride()
    full = torch.nn.functional.conv2d(x, w, None, s, p, d)
    assert torch.equal(y, torch.nn.functional.max_pool2d(full, 2))
    g = _ints(y.shape, gen).contiguous(memory_format=torch.channels_last)
    gw = torch.ops.gxnor.conv2d_maxpool2x2_weight_grad(g, a, x, ws[2:], s, p, d)
    assert torch.equal(gw, ref.conv2d_maxpool2x2_weight_grad(g, a, x, ws[2:], s, p, d))
    # the unfused route: the pooled gradient unpooled, then the conv's weight gradient
    gi = torch.ops.aten.max_pool2d_with_indices_backward(g, full, [2, 2], [2, 2], [0, 0], [1, 1], False,
                                                         torch.nn.functional.max_pool2d_with_indices(full, 2)[1])
    want = torch.nn.grad.conv2d_weight(x, ws, gi, s, p, d)
    assert torch.equal(gw, want) and gw.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("xs, ws, s, p, d", CASES[:3])
def test_random_floats_same_bits_on_every_isa(xs, ws, s, p, d):
    from gxnor_cuda import _backend

    if not _backend.available("cpp"):
        pytest.skip("native library not loaded")
    gen = torch.Generator().manual_seed(7)
    x, w = torch.randn(xs, generator=gen), torch.randn(ws, generator=gen)
    ns = torch.ops.gxnor_native
    before, outs = ns.cpu_isa(), []
    try:
        for isa in ("scalar", "avx2", "avx512"):
            if ns.set_cpu_isa(isa).startswith(isa):
                y, a = torch.ops.gxnor.conv2d_maxpool2x2(x, w, s, p, d)
                gw = torch.ops.gxnor.conv2d_maxpool2x2_weight_grad(torch.ones_like(y), a, x, ws[2:], s, p, d)
                outs.append((y, a, gw))
    finally:
        ns.set_cpu_isa(before)
    for y, a, gw in outs[1:]:
        assert torch.equal(y, outs[0][0]) and torch.equal(a, outs[0][1]) and torch.equal(gw, outs[0][2])
    yr, _ = ref.conv2d_maxpool2x2(x, w, s, p, d)  # float64 then rounded: the fma chain is within rounding
    torch.testing.assert_close(outs[0][0], yr, rtol=1e-5, atol=1e-5)


def test_nan_input_follows_the_pool_rule():
    gen = torch.Generator().manual_seed(3)
    x, w = _ints((2, 1, 10, 10), gen), _ints((6, 1, 3, 3), gen, -1, 2)
    x.view(-1)[::23] = float("nan")
    y, a = torch.ops.gxnor.conv2d_maxpool2x2(x, w)
    yr, ar = ref.conv2d_maxpool2x2(x, w)
    assert torch.equal(y.nan_to_num(9.0), yr.nan_to_num(9.0)) and torch.equal(a, ar)
    g = torch.ones_like(y)
    gw = torch.ops.gxnor.conv2d_maxpool2x2_weight_grad(g, a, x, [3, 3])
    assert torch.equal(gw.nan_to_num(9.0), ref.conv2d_maxpool2x2_weight_grad(g, a, x, [3, 3]).nan_to_num(9.0))


def test_opcheck():
    gen = torch.Generator().manual_seed(1)
    x, w = torch.randn(2, 2, 9, 8, generator=gen), torch.randn(5, 2, 3, 3, generator=gen)
    torch.library.opcheck(torch.ops.gxnor.conv2d_maxpool2x2, (x, w, [1, 1], [1, 0], [1, 1]))
    y, a = torch.ops.gxnor.conv2d_maxpool2x2(x, w, [1, 1], [1, 0], [1, 1])
    torch.library.opcheck(torch.ops.gxnor.conv2d_maxpool2x2_weight_grad,
                          (torch.randn(y.shape, generator=gen), a, x, [3, 3], [1, 1], [1, 0], [1, 1]))


def _triton():
    if not _backend.available("triton"):
        pytest.skip("triton not loaded")
    t = _registry.triton_table()
    return t["conv2d_maxpool2x2"], t["conv2d_maxpool2x2_weight_grad"]


@pytest.mark.parametrize("xs, ws, s, p, d", CASES)
def test_triton_equals_reference_bit_exact(xs, ws, s, p, d):
    """The GPU twin (the interpreter here): integer-valued data, where both round nothing."""
    fwd, wgrad = _triton()
    dev = device_for("triton")
    gen = torch.Generator().manual_seed(sum(xs) + sum(ws))
    x, w = _ints(xs, gen), _ints(ws, gen, -1, 2)
    y, a = fwd(x.to(dev), w.to(dev), s, p, d)
    yr, ar = ref.conv2d_maxpool2x2(x, w, s, p, d)
    assert torch.equal(y.cpu(), yr) and torch.equal(a.cpu(), ar) and y.stride() == yr.stride()
    g = _ints(y.shape, gen).contiguous(memory_format=torch.channels_last)
    gw = wgrad(g.to(dev), a, x.to(dev), ws[2:], s, p, d)
    want = ref.conv2d_maxpool2x2_weight_grad(g, ar, x, ws[2:], s, p, d)
    assert torch.equal(gw.cpu(), want) and gw.stride() == want.stride()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: the Triton kernels' fma rounds once there")
def test_triton_on_the_gpu_gives_the_cpu_kernels_bits():
    from gxnor_cuda import _backend

    if not _backend.available("cpp"):
        pytest.skip("native library not loaded")
    fwd, wgrad = _triton()
    gen = torch.Generator().manual_seed(4)
    x, w = torch.randn(64, 1, 28, 28, generator=gen), torch.randn(32, 1, 5, 5, generator=gen)
    y, a = fwd(x.cuda(), w.cuda())
    yc, ac = torch.ops.gxnor.conv2d_maxpool2x2(x, w)
    assert torch.equal(y.cpu(), yc) and torch.equal(a.cpu(), ac)
    g = torch.randn(y.shape, generator=gen).contiguous(memory_format=torch.channels_last)
    gw = wgrad(g.cuda(), a, x.cuda(), [5, 5])
    assert torch.equal(gw.cpu(), torch.ops.gxnor.conv2d_maxpool2x2_weight_grad(g, ac, x, [5, 5]))


@pytest.mark.parametrize("impl", ["native", "reference", "triton"])
def test_bad_input_names_the_argument(impl):
    if impl == "triton":
        fwd, wg = _triton()
    else:
        fwd = torch.ops.gxnor.conv2d_maxpool2x2 if impl == "native" else ref.conv2d_maxpool2x2
        wg = torch.ops.gxnor.conv2d_maxpool2x2_weight_grad if impl == "native" else ref.conv2d_maxpool2x2_weight_grad
    x, w = torch.zeros(1, 2, 6, 6), torch.zeros(3, 2, 3, 3)
    with pytest.raises(RuntimeError, match="x: expected dtype torch.float32, got"):
        fwd(x.double(), w)
    with pytest.raises(RuntimeError, match=r"w: expected shape \(O, C, kh, kw\) with C = 2"):
        fwd(x, torch.zeros(3, 1, 3, 3))
    with pytest.raises(RuntimeError, match="w: expected dtype torch.float32"):
        fwd(x, w.half())
    with pytest.raises(RuntimeError, match=r"stride: expected ints >= 1, got \[0, 1\]"):
        fwd(x, w, [0, 1])
    with pytest.raises(RuntimeError, match=r"x: expected a conv output of at least 2 x 2 .* got \(1, 4\)"):
        fwd(torch.zeros(1, 2, 3, 6), w)
    y, a = fwd(x, w)
    with pytest.raises(RuntimeError, match="argmax: expected dtype torch.uint8"):
        wg(y, a.long(), x, [3, 3])
    with pytest.raises(RuntimeError, match=r"grad: expected shape \(N, O, Ho // 2, Wo // 2\) = \(1, O, 2, 2\)"):
        wg(torch.zeros(1, 3, 3, 3), a, x, [3, 3])
    with pytest.raises(RuntimeError, match="kernel_size: expected ints >= 1"):
        wg(y, a, x, [0, 3])


@pytest.mark.parametrize("backend", backend_params())
def test_functional_on_every_backend(backend):
    gen = torch.Generator().manual_seed(9)
    x, w = _ints((3, 2, 9, 10), gen), _ints((6, 2, 3, 3), gen, -1, 2)
    dev = device_for(backend)
    y, a = F.conv2d_maxpool2x2(x.to(dev), w.to(dev), 1, (1, 0), backend=backend)
    yr, ar = ref.conv2d_maxpool2x2(x, w, 1, (1, 0))
    assert torch.equal(y.cpu(), yr) and torch.equal(a.cpu(), ar)
    g = _ints(y.shape, gen)
    gw = F.conv2d_maxpool2x2_weight_grad(g.to(dev), a, x.to(dev), 3, 1, (1, 0), backend=backend)
    assert torch.equal(gw.cpu(), ref.conv2d_maxpool2x2_weight_grad(g, ar, x, [3, 3], 1, (1, 0)))


def _layer_pair(n_states=1, c=1):
    torch.manual_seed(5)
    fused = GXNORConv2d(c, 8, 3, bias=False, n_states=n_states, max_pool=True)
    plain = GXNORConv2d(c, 8, 3, bias=False, n_states=n_states)
    plain.load_state_dict(fused.state_dict())
    return fused, plain


@pytest.mark.parametrize("n_states", [1, 2])
def test_layer_equals_conv_then_maxpool(n_states):
    fused, plain = _layer_pair(n_states, 2)
    gen = torch.Generator().manual_seed(2)
    x = _ints((4, 2, 12, 11), gen)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = fused(xa), MaxPool2x2()(plain(xb))
    assert torch.equal(ya, yb) and ya.is_contiguous(memory_format=torch.channels_last)
    g = _ints(ya.shape, gen)
    ya.backward(g)
    yb.backward(g)
    assert torch.equal(fused.weight.grad, plain.weight.grad)
    assert torch.equal(xa.grad, xb.grad)


def test_layer_keeps_the_argmax_not_the_conv_output():
    fused, _ = _layer_pair()
    x = torch.randn(6, 1, 28, 28)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        fused(x)
    conv_out = 6 * 8 * 26 * 26 * 4
    assert sum(t.numel() * t.element_size() for t in saved if t is not x) < conv_out / 8


def test_layer_falls_back_where_no_fused_kernel_applies():
    """bias, a quantized input, float64: conv, epilogue, then MaxPool2x2 (the same values)."""
    torch.manual_seed(0)
    m = GXNORConv2d(1, 4, 3, bias=True, max_pool=True)
    m.bias.data.normal_()
    x = torch.randn(2, 1, 8, 8)
    plain = GXNORConv2d(1, 4, 3, bias=True)
    plain.load_state_dict(m.state_dict())
    assert torch.equal(m(x), MaxPool2x2()(plain(x)))
    assert "max_pool=True" in repr(m)
    with pytest.raises(ValueError, match="max_pool: expected a bool, got 2"):
        GXNORConv2d(1, 4, 3, max_pool=2)


# xnor_conv2d_maxpool2x2: (N, C, H, W, O, k, stride, padding, groups)
XCASES = [
    (3, 32, 12, 12, 64, 5, 1, 0, 1),  # the MNIST conv2
    (2, 16, 9, 9, 24, 3, 1, 0, 1),  # odd conv output (7 x 7): the last row and column dropped
    (2, 16, 11, 10, 16, 3, 2, 1, 2),  # stride, padding, groups
    (3, 64, 33, 33, 256, 3, 1, 0, 1),  # several chunks of row pairs, odd conv output across them
]


def _packed_conv_operands(n, c, h, w, o, k, groups, gen):
    from gxnor_cuda import functional as F

    x = torch.randint(-1, 2, (n, c, h, w), generator=gen).float()
    wt = torch.randint(-1, 2, (o, c // groups, k, k), generator=gen).float()
    return F.pack_conv_input(x, groups), F.pack_conv_weight(wt)


@pytest.mark.parametrize("n, c, h, w, o, k, s, p, groups", XCASES)
def test_xnor_conv2d_maxpool2x2_equals_conv_then_pool(n, c, h, w, o, k, s, p, groups, cpu_isa):
    gen = torch.Generator().manual_seed(n + c + o)
    xp, wp = _packed_conv_operands(n, c, h, w, o, k, groups, gen)
    y, a = torch.ops.gxnor.xnor_conv2d_maxpool2x2(xp, wp, c, [s, s], [p, p], [1, 1], groups)
    yr, ar = ref.xnor_conv2d_maxpool2x2(xp, wp, c, s, p, 1, groups)
    assert torch.equal(y, yr) and torch.equal(a, ar) and y.stride() == yr.stride() and a.stride() == ar.stride()
    full = F.xnor_conv2d(xp, wp, c, s, p, 1, groups)  # int32 accumulators
    assert torch.equal(y, torch.nn.functional.max_pool2d(full.float(), 2))


def test_xnor_conv2d_maxpool2x2_opcheck_and_errors():
    gen = torch.Generator().manual_seed(2)
    xp, wp = _packed_conv_operands(2, 8, 7, 6, 5, 3, 1, gen)
    torch.library.opcheck(torch.ops.gxnor.xnor_conv2d_maxpool2x2, (xp, wp, 8, [1, 1], [1, 1], [1, 1], 1))
    for fn in (torch.ops.gxnor.xnor_conv2d_maxpool2x2, ref.xnor_conv2d_maxpool2x2):
        with pytest.raises(RuntimeError, match=r"x: expected a conv output of at least 2 x 2 .* got \(5, 1\)"):
            fn(xp, wp, 8, [1, 4], [0, 0], [1, 1], 1)


@pytest.mark.parametrize("groups", [1, 2])
def test_ternary_input_layer_equals_conv_then_maxpool(groups):
    """GXNORConv2d(max_pool=True) with the fused ternary input: the pool on the accumulators in the conv
    pass, the same values and gradients as the layer followed by MaxPool2x2."""
    from gxnor_cuda.nn import TernaryActivation

    torch.manual_seed(6)
    fused = GXNORConv2d(8, 12, 3, padding=1, groups=groups, bias=False, max_pool=True,
                        input_quantizer=TernaryActivation(0.5, 0.5))
    plain = GXNORConv2d(8, 12, 3, padding=1, groups=groups, bias=False, input_quantizer=TernaryActivation(0.5, 0.5))
    plain.load_state_dict(fused.state_dict())
    h = torch.randn(3, 8, 10, 9)
    ha, hb = h.clone().requires_grad_(), h.clone().requires_grad_()
    ya, yb = fused(ha), MaxPool2x2()(plain(hb))
    assert torch.equal(ya, yb)
    g = torch.randn(ya.shape)
    ya.backward(g)
    yb.backward(g)
    assert torch.equal(ha.grad, hb.grad) and torch.equal(fused.weight.grad, plain.weight.grad)
    with torch.no_grad():
        assert torch.equal(fused(h), yb)
