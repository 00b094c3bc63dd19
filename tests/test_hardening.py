"""Arguments at and past the limits: a clear error naming the argument on every backend (and the
fake), or the same result everywhere; never a wrong result."""

from __future__ import annotations

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from gxnor_cuda import functional as F
from gxnor_cuda import reference as ref
from tests.helpers import backend_params, rand_ternary

BACKENDS = ["reference", *backend_params()]


def _conv_operands(n=2, c=6, h=5, w=5, o=4, k=3):
    x = F.pack_conv_input(rand_ternary(n, c, h, w), backend="reference")
    wt = F.pack_conv_weight(rand_ternary(o, c, k, k), backend="reference")
    return x, wt


def _on(backend, *ts):
    from tests.helpers import device_for

    dev = device_for(backend) if backend != "reference" else torch.device("cpu")
    return [t.to(dev) for t in ts]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kw, msg", [
    (dict(dilation=[2**63 - 1, 1]), "dilation: expected dilation"),
    (dict(padding=[2**63 - 1, 0]), "padding: expected input size"),
    (dict(padding=[2**29, 2**29]), "padding: expected an output"),
    (dict(stride=1.5), r"stride: expected an int or 2 ints, got 1.5"),
])
def test_conv_limits_are_refused(backend, kw, msg):
    x, w = _on(backend, *_conv_operands())
    args = dict(stride=1, padding=0, dilation=1) | kw
    for op in ("xnor_conv2d", "xnor_conv2d_pack"):
        extra = (0.5,) if op == "xnor_conv2d_pack" else ()
        with pytest.raises((RuntimeError, TypeError), match=msg):
            getattr(F, op)(x, w, 6, *extra, args["stride"], args["padding"], args["dilation"], backend=backend)


def test_conv_limits_are_refused_by_the_fake():
    x, w = _conv_operands()
    with FakeTensorMode() as mode:
        fx, fw = mode.from_tensor(x), mode.from_tensor(w)
        with pytest.raises(RuntimeError, match="dilation: expected dilation"):
            torch.ops.gxnor.xnor_conv2d(fx, fw, 6, [1, 1], [0, 0], [2**62, 1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_output_channels_refused_and_empty_input_agrees(backend):
    x, w = _on(backend, *_conv_operands())
    w0 = w[:0]
    with pytest.raises(RuntimeError, match="w: expected O >= 1 output channels"):
        F.xnor_conv2d(x, w0, 6, backend=backend)
    xe = x[:, :0]  # H = 0: with padding every output position is padding
    got = F.xnor_conv2d(xe, w, 6, 1, 2, 1, backend=backend)
    assert got.shape == (2, 4, 2, 7) and int(got.abs().sum()) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_threshold_that_rounds_to_zero_in_float32_is_refused(backend):
    (x,) = _on(backend, torch.randn(3, 40))
    xc, w = _on(backend, *_conv_operands())
    for call in (lambda: F.quantize_pack(x, 1e-50, backend=backend),
                 lambda: F.pack_ternary(x, threshold=1e-50, backend=backend),
                 lambda: F.xnor_conv2d_pack(xc, w, 6, 1e-50, backend=backend)):
        with pytest.raises(RuntimeError, match="threshold: expected a float32-representable value > 0"):
            call()


@pytest.mark.parametrize("backend", BACKENDS)
def test_strict_pack_refuses_float64_values_that_only_round_to_ternary(backend):
    (x,) = _on(backend, torch.tensor([[1.0, 0.0, -1.0, 1 + 2**-40]], dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"x: expected values in \{-1, 0, \+1\}"):
        F.pack_ternary(x, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv_epilogue_rounds_like_the_kernels(backend):
    """acc * scale + bias in float32, two roundings, on every backend (the reference used float64)."""
    x, w = _conv_operands(n=4, c=70, h=6, w=6, o=40)
    torch.manual_seed(1)
    scale, bias = torch.rand(40) * 0.37 + 0.01, torch.randn(40) * 3.1
    want = ref.xnor_conv2d(x, w, 70, 1, 1, 1, 1, scale, bias)
    acc = ref.xnor_conv2d(x, w, 70, 1, 1).float()
    assert torch.equal(want, acc * scale[:, None, None] + bias[:, None, None])
    xb, wb, sb, bb = _on(backend, x, w, scale, bias)
    assert torch.equal(F.xnor_conv2d(xb, wb, 70, 1, 1, 1, 1, sb, bb, backend=backend).cpu(), want)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kw, msg", [
    (dict(lr=1e300), r"lr: expected a finite float32 > 0"),
    (dict(m=1e-50), r"m: expected a finite float32 > 0"),
    (dict(offset=2**63), r"offset: expected an int in \[0, 2\^63\)"),
    (dict(seed=1.5), r"seed: expected an int in \[0, 2\^63\), got 1.5"),
])
def test_dst_scalar_arguments(backend, kw, msg):
    (w, g) = _on(backend, ref.pack_ternary(rand_ternary(3, 40)), torch.zeros(3, 40))
    w0 = w.clone()
    args = dict(lr=0.3, m=3.0, seed=1, offset=0) | kw
    with pytest.raises((RuntimeError, TypeError, ValueError), match=msg):
        F.dst_update_(w, g, args["lr"], args["m"], args["seed"], args["offset"], backend=backend)
    assert torch.equal(w, w0)


def test_non_canonical_weights_are_refused_when_loaded():
    """Decision (docs/design.md): the ops' results are defined for canonical operands; packed data
    entering from outside (a state dict) is validated there."""
    from gxnor_cuda.nn import GXNORConv2d, GXNORLinear

    for m in (GXNORLinear(33, 4), GXNORConv2d(33, 4, 3)):
        sd = m.state_dict()
        before = m.weight_q.clone()
        sd["weight_q"] = sd["weight_q"].clone()
        sd["weight_q"][0, ..., 0, -1] |= 1 << 30  # a gate bit past K = 33
        with pytest.raises(RuntimeError, match="weight_q: expected canonical packed words"):
            m.load_state_dict(sd)
        assert torch.equal(m.weight_q, before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dst_overflowing_increment_saturates(backend):
    """A finite gradient whose increment overflows float32 moves the weight to the boundary (it is not
    frozen and not counted); a non-finite gradient still freezes its weight and is counted."""
    (s, g) = _on(backend, torch.zeros(2, 40, dtype=torch.int8), torch.full((2, 40), 3e38))
    g[0, 0] = float("nan")
    bad = F.dst_update_states_(s, g, 1.0, 3.0, 7, 1, 0, backend=backend)
    assert int(bad) == 1 and int(s[0, 0]) == 0
    assert bool((s.flatten()[1:] == -64).all()), "saturates at -2^(N-1)"
    (w, g2) = _on(backend, ref.pack_ternary(torch.zeros(3, 40)), torch.full((3, 40), 1e30))
    g2[1, 3] = float("inf")
    bad = F.dst_update_(w, g2, 1e10, 3.0, 1, 0, backend=backend)  # -lr * g = -inf in float32
    dense = ref.unpack_ternary(w.cpu(), 40)
    assert int(bad) == 1 and int(dense[1, 3]) == 0 and int((dense == -1).sum()) == 119


def test_thread_count_statement():
    """What the thread count changes (README, 'What is guaranteed'): integer results and the DST update
    are bit-identical at 1 and 2 threads; the float weight gradient sums in a thread-dependent order and
    agrees to float rounding only."""
    from tests.helpers import CPU_BACKENDS

    if "cpp" not in CPU_BACKENDS:
        pytest.skip("native library not loaded")
    x, w = _conv_operands(n=8, c=70, h=9, w=9, o=64)
    a, b = ref.pack_ternary(rand_ternary(300, 200)), ref.pack_ternary(rand_ternary(70, 200))
    g = torch.randn(8, 64, 7, 7)
    wd = ref.pack_ternary(rand_ternary(64, 300))
    gd = torch.randn(64, 300)
    before = torch.get_num_threads()
    res = []
    try:
        for t in (1, 2):
            torch.set_num_threads(t)
            w2 = wd.clone()
            F.dst_update_(w2, gd, 0.3, 3.0, 5, 0, backend="cpp")
            res.append((F.xnor_conv2d(x, w, 70, backend="cpp"), F.xnor_gemm(a, b, 200, backend="cpp"), w2,
                        F.xnor_conv2d_weight_grad(g, x, w, 70, backend="cpp")))
    finally:
        torch.set_num_threads(before)
    for i in range(3):
        assert torch.equal(res[0][i], res[1][i])
    torch.testing.assert_close(res[0][3], res[1][3], rtol=1e-5, atol=1e-4)
