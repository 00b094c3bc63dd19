"""Seeded, time-bounded fuzzing of every op on every CPU backend: bad and edge arguments must give a
clean error that names an argument (and leave in-place operands unchanged), or the reference's
result bit for bit."""

from __future__ import annotations

import random
import time

import pytest
import torch

from gxnor_cuda import functional as F
from gxnor_cuda import reference as ref
from gxnor_cuda import reference_dst as rd
from tests.helpers import CPU_BACKENDS, rand_ternary

ARG_NAMES = ("x", "w", "a", "b", "K", "C", "packed", "grad", "grad_out", "threshold", "stride", "padding",
             "dilation", "groups", "scale", "bias", "lr", "m", "seed", "offset", "dtype", "n_states", "rng", "s")
BUDGET_S = 20.0


def _pick(rng: random.Random, *vals):
    return vals[rng.randrange(len(vals))]


def _maybe(rng: random.Random, good, *bad):
    """The good value three times in four, else one of the bad or edge ones."""
    return good if rng.random() < 0.75 else _pick(rng, *bad)


def _case(rng: random.Random):
    """(op name, args, kwargs, index of an in-place operand or None)."""
    K = _pick(rng, 1, 31, 33, 64, 65, 0, -3, 2**31)
    rows = _pick(rng, 0, 1, 3)
    op = _pick(rng, "pack", "quantize", "unpack", "gemm", "conv", "conv_pack", "dst")
    if op in ("pack", "quantize"):
        k = max(K, 1) if K < 2**31 else 40
        x = _pick(rng, rand_ternary(rows, k), torch.randn(rows, k), torch.randn(rows, k).double(),
                  torch.tensor([[1 + 2**-40] * k], dtype=torch.float64), torch.zeros(rows, k, dtype=torch.int32))
        thr = _pick(rng, 0.5, 1e-50, -1.0, float("nan"), 1e39, 0)
        return ("pack_ternary", (x,), {"threshold": _pick(rng, None, thr)}, None) if op == "pack" else \
            ("quantize_pack", (x, thr), {}, None)
    if op == "unpack":
        p = ref.pack_ternary(rand_ternary(2, 40))
        return "unpack_ternary", (p, _pick(rng, 40, 39, 64, 65, 0, -1)), {"dtype": _pick(rng, None, torch.float32,
                                                                                           torch.int32)}, None
    if op == "gemm":
        a = ref.pack_ternary(rand_ternary(rows, 70))
        b = ref.pack_ternary(rand_ternary(2, _pick(rng, 70, 71, 200)))
        scale = _pick(rng, None, torch.rand(2), torch.rand(3), torch.rand(2).double())
        return "xnor_gemm", (a, b, _pick(rng, 70, 0, 129)), {"scale": scale}, None  # canonical for K = 70
    if op in ("conv", "conv_pack"):
        c = _maybe(rng, 6, 70, 0)  # 70: another word count (an operand must be canonical for its C)
        x = F.pack_conv_input(rand_ternary(_pick(rng, 0, 2), 6, _pick(rng, 0, 4, 5), 5), backend="reference")
        w = F.pack_conv_weight(rand_ternary(_pick(rng, 0, 4), 6, 3, 3), backend="reference")
        kw = {"stride": _maybe(rng, 1, 2, 0, 1.5, [1, 2, 3], [2**62, 1]),
              "padding": _maybe(rng, 1, 0, -1, [2**63 - 1, 0], [2**29, 2**29]),
              "dilation": _maybe(rng, 1, 2, [2**62, 1], 0), "groups": _maybe(rng, 1, 2, 4, 0)}
        if op == "conv":
            return "xnor_conv2d", (x, w, c), kw, None
        return "xnor_conv2d_pack", (x, w, c, _pick(rng, 0.5, 1e-50, 0.0)), kw, None
    w = ref.pack_ternary(rand_ternary(max(rows, 1), 40))
    g = _pick(rng, torch.randn(max(rows, 1), 40), torch.randn(max(rows, 1), 41), torch.randn(max(rows, 1), 40) * 1e38)
    return "dst_update_", (w, g, _maybe(rng, 0.3, 1e300, 0.0, -1.0, float("inf")), _maybe(rng, 3.0, 1e-50, 0.0),
                           _maybe(rng, 1, -1, 2**63, 1.5), _maybe(rng, 0, 2**62, -5, 2**63)), \
        {"rng": _maybe(rng, 2, 1, 3)}, 0


def _call(name, args, kwargs, backend):
    if backend == "reference":
        fn = getattr(rd if name == "dst_update_" else ref, name)
        if name in ("xnor_conv2d", "xnor_conv2d_pack"):
            kwargs = {k: ([v, v] if isinstance(v, int) and not isinstance(v, bool) and k != "groups" else v)
                      for k, v in kwargs.items()}
            if not all(isinstance(kwargs[k], list) for k in ("stride", "padding", "dilation")):
                return getattr(F, name)(*args, **kwargs, backend="reference")
        return fn(*args, **kwargs)
    return getattr(F, name)(*args, **kwargs, backend=backend)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_fuzz_every_op(backend):
    rng = random.Random(1234)
    torch.manual_seed(1234)
    t0, n, refused = time.time(), 0, 0
    while time.time() - t0 < BUDGET_S and n < 400:
        name, args, kwargs, inplace = _case(rng)
        n += 1
        want_err = None
        try:
            want = _call(name, [a.clone() if isinstance(a, torch.Tensor) else a for a in args], dict(kwargs),
                         "reference")
        except (RuntimeError, ValueError, TypeError) as e:
            want_err = e
        before = args[inplace].clone() if inplace is not None else None
        try:
            got = _call(name, list(args), dict(kwargs), backend)
        except (RuntimeError, ValueError, TypeError) as e:
            refused += 1
            msg = str(e)
            assert any(f"{a}:" in msg or f"'{a}'" in msg or f"argument '{a}'" in msg for a in ARG_NAMES), \
                f"{name} {kwargs}: error names no argument: {msg[:300]}"
            if before is not None:
                assert torch.equal(args[inplace], before), f"{name}: a refused call changed its operand"
            assert want_err is not None, f"{name} {kwargs} refused on {backend} but not on the reference: {msg[:200]}"
            continue
        assert want_err is None, f"{name} {kwargs}: reference refused ({want_err}) but {backend} returned"
        assert torch.equal(got, want), f"{name} {kwargs}: {backend} differs from the reference"
    assert n >= 50 and 0 < refused < n, (n, refused)


def test_fuzz_sees_refusals_and_results():
    """The generator is not vacuous: it makes both refused and accepted calls of every op."""
    rng = random.Random(1234)
    seen: dict[str, set[bool]] = {}
    for _ in range(400):
        name, args, kwargs, _ = _case(rng)
        try:
            _call(name, [a.clone() if isinstance(a, torch.Tensor) else a for a in args], dict(kwargs), "reference")
            ok = True
        except (RuntimeError, ValueError, TypeError):
            ok = False
        seen.setdefault(name, set()).add(ok)
    assert len(seen) == 7 and all(v == {True, False} for v in seen.values()), seen
