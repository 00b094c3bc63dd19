"""freeze(): BatchNorm and phi folded into integer thresholds on the GXNOR accumulators, max-pooling on
packed activations. Checked against exact (float64) arithmetic bit for bit, and against the unfused
eval model."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from gxnor_cuda import functional as F
from gxnor_cuda import models, reference
from gxnor_cuda.inference import _ConvStage, freeze, packed_max_pool2x2, thresholds
from gxnor_cuda.nn import GXNORConv2d, GXNORLinear, TernaryActivation


def _phi(z: torch.Tensor, r: float) -> torch.Tensor:
    return torch.where(z >= r, 1, torch.where(z <= -r, -1, 0))


def _random_bn(model: nn.Module, gen: torch.Generator) -> None:
    """Running statistics and affine parameters, some scales negative, some zero."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 4)
            m.running_var.copy_(torch.rand(n, generator=gen) * 60 + 2)
            w = torch.randn(n, generator=gen) * 0.6 + 0.8
            w[::7] = 0.0
            m.weight.data.copy_(w)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.5)


@pytest.mark.parametrize("seed", range(3))
def test_thresholds_decide_exactly_for_every_accumulator(seed):
    gen = torch.Generator().manual_seed(seed)
    K, r = 300, float(torch.rand((), generator=gen)) + 0.2
    S = torch.rand(64, generator=gen, dtype=torch.float64) * torch.logspace(-4, 1, 64, dtype=torch.float64)
    S[::9] = 0.0
    B = torch.randn(64, generator=gen, dtype=torch.float64) * 3
    B[5] = r - 17 * S[5]  # acc = 17 lands exactly on the +r edge
    k, b = thresholds(S, B, r, K)
    acc = torch.arange(-K, K + 1, dtype=torch.float32)[:, None]
    got = _phi(acc * k + b, r)  # float32, as the kernels' epilogue computes it
    want = _phi(acc.double() * S + B, r)
    assert torch.equal(got, want)


def test_packed_max_pool_with_min_channels():
    gen = torch.Generator().manual_seed(1)
    v = torch.randint(-1, 2, (3, 6, 5, 70), generator=gen, dtype=torch.int8)  # (N, H, W, C), odd W
    mins = torch.rand(70, generator=gen) < 0.3
    p = F.pack_ternary(v)
    got = packed_max_pool2x2(p, F.pack_ternary(mins.to(torch.int8))[0])
    d = v.permute(0, 3, 1, 2).float()
    mx = nn.functional.max_pool2d(d, 2)
    mn = -nn.functional.max_pool2d(-d, 2)
    want = torch.where(mins[None, :, None, None], mn, mx).permute(0, 2, 3, 1)
    assert torch.equal(got, F.pack_ternary(want.to(torch.int8)))
    assert int(reference.count_noncanonical(got, 70)) == 0


def test_conv_stage_is_exact_phi_of_bn_of_the_pooled_accumulator():
    """The stage against float64 arithmetic on the integer accumulator: conv -> pool -> BN -> phi."""
    gen = torch.Generator().manual_seed(2)
    torch.manual_seed(2)
    conv = GXNORConv2d(70, 96, 3, padding=1, bias=False, input_quantizer=TernaryActivation(1.0, 0.5))
    bn = nn.BatchNorm2d(96)
    _random_bn(bn, gen)
    r = 0.7
    stage = _ConvStage(conv, bn, True, r)
    x = F.pack_conv_input(torch.randint(-1, 2, (2, 70, 9, 8), generator=gen).float())
    acc = F.xnor_conv2d(x, conv.weight_q, 70, 1, 1).double()
    pooled = nn.functional.max_pool2d(acc, 2)
    g = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    z = (pooled - bn.running_mean.double()[:, None, None]) * g[:, None, None] + bn.bias.double()[:, None, None]
    want = F.pack_ternary(_phi(z, r).permute(0, 2, 3, 1).to(torch.int8))
    assert torch.equal(stage(x), want)


@pytest.mark.parametrize("net, shape", [("mnist_net", (32, 1, 28, 28)), ("cifar_net", (4, 3, 32, 32)),
                                        ("mlp", (32, 1, 28, 28))])
def test_frozen_paper_nets_match_the_eval_model(net, shape):
    warnings.simplefilter("ignore")
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    m = models.mlp(784) if net == "mlp" else getattr(models, net)(True, 1, r=1.0, a=0.5)
    _random_bn(m, gen)
    m.eval()
    f = freeze(m)
    assert not any(p.requires_grad for p in f.parameters())
    x = torch.randn(shape, generator=gen)
    with torch.no_grad():
        want, got = m(x), f(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    assert torch.equal(got.argmax(1), want.argmax(1))


def test_refusals_name_the_module():
    q = lambda: TernaryActivation(1.0, 0.5)  # noqa: E731
    with pytest.raises(ValueError, match="expected an nn.Sequential"):
        freeze(GXNORLinear(8, 4))
    bad = nn.Sequential(GXNORConv2d(4, 8, 3), nn.BatchNorm2d(8), GXNORConv2d(8, 8, 3, groups=2, input_quantizer=q()),
                        nn.Flatten(), GXNORLinear(8, 2, input_quantizer=q()))
    with pytest.raises(ValueError, match=r"module 2 \(GXNORConv2d\): groups = 1"):
        freeze(bad)
    pool3 = nn.Sequential(GXNORConv2d(4, 64, 3), nn.MaxPool2d(3), nn.BatchNorm2d(64), nn.Flatten(),
                          GXNORLinear(64, 2, input_quantizer=q()))
    with pytest.raises(ValueError, match=r"module 1 \(MaxPool2d\)"):
        freeze(pool3)
    unquantized = nn.Sequential(GXNORLinear(8, 8), nn.BatchNorm1d(8), GXNORLinear(8, 2))
    with pytest.raises(ValueError, match=r"module 2 \(GXNORLinear\): expected a GXNOR layer with a rectangular"):
        freeze(unquantized)


def test_the_first_stage_in_chunks_equals_one_pass(monkeypatch):
    """The real-valued first block runs a chunk of samples at a time: the same packed activations."""
    from gxnor_cuda.inference import _FloatStage

    warnings.simplefilter("ignore")
    torch.manual_seed(5)
    f = freeze(models.mnist_net(True, 1, r=1.0, a=0.5).eval())
    x = torch.rand(37, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        monkeypatch.setattr(_FloatStage, "CHUNK_BYTES", 1 << 40)
        whole = f[0](x)
        monkeypatch.setattr(_FloatStage, "CHUNK_BYTES", 5 * 32 * 24 * 24 * 4)  # 5 samples a chunk
        assert torch.equal(f[0](x), whole)
