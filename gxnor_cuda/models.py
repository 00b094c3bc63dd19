"""The GXNOR-Net networks of the original code (the paper's MNIST and CIFAR-10 architectures), as GXNOR or float twins.

Each phi is fused into the next weight layer as its input quantizer, so activations travel
packed into xnor_gemm; the float twin uses the same structure with nn.Conv2d / nn.Linear.
n_states is the weights' N, act_states the activations' N (phi's levels); bn_eps is BatchNorm's
epsilon (the original code's 1e-4 under ``--recipe paper``).
"""

from __future__ import annotations

from torch import nn

from .nn import GXNORConv2d, GXNORLinear, IntBatchNorm1d, IntBatchNorm2d, TernaryActivation
from .pool import MaxPool2x2


def _conv(c_in, c_out, k, pad, gx, n_states, quant):
    if gx:
        return GXNORConv2d(c_in, c_out, k, padding=pad, bias=False, n_states=n_states, input_quantizer=quant)
    return nn.Sequential(*([quant] if quant is not None else []), nn.Conv2d(c_in, c_out, k, padding=pad, bias=False))


def _pool(gx):
    return MaxPool2x2() if gx else nn.MaxPool2d(2)  # the same values and gradients; the input is not kept


def _conv_pool(c_in, c_out, k, pad, gx, n_states, quant):
    """A conv and its 2x2 max-pool. GXNOR: one layer that pools as it convolves (the conv output is never
    stored), then an nn.Identity where the pool was, so the modules keep the unfused network's indices
    (and checkpoints their keys)."""
    if gx:
        return [GXNORConv2d(c_in, c_out, k, padding=pad, bias=False, n_states=n_states, input_quantizer=quant,
                            max_pool=True), nn.Identity()]
    return [_conv(c_in, c_out, k, pad, gx, n_states, quant), _pool(gx)]


def _bn(c, eps, integer, dims=2):
    """BatchNorm after a layer; ``integer``: the layer's output is a ternary layer's integer accumulators
    (GXNOR, ternary weights and ternary fused input), so the batch statistics come from them exactly
    and backward keeps an int16 copy (nn.IntBatchNorm1d / 2d)."""
    if integer:
        return (IntBatchNorm2d if dims == 2 else IntBatchNorm1d)(c, eps)
    return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(c, eps)


def _fc(f_in, f_out, gx, n_states, quant):
    if gx:
        return GXNORLinear(f_in, f_out, bias=False, n_states=n_states, input_quantizer=quant)
    return nn.Sequential(*([quant] if quant is not None else []), nn.Linear(f_in, f_out, bias=False))


def mnist_net(gx: bool = True, n_states: int = 1, r: float = 1.0, a: float = 0.5, window: str = "rect",
              act_states: int = 1, bn_eps: float = 1e-5) -> nn.Sequential:
    """32C5 - MP2 - BN - phi - 64C5 - MP2 - BN - phi - 512FC - BN - phi - 10FC - BN (input 1x28x28)."""
    phi = lambda: TernaryActivation(r, a, window, act_states)
    ints = gx and n_states == 1 and act_states == 1  # hidden layers' outputs: integer accumulators
    return nn.Sequential(
        *_conv_pool(1, 32, 5, 0, gx, n_states, None), nn.BatchNorm2d(32, bn_eps),
        *_conv_pool(32, 64, 5, 0, gx, n_states, phi()), _bn(64, bn_eps, ints), nn.Flatten(),
        _fc(64 * 4 * 4, 512, gx, n_states, phi()), _bn(512, bn_eps, ints, 1),
        _fc(512, 10, gx, n_states, phi()), _bn(10, bn_eps, ints, 1),
    )


def cifar_net(gx: bool = True, n_states: int = 1, r: float = 1.0, a: float = 0.5, window: str = "rect",
              act_states: int = 1, bn_eps: float = 1e-5) -> nn.Sequential:
    """2x128C3 - MP2 - 2x256C3 - MP2 - 2x512C3 - MP2 - 1024FC - 10FC, BN after each, phi after BN."""
    phi = lambda: TernaryActivation(r, a, window, act_states)
    ints = gx and n_states == 1 and act_states == 1  # hidden layers' outputs: integer accumulators
    layers: list[nn.Module] = []
    c_in, first = 3, True
    for c in (128, 256, 512):
        for j in range(2):
            make = _conv_pool if j == 1 else lambda *a: [_conv(*a)]
            layers += make(c_in, c, 3, 1, gx, n_states, None if first else phi())
            layers.append(_bn(c, bn_eps, ints and not first))
            c_in, first = c, False
    layers += [nn.Flatten(), _fc(512 * 4 * 4, 1024, gx, n_states, phi()), _bn(1024, bn_eps, ints, 1),
               _fc(1024, 10, gx, n_states, phi()), _bn(10, bn_eps, ints, 1)]
    return nn.Sequential(*layers)


def mlp(in_features: int, gx: bool = True, n_states: int = 1, hidden: int = 512, r: float = 1.0,
        a: float = 0.5, window: str = "rect", act_states: int = 1, bn_eps: float = 1e-5) -> nn.Sequential:
    """Flatten - FC - BN - phi - FC - BN - phi - FC - BN."""
    phi = lambda: TernaryActivation(r, a, window, act_states)
    return nn.Sequential(
        nn.Flatten(), _fc(in_features, hidden, gx, n_states, None), nn.BatchNorm1d(hidden, bn_eps),
        _fc(hidden, hidden, gx, n_states, phi()), nn.BatchNorm1d(hidden, bn_eps),
        _fc(hidden, 10, gx, n_states, phi()), nn.BatchNorm1d(10, bn_eps),
    )
