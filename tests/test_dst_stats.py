"""Statistics of the DST transition on >= 10^6 draws: move frequency vs tanh(m|v|/dz) within 4
standard deviations, whole-state moves for |D| > dz, clipping at the bounds, states stay in Z_N."""

from __future__ import annotations

import math

import pytest
import torch

from gxnor_cuda import functional as F
from gxnor_cuda import reference as ref
from gxnor_cuda import reference_dst as rd

N = 1 << 20


def test_rational_tanh_accuracy():
    x = torch.linspace(0, 10, 200001)
    assert float((rd.tanh_rational(x) - torch.tanh(x.double()).float()).abs().max()) < 1e-6


@pytest.mark.parametrize("v,m", [(0.1, 3.0), (0.3, 3.0), (0.05, 1.0), (0.7, 0.5)])
def test_move_frequency(v, m):
    w = ref.pack_ternary(torch.zeros(N // 1024, 1024))
    g = torch.full((N // 1024, 1024), -v)  # D = -lr * g = +v with lr = 1
    F.dst_update_(w, g, 1.0, m, 7, 0)
    frac = float((ref.unpack_ternary(w, 1024) == 1).float().mean())
    p = math.tanh(m * v)
    sd = math.sqrt(p * (1 - p) / N)
    assert abs(frac - p) < 4 * sd + 1e-12, (frac, p, sd)
    assert int((ref.unpack_ternary(w, 1024) == -1).sum()) == 0


def test_whole_state_moves_and_clipping():
    s = torch.zeros(N, dtype=torch.int8)  # N = 3: states -4..4, dz = 1/4
    g = torch.full((N,), -0.6)  # D = 0.6 = 2.4 states: 2 whole + 1 with p = tanh(3 * 0.4)
    F.dst_update_states_(s, g, 1.0, 3.0, 3, 3, 0)
    assert set(s.unique().tolist()) <= {2, 3}
    p = math.tanh(3 * 0.4)
    frac = float((s == 3).float().mean())
    assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / N)
    F.dst_update_states_(s, torch.full((N,), -10.0), 1.0, 3.0, 3, 3, N)  # far past the bound
    assert int(s.min()) == 4 and int(s.max()) == 4
    w = ref.pack_ternary(torch.ones(64, 1024))
    F.dst_update_(w, torch.full((64, 1024), -5.0), 1.0, 3.0, 1, 0)
    assert torch.equal(ref.unpack_ternary(w, 1024), torch.ones(64, 1024, dtype=torch.int8))


def test_binary_states_stay_binary():
    s = torch.where(torch.rand(N) < 0.5, 1, -1).to(torch.int8)
    F.dst_update_states_(s, torch.randn(N) * 3, 1.0, 3.0, 0, 9, 0)
    assert set(s.unique().tolist()) <= {-1, 1}
