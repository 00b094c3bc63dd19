"""Inference with BatchNorm and phi folded into the GXNOR layers: ``freeze(model)``.

A block ``layer -> [MaxPool2d(2)] -> BatchNorm -> phi_r`` (phi_r being the next layer's fused
ternary input quantizer) becomes one pass over the integer accumulator: phi_r(BN(acc)) is
+1 where acc >= T_hi and -1 where acc <= T_lo, two integer thresholds per output channel computed
once in float64 from the layer's scale and bias and BatchNorm's running statistics. The kernels take
them as the epilogue ``acc * k + b`` of ``xnor_conv2d_pack`` (convolutions: the float (N, O, Ho, Wo)
output is never written) or ``xnor_gemm`` then ``quantize_pack`` (linear layers), with the threshold
of the zero band half an integer away from every accumulator value, so float32 rounding cannot
change a decision: the result is the exact-arithmetic phi_r(BN(acc)). Max-pooling then runs on the
packed activations (bitwise: phi_r o BN is non-decreasing per channel once the rows of channels
with a negative BatchNorm scale are negated), and a flatten of channels-last packed words feeds the
next linear layer, whose weight columns are reordered once to match. The last layer's BatchNorm
folds into ``xnor_gemm``'s float epilogue (logits).

The unfused eval model computes BN in float32 after the float conv output, so it can differ from
the frozen one where BN(acc) lies within float32 rounding of +-r (rare; the tests bound it). A
first layer with real-valued input (and its pool / BatchNorm) runs as in the model, and its output
is packed by the next layer's quantizer.

Supported: ``nn.Sequential`` models of GXNORConv2d (groups = 1, zero padding; its own ``max_pool``
or a following nn.MaxPool2d(2) / MaxPool2x2) / GXNORLinear with ternary weights, nn.Identity,
nn.BatchNorm1d/2d, nn.Flatten, each hidden layer's input a rectangular ternary TernaryActivation (the
paper's networks, ``models.mnist_net`` / ``cifar_net`` / ``mlp``); anything else is refused with the module's name.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import functional as F
from .nn import GXNORConv2d, GXNORLinear, TernaryActivation
from .pool import MaxPool2x2

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def _fused_r(m: nn.Module) -> float | None:
    """r of a layer's fused rectangular ternary input quantizer (the packed-input kernels), else None."""
    q = getattr(m, "input_quantizer", None)
    ok = isinstance(q, TernaryActivation) and q.n_states == 1 and getattr(m, "n_states", None) == 1
    return q.r if ok else None


def _affine(layer, bn) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, B) float64 per output channel: BN(acc * weight_scale + layer bias) = acc * S + B."""
    n_out = layer.weight.shape[0]
    dev = layer.weight_q.device
    s = torch.ones(n_out, dtype=torch.float64, device=dev)
    b = torch.zeros(n_out, dtype=torch.float64, device=dev)
    if layer.weight_scale is not None:
        s = s * layer.weight_scale.detach().double()
    if layer.bias is not None:
        b = b + layer.bias.detach().double()
    if bn is not None:
        g = torch.rsqrt(bn.running_var.double() + bn.eps)
        if bn.weight is not None:
            g = g * bn.weight.detach().double()
        s, b = s * g, (b - bn.running_mean.double()) * g
        if bn.bias is not None:
            b = b + bn.bias.detach().double()
    return s, b


def thresholds(S: torch.Tensor, B: torch.Tensor, r: float, K: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For S >= 0 (float64, per channel): the epilogue (k, b) float32 with phi_r(acc * k + b) ==
    phi_r(acc * S + B), the latter evaluated in float64, for every integer |acc| <= K. Channels with
    S = 0 keep (0, B)."""
    safe = torch.where(S > 0, S, 1.0)
    z = lambda a: a * safe + B  # noqa: E731  (float64, non-decreasing in a)
    hi = torch.ceil((r - B) / safe).clamp(-K - 2, K + 2)  # +1 from here up
    lo = torch.floor((-r - B) / safe).clamp(-K - 2, K + 2)  # -1 from here down
    for _ in range(2):  # the divisions' rounding: step to the first / last integer the float64 z decides
        hi = torch.where(z(hi - 1) >= r, hi - 1, torch.where(z(hi) < r, hi + 1, hi))
        lo = torch.where(z(lo + 1) <= -r, lo + 1, torch.where(z(lo) > -r, lo - 1, lo))
    hi, lo = hi.clamp(-K - 1, K + 1), lo.clamp(-K - 2, K)
    lo = torch.minimum(lo, hi - 1)
    mid = (hi + lo) / 2
    half = torch.clamp((hi - lo - 1) / 2, min=0.25)  # integers sit >= 0.5 from both band edges
    k = r / half
    k_out = torch.where(S > 0, k, 0.0)
    b_out = torch.where(S > 0, -mid * k, B)
    return k_out.float(), b_out.float()


def _negate(p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Packed values (..., 2, W) negated where ``mask`` (int32, broadcast against one plane) has bits
    set: the sign bits flip where the gate is set."""
    gate, sign = p.select(-2, 0), p.select(-2, 1)
    return torch.stack((gate, sign ^ (gate & mask)), dim=-2)


def _fold(w: torch.Tensor, S: torch.Tensor, B: torch.Tensor, r: float, acc_max: int):
    """A layer's packed weight (O, ..., 2, W) and its per-channel (S, B) -> (weight, k, b, negated) for
    phi_r(acc * S + B) as the epilogue phi_r(acc * k + b): rows of negative S negated (acc -> -acc), so
    that every channel's scale is >= 0. ``negated`` (O,) bool names those rows."""
    neg = S < 0
    rows = torch.where(neg, -1, 0).to(torch.int32).reshape(-1, *([1] * (w.dim() - 2)))  # (O, 1, ...)
    k, b = thresholds(S.abs(), B, r, acc_max)
    return _negate(w, rows), k, b, neg


def packed_max_pool2x2(p: torch.Tensor, min_mask: torch.Tensor | None = None) -> torch.Tensor:
    """2x2 / stride-2 max-pool of packed channels-last activations (N, H, W, 2, Wc): +1 if any +1,
    else 0 if any 0, else -1, per bit; canonical padding stays canonical. Channels set in
    ``min_mask`` (Wc,) int32 take the minimum instead (-max(-x))."""
    if min_mask is not None:
        return _negate(packed_max_pool2x2(_negate(p, min_mask)), min_mask)
    n, h, w = p.shape[:3]
    p = p[:, : h // 2 * 2, : w // 2 * 2].unflatten(1, (h // 2, 2)).unflatten(3, (w // 2, 2))
    gate, sign = p.select(-2, 0), p.select(-2, 1)  # (N, H/2, 2, W/2, 2, Wc)
    plus = (gate & ~sign)
    plus = plus[:, :, 0] | plus[:, :, 1]
    plus = plus[:, :, :, 0] | plus[:, :, :, 1]
    zero = ~gate
    zero = zero[:, :, 0] | zero[:, :, 1]
    zero = zero[:, :, :, 0] | zero[:, :, :, 1]
    return torch.stack((plus | ~zero, ~plus & ~zero), dim=-2)


class _FloatStage(nn.Module):
    """Real-valued input: the model's own modules, then the next layer's quantizer packs the output,
    a chunk of samples at a time so that the float intermediates stay in the cache (eval-mode
    modules treat samples independently)."""

    CHUNK_BYTES = 1 << 23

    def __init__(self, mods, r: float | None, conv_out: bool):
        super().__init__()
        self.mods, self.r, self.conv_out = nn.Sequential(*mods), r, conv_out

    def _one(self, x):
        y = self.mods(x).float()
        if self.r is None:
            return y
        return F.pack_conv_input(y, 1, threshold=self.r) if self.conv_out else F.quantize_pack(y, self.r)

    def forward(self, x):
        if self.r is None or x.shape[0] < 2 or len(self.mods) == 0:
            return self._one(x)
        first = self.mods[0](x[:1])  # the widest intermediate is the first layer's output
        chunk = max(1, self.CHUNK_BYTES // max(1, first.numel() * first.element_size()))
        if chunk >= x.shape[0]:
            return self._one(x)
        return torch.cat([self._one(x[i:i + chunk]) for i in range(0, x.shape[0], chunk)])


class _ConvStage(nn.Module):
    """Packed (N, H, W, 2, Wc) -> conv -> BN -> phi_r -> packed, then the packed 2x2 max-pool."""

    def __init__(self, layer: GXNORConv2d, bn, pool: bool, r: float):
        super().__init__()
        w, k, b, neg = _fold(layer.weight_q, *_affine(layer, bn), r, layer.K * math.prod(layer.kernel_size))
        self.register_buffer("w", w)
        self.register_buffer("k", k)
        self.register_buffer("b", b)
        # max(acc) before a negative BatchNorm scale is the minimum of the negated rows' outputs
        self.register_buffer("min_mask", F.pack_ternary(neg.to(torch.int8))[0] if bool(neg.any()) and pool else None)
        self.C, self.r, self.pool = layer.in_channels, r, pool
        self.spec = (layer.stride, layer.padding, layer.dilation)

    def forward(self, x):
        s, p, d = self.spec
        y = F.xnor_conv2d_pack(x, self.w, self.C, self.r, s, p, d, 1, self.k, self.b)
        return packed_max_pool2x2(y, self.min_mask) if self.pool else y


class _FlattenPacked(nn.Module):
    """(N, H, W, 2, Wc) -> (N, 2, H * W * Wc): pixels' words concatenated (C a multiple of 64), i.e. the
    (H, W, C) order the next layer's weight columns are reordered to."""

    def forward(self, x):
        return x.permute(0, 3, 1, 2, 4).flatten(2)


class _LinearStage(nn.Module):
    """Packed (N, 2, W) -> xnor_gemm with BN folded: phi_r and pack, or the float output (last layer)."""

    def __init__(self, layer: GXNORLinear, bn, r: float | None, flat_c: int | None):
        super().__init__()
        w = layer.weight_q
        if flat_c is not None:  # columns from nn.Flatten's (C, H, W) order to the packed (H, W, C) order
            dense = layer.weight.dequantize(torch.float32)
            o = dense.shape[0]
            w = F.pack_ternary(dense.reshape(o, flat_c, -1).permute(0, 2, 1).reshape(o, -1))
        S, B = _affine(layer, bn)
        if r is None:  # the logits: BatchNorm folded into the float epilogue
            w, k, b = w.clone(), S.float(), B.float()
        else:
            w, k, b, _ = _fold(w, S, B, r, layer.K)
        self.register_buffer("w", w)
        self.register_buffer("k", k)
        self.register_buffer("b", b)
        self.K, self.r = layer.K, r

    def forward(self, x):
        z = F.xnor_gemm(x, self.w, self.K, self.k, self.b)
        return z if self.r is None else F.quantize_pack(z, self.r)


def _is_pool2(m) -> bool:
    if isinstance(m, MaxPool2x2):
        return True
    two = lambda v: v in (2, (2, 2))  # noqa: E731
    return (isinstance(m, nn.MaxPool2d) and two(m.kernel_size) and two(m.stride) and m.padding in (0, (0, 0))
            and m.dilation in (1, (1, 1)) and not m.ceil_mode)


def _refuse(name: str, m: nn.Module, why: str):
    raise ValueError(f"model: freeze cannot fold module {name} ({type(m).__name__}): {why}")


def freeze(model: nn.Sequential) -> nn.Sequential:
    """An inference-only copy of ``model`` with BatchNorm and phi folded (see the module docstring).
    The model's parameters are read, not shared: freeze again after training further."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"model: expected an nn.Sequential of GXNOR layers, got {type(model).__name__}")
    mods = list(model.named_children())
    stages: list[nn.Module] = []
    packed, flat_c, i = False, None, 0  # packed: the running activations are packed (conv or flat layout)
    while i < len(mods):
        name, m = mods[i]
        if not isinstance(m, (GXNORConv2d, GXNORLinear)):
            if packed:
                _refuse(name, m, "expected a GXNOR layer, MaxPool2d(2), BatchNorm or Flatten after a GXNOR layer")
            j = i  # real-valued modules ahead of the first GXNOR layer run as they are
            while j < len(mods) and not isinstance(mods[j][1], (GXNORConv2d, GXNORLinear)):
                j += 1
            stages.append(_FloatStage([mm for _, mm in mods[i:j]], None, False))
            i = j
            continue
        conv = isinstance(m, GXNORConv2d)
        if conv and (m.groups != 1 or m.padding_mode != "zeros" or m.padding == "same"):
            _refuse(name, m, "groups = 1 and numeric zero padding only")
        if m.n_states != 1:
            _refuse(name, m, "ternary weights (n_states = 1) only")
        j, pool, bn, flat = i + 1, conv and m.max_pool, None, False
        if j < len(mods) and isinstance(mods[j][1], nn.Identity):  # where a layer's own pool was
            j += 1
        if not pool and j < len(mods) and isinstance(mods[j][1], (nn.MaxPool2d, MaxPool2x2)):
            if not _is_pool2(mods[j][1]):
                _refuse(*mods[j], "MaxPool2d(2) (stride 2, no padding, floor mode) only")
            pool, j = True, j + 1
        if j < len(mods) and isinstance(mods[j][1], _BN):
            bn, j = mods[j][1], j + 1
        if j < len(mods) and isinstance(mods[j][1], nn.Flatten):
            flat, j = True, j + 1
        nxt = mods[j] if j < len(mods) else None
        r = None
        if nxt is not None:
            r = _fused_r(nxt[1])
            if r is None:
                _refuse(*nxt, "expected a GXNOR layer with a rectangular ternary input quantizer")
        elif conv:
            _refuse(name, m, "the last layer must be a GXNORLinear")
        if not packed and _fused_r(m) is None:  # real-valued input: the block runs as in the model
            block = [mm for _, mm in mods[i:j]]
            stages.append(_FloatStage(block, r, conv and not flat))
            packed, flat_c = r is not None, None
        else:
            if not packed:  # a real-valued input entering a layer with a fused quantizer: phi_r and pack
                stages.append(_FloatStage([], _fused_r(m), conv))
            if conv:
                stages.append(_ConvStage(m, bn, pool, r))
            else:
                stages.append(_LinearStage(m, bn, r, flat_c))
            packed, flat_c = r is not None, None
        if flat and isinstance(stages[-1], _ConvStage):
            if m.out_channels % 64:
                _refuse(name, m, "a flattened conv output needs a multiple of 64 channels")
            stages.append(_FlattenPacked())
            flat_c = m.out_channels
        i = j
    return nn.Sequential(*stages).eval().requires_grad_(False)
