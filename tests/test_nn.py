"""Modules, activation gradients, convert, state_dict round trips, compile, optimizer resume."""

from __future__ import annotations

import io
import math
import warnings

import pytest
import torch
from torch import nn

from gxnor_cuda import float_conv as fc
from gxnor_cuda import reference as ref
from gxnor_cuda.nn import GXNORConv2d, GXNORLinear, TernaryActivation, convert, twn_ternarize, window_grad
from gxnor_cuda.optim import DST


@pytest.mark.parametrize("window", ["rect", "tri", "bell"])
def test_activation_gradient_matches_closed_form(window):
    r, a = 1.0, 0.5
    x = torch.linspace(-2.5, 2.5, 1001, requires_grad=True)
    y = TernaryActivation(r, a, window)(x)
    assert torch.equal(y.detach(), torch.where(x >= r, 1.0, torch.where(x <= -r, -1.0, 0.0)).detach())
    y.sum().backward()
    d = (x.detach().abs() - r).abs()
    closed = {"rect": (d <= a).float() / (2 * a), "tri": torch.clamp(1 - d / a, min=0) / a,
              "bell": torch.exp(-0.5 * (d / a) ** 2) / (a * math.sqrt(2 * math.pi))}[window]
    torch.testing.assert_close(x.grad, closed)
    # unit area per jump: integrate the window over x > 0
    xs = torch.linspace(0, 6, 600001)
    area = float(window_grad(xs, r, a, window).sum() * (xs[1] - xs[0]))
    # the bell's tail below x = 0 (beyond 2 std at r = 1, a = 0.5) belongs to the mirrored jump
    tail = 0.5 * math.erfc(r / a / math.sqrt(2)) if window == "bell" else 0.0
    assert abs(area - (1.0 - tail)) < 1e-3


def _dense_linear(m: GXNORLinear, x):
    return x @ m.weight.T + (m.bias if m.bias is not None else 0)


@pytest.mark.parametrize("n_states", [0, 1, 2])
def test_linear_forward_backward_match_dense(n_states):
    m = GXNORLinear(70, 9, n_states=n_states)
    x = torch.randn(5, 70, requires_grad=True)
    y = m(x)
    torch.testing.assert_close(y, _dense_linear(m, x.detach()), rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(x.grad, g @ m.weight, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.weight.grad, g.T @ x.detach(), rtol=1e-5, atol=1e-5)


def test_fused_ternary_input_matches_dense():
    q = TernaryActivation(1.0, 0.5)
    m = GXNORLinear(130, 7, input_quantizer=q)
    h = (torch.randn(6, 130) * 1.5).requires_grad_(True)
    y = m(h)
    xq = torch.where(h >= 1, 1.0, torch.where(h <= -1, -1.0, 0.0)).detach()
    torch.testing.assert_close(y, xq @ m.weight.T, rtol=0, atol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    win = (((h.detach().abs() - 1).abs()) <= 0.5).float()
    torch.testing.assert_close(h.grad, (g @ m.weight) * win, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.weight.grad, g.T @ xq, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride,padding,quant", [(1, 0, False), (2, 1, True), (1, 2, True)])
def test_conv_matches_conv2d(stride, padding, quant):
    q = TernaryActivation() if quant else None
    m = GXNORConv2d(3, 5, 3, stride=stride, padding=padding, input_quantizer=q)
    x = torch.randn(2, 3, 9, 8) * 1.5
    xin = torch.where(x >= 1, 1.0, torch.where(x <= -1, -1.0, 0.0)) if quant else x
    want = torch.nn.functional.conv2d(xin, m.weight, m.bias, stride, padding)
    torch.testing.assert_close(m(x), want, rtol=1e-5, atol=1e-4)


def test_weight_is_packed_two_bits():
    m = GXNORLinear(1000, 64)
    assert m.weight_q.dtype == torch.int32 and m.weight_q.shape == (64, 2, 32)
    assert m.weight_q.numel() * 4 * 8 / (64 * 1024) == 2.0
    assert set(m.weight.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert int(ref.count_noncanonical(m.weight_q.data, 1000)) == 0


def test_from_float_and_convert():
    lin = nn.Linear(20, 6)
    g = GXNORLinear.from_float(lin)
    vals, scale = twn_ternarize(lin.weight.detach())
    assert torch.equal(g.weight, vals.float()) and torch.equal(g.weight_scale.detach(), scale)
    assert (g.weight != 0).float().mean() > 0.3, "real weights (|w| ~ 0.1) must not all round to 0"
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.Linear(16, 3))
    convert(model)
    assert isinstance(model[0], nn.Conv2d) and isinstance(model[2], GXNORLinear) and isinstance(model[3], nn.Linear)
    convert(model, skip=())
    assert isinstance(model[0], GXNORConv2d) and isinstance(model[3], GXNORLinear)
    with pytest.warns(UserWarning, match="no nn.Linear or nn.Conv2d layer was converted"):
        convert(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="n_states: expected N in"):
        convert(nn.Sequential(nn.Linear(2, 2)), n_states=9)


def test_state_dict_round_trips():
    m = GXNORLinear(100, 8)
    sd = m.state_dict()
    assert {"weight_q", "format_version", "bias"} <= set(sd)
    m2 = GXNORLinear(100, 8)
    m2.load_state_dict(sd, strict=True)
    assert torch.equal(m2.weight, m.weight)
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    m3 = GXNORLinear(100, 8)
    m3.load_state_dict(torch.load(buf, weights_only=True), strict=True)
    assert torch.equal(m3.weight, m.weight)
    fl = nn.Linear(100, 8)
    m4 = GXNORLinear(100, 8, scaled=True)
    m4.load_state_dict(fl.state_dict(), strict=True)  # a float checkpoint is ternarised, its scale kept
    vals, scale = twn_ternarize(fl.weight.detach())
    assert torch.equal(m4.weight, vals.float()) and torch.equal(m4.weight_scale.detach(), scale)
    with pytest.warns(UserWarning, match="no weight_scale"):  # an unscaled layer says what it drops
        GXNORLinear(100, 8).load_state_dict(fl.state_dict(), strict=True)
    with pytest.raises(RuntimeError, match="size mismatch|expected shape"):
        GXNORLinear(100, 9).load_state_dict(sd, strict=True)


def test_compile_fullgraph_inference():
    m = GXNORLinear(64, 10, input_quantizer=TernaryActivation()).eval()
    x = torch.randn(4, 64)
    with torch.no_grad():
        want = m(x)
        got = torch.compile(m, fullgraph=True, backend="eager")(x)
    torch.testing.assert_close(got, want)


def _train_steps(model, opt, xs, n):
    for i in range(n):
        opt.zero_grad()
        model(xs[i]).pow(2).mean().backward()
        opt.step()


@pytest.mark.parametrize("base", ["sgd", "normalized", "rownorm", "adam"])
def test_dst_resume_is_bit_identical(base):
    torch.manual_seed(0)
    xs = torch.randn(6, 8, 40)
    mk = lambda: nn.Sequential(GXNORLinear(40, 30), nn.BatchNorm1d(30), GXNORLinear(30, 5,
                                                                                   input_quantizer=TernaryActivation()))
    torch.manual_seed(1)
    a = mk()
    oa = DST(a.parameters(), lr=0.05, base=base, seed=123)
    _train_steps(a, oa, xs, 6)
    torch.manual_seed(1)
    b = mk()
    ob = DST(b.parameters(), lr=0.05, base=base, seed=123)
    _train_steps(b, ob, xs[:3], 3)
    sd_m, sd_o = b.state_dict(), ob.state_dict()
    torch.manual_seed(2)
    c = mk()
    c.load_state_dict(sd_m)
    oc = DST(c.parameters(), lr=0.05, base=base, seed=999)
    oc.load_state_dict(sd_o)
    _train_steps(c, oc, xs[3:], 3)
    for (ka, va), (_kc, vc) in zip(a.state_dict().items(), c.state_dict().items(), strict=True):
        assert torch.equal(va, vc), ka


@pytest.mark.parametrize("base", ["normalized", "rownorm"])
def test_dst_normalized_bases_scale_the_gradient(base):
    """normalized / rownorm == sgd fed the gradient divided by its tensor / per-row RMS (same seed)."""
    torch.manual_seed(3)
    g = torch.randn(6, 50) * torch.logspace(-3, 1, 6)[:, None]  # rows of very different scale
    dims = dict(dim=1, keepdim=True) if base == "rownorm" else {}
    scaled = g / g.pow(2).mean(**dims).sqrt()
    a, b = GXNORLinear(50, 6), GXNORLinear(50, 6)
    b.load_state_dict(a.state_dict())
    w0 = a.weight_q.clone()
    a.weight.grad, b.weight.grad = g, scaled
    DST(a.parameters(), lr=0.3, base=base, seed=7).step()
    DST(b.parameters(), lr=0.3, base="sgd", seed=7).step()
    assert torch.equal(a.weight_q, b.weight_q)
    assert not torch.equal(a.weight_q, w0)


def test_dst_nan_gradient_warns_once_and_counts():
    m = GXNORLinear(10, 4)
    opt = DST(m.parameters(), lr=0.1, seed=1)
    w0 = m.weight_q.clone()
    m.weight.grad = torch.full((4, 10), float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()  # no host sync, so no warning inside the step
    assert torch.equal(m.weight_q, w0) and opt.nonfinite_total == 40
    with pytest.warns(UserWarning, match="non-finite gradient entries"):
        assert opt.warn_nonfinite() == 40
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        assert opt.warn_nonfinite() == 80


def test_dst_float_parameters_adam_skips_non_finite_entries():
    """A float parameter's Adam step in DST: non-finite gradient entries are counted and enter the
    moments as 0; everything else is Adam's (written out here, two steps)."""
    p = torch.nn.Parameter(torch.randn(6))
    opt = DST([{"params": [p], "base": "adam", "lr": 0.01}], lr=0.1, seed=1)
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, 0.01
    w, m1, m2 = p.detach().clone(), torch.zeros(6), torch.zeros(6)
    for t, g in enumerate([torch.tensor([1.0, float("nan"), -2.0, float("inf"), 0.5, 3.0]),
                           torch.tensor([0.2, 1.0, float("-inf"), 4.0, -1.0, 0.0])], start=1):
        p.grad = g.clone()
        opt.step()
        fin = torch.isfinite(g)
        gg = torch.where(fin, g, 0)
        m1 = m1 * b1 + gg * (1 - b1)
        m2 = m2 * b2 + gg * gg * (1 - b2)
        d = -lr * (m1 / (1 - b1**t)) / ((m2 / (1 - b2**t)).sqrt() + eps)
        w = w + d
        torch.testing.assert_close(p.detach(), w, rtol=1e-6, atol=1e-7)
    assert opt.nonfinite_total == 3


def test_dst_bad_arguments():
    m = GXNORLinear(10, 4)
    for kw, msg in [(dict(lr=0), "lr: expected"), (dict(m=-1), "m: expected"), (dict(base="rmsprop"), "base:"),
                    (dict(seed=-1), "seed:")]:
        with pytest.raises(ValueError, match=msg):
            DST(m.parameters(), **({"lr": 0.1} | kw))


@pytest.mark.parametrize("stride,padding,dilation,groups,quant", [(1, 0, 1, 1, False), (2, 1, 1, 1, True),
                                                                  (1, 2, 2, 2, True), (1, 1, 1, 4, False),
                                                                  (1, 1, 1, 4, True)])
@pytest.mark.parametrize("from_packed", [True, False])  # the two CPU grad-weight routes of a fused conv
def test_conv_gradients_match_dense_conv(stride, padding, dilation, groups, quant, from_packed, monkeypatch):
    # Input and weight gradients of GXNORConv2d equal those of F.conv2d on the dense values (with
    # the rectangular window on the input when the ternary quantizer is fused).
    monkeypatch.setattr(fc, "_WGRAD_FROM_PACKED", from_packed)
    torch.manual_seed(3)
    q = TernaryActivation() if quant else None
    m = GXNORConv2d(4, 6 if groups != 4 else 8, 3, stride, padding, dilation, groups, input_quantizer=q)
    h = (torch.randn(2, 4, 9, 8) * 1.5).requires_grad_()
    y = m(h)
    g = torch.randn_like(y)
    y.backward(g)
    h2 = h.detach().clone().requires_grad_()
    w2 = m.weight.dequantize().requires_grad_()
    xin = TernaryActivation()(h2) if quant else h2
    y2 = torch.nn.functional.conv2d(xin, w2, m.bias, stride, padding, dilation, groups)
    y2.backward(g)
    torch.testing.assert_close(y, y2, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(h.grad, h2.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.weight.grad, w2.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups", [1, 2])
def test_fused_conv_unpacked_backward_in_sample_blocks(groups, monkeypatch):
    """The unpacked grad-weight route on the CPU in blocks of one sample (the float copy of the
    activations never whole) gives the one-block route's gradients."""
    import gxnor_cuda.autograd_conv as agc

    monkeypatch.setattr(fc, "_WGRAD_FROM_PACKED", False)
    torch.manual_seed(5)
    m = GXNORConv2d(4, 6, 3, 1, 1, 1, groups, input_quantizer=TernaryActivation())
    h = torch.randn(3, 4, 7, 6) * 1.5
    grads = []
    for chunk in (1 << 23, 1):
        monkeypatch.setattr(agc, "_UNPACK_CHUNK_BYTES", chunk)
        m.weight.grad = None
        hh = h.clone().requires_grad_()
        y = m(hh)
        y.backward(torch.arange(y.numel(), dtype=torch.float32).reshape(y.shape).sin())
        grads.append((hh.grad, m.weight.grad.clone()))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-5, atol=1e-5)  # oneDNN blocks by batch size
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), ((1, 2), (2, 0), (2, 1))])
@pytest.mark.parametrize("chunk_bytes", [1 << 21, 1])  # one block, or one sample per block
def test_one_channel_conv_unfold_path_matches_dense_conv(stride, padding, dilation, chunk_bytes, monkeypatch):
    # A one-channel float input (the MNIST first layer) runs its forward (channels-last output) and
    # weight gradient as unfold + GEMM on CPU; forward and gradients equal F.conv2d's.
    monkeypatch.setattr(fc, "_CHUNK_BYTES", chunk_bytes)
    torch.manual_seed(4)
    m = GXNORConv2d(1, 5, (5, 3), stride, padding, dilation)
    x = torch.randn(3, 1, 13, 12, requires_grad=True)
    assert fc.im2col_path(x, m.weight, 1)
    y = m(x)
    assert y.is_contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(y)
    y.backward(g)
    x2 = x.detach().clone().requires_grad_()
    w2 = m.weight.dequantize().requires_grad_()
    y2 = torch.nn.functional.conv2d(x2, w2, m.bias, stride, padding, dilation)
    y2.backward(g)
    torch.testing.assert_close(y, y2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.weight.grad, w2.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("r,a", [(1.0, 0.5), (0.35, 0.5), (0.7, 0.7), (0.3, 0.1)])
@pytest.mark.parametrize("shape,cl", [((37, 70), False), ((3, 5, 6, 9), True)])
def test_window_mask_equals_the_float_comparisons(r, a, shape, cl):
    from gxnor_cuda import functional as F
    from gxnor_cuda.autograd import window_mask

    gen = torch.Generator().manual_seed(len(shape))
    h = torch.randn(shape, generator=gen) * 1.5
    flat = h.view(-1)
    edges = torch.tensor([r - a, r + a], dtype=torch.float32)
    for i, v in enumerate([*edges, *torch.nextafter(edges, edges + 1), *torch.nextafter(edges, edges - 1)]):
        flat[7 * i] = v
        flat[7 * i + 3] = -v
    flat[5], flat[11], flat[13], flat[17] = float("nan"), float("inf"), -float("inf"), 0.0
    if cl:
        h = h.contiguous(memory_format=torch.channels_last)
    ah = h.abs()
    want = F.pack_ternary(((ah >= r - a) & (ah <= r + a)).to(torch.int8))
    assert torch.equal(window_mask(h, r, a), want)
