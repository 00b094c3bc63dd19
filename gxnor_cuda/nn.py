"""Drop-in GXNOR modules: GXNORLinear, GXNORConv2d, TernaryActivation, and convert().

``.weight`` is a Parameter of the float layer's shape and dtype whose values are stored in 2 bits
(``gxnor_cuda.weight.DiscreteWeight``: packed int32 for N = 1, int8 state indices otherwise); its
gradient is an ordinary ``.grad``. Train it with ``gxnor_cuda.optim.DST``. State dicts keep the
storage as ``weight_q`` (plain tensors, loadable with ``weights_only=True``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings

import torch
from torch import nn

from . import float_conv as fc
from . import format as fmt
from . import functional as F
from .autograd import TernaryInputMatmul, TernaryWeightMatmul, lowp_dtype, matmul_lowp, ternary_input_matmul
from .autograd_conv import (
    TernaryInputConv,
    TernaryInputConvPool,
    TernaryWeightConv,
    TernaryWeightConvPool,
    conv_pool_route,
    ternary_input_conv,
)
from .norm import IntBatchNorm1d, IntBatchNorm2d  # noqa: F401  (modules of this namespace)
from .pool import MaxPool2x2
from .weight import DiscreteWeight, nbytes_stored, stamp_of


class TernaryActivation(nn.Module):
    """phi_r: +1 if x >= r, -1 if x <= -r, else 0; surrogate gradient window of half-width a.

    window: "rect" (1/(2a) on r-a <= |x| <= r+a), "tri" (peak 1/a at |x| = r), "bell" (Gaussian,
    std a), each of unit area per jump. n_states (N) as for weights: N = 1 ternary; N >= 2 gives
    2^N + 1 levels k/h in [-1, 1] (h = 2^(N-1)) with the jump to level k/h at |x| = r k / h, so the
    top level starts at r as in the ternary case, and windows of half-width a/h and area 1/h (the
    jump's height) around each jump; N = 0 is sign(x) with one window of area 2 around 0.

    The windows stay apart while a <= r (N = 1) or a <= r / 2 (N >= 2, jumps r/h apart). Wider
    windows merge into one box (a clipped straight-through estimator, not the GXNOR derivative
    approximation): allowed, with a warning.
    """

    def __init__(self, r: float = 1.0, a: float = 0.5, window: str = "rect", n_states: int = 1):
        super().__init__()
        if not r > 0 or not a > 0:
            raise ValueError(f"r, a: expected positive floats, got r={r}, a={a}")
        if window not in ("rect", "tri", "bell"):
            raise ValueError(f"window: expected 'rect', 'tri' or 'bell', got {window!r}")
        if not 0 <= int(n_states) <= 7:
            raise ValueError(f"n_states: expected N in [0, 7], got {n_states}")
        self.r, self.a, self.window, self.n_states = float(r), float(a), window, int(n_states)
        if windows_merge(self.r, self.a, self.n_states):
            warnings.warn(f"TernaryActivation(r={r}, a={a}, n_states={n_states}): the surrogate windows around the "
                          f"jumps overlap (a > {max_separate_a(self.r, self.n_states):g}), so the backward is a "
                          "clipped straight-through estimator rather than GXNOR's derivative approximation",
                          stacklevel=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _PhiFn.apply(x, self.r, self.a, self.window, self.n_states)

    def extra_repr(self) -> str:
        return f"r={self.r}, a={self.a}, window={self.window!r}, n_states={self.n_states}"


def max_separate_a(r: float, n_states: int) -> float:
    """The widest half-width a whose windows do not overlap (rect windows then just touch)."""
    return r if n_states == 1 else (r / 2 if n_states >= 2 else math.inf)


def windows_merge(r: float, a: float, n_states: int = 1) -> bool:
    return a > max_separate_a(r, n_states)


def phi_levels(x: torch.Tensor, r: float, n_states: int = 1) -> torch.Tensor:
    """The forward staircase: levels k/h, level k/h from |x| >= r k / h (N = 0: sign, +1 at 0)."""
    if n_states == 0:
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
    if n_states == 1:
        return torch.where(x >= r, 1.0, torch.where(x <= -r, -1.0, 0.0)).to(x.dtype)
    h = 2 ** (n_states - 1)
    return (torch.sign(x) * torch.clamp(torch.floor(x.abs() * (h / r)), max=h) / h).to(x.dtype)


def _pulse(d: torch.Tensor, a: float, window: str) -> torch.Tensor:
    """A unit-area window of half-width a at distance d >= 0 from its centre."""
    if window == "rect":
        return (d <= a).to(d.dtype) / (2 * a)
    if window == "tri":
        return torch.clamp(1 - d / a, min=0) / a
    return torch.exp(-0.5 * (d / a) ** 2) / (a * math.sqrt(2 * math.pi))


def window_grad(x: torch.Tensor, r: float, a: float, window: str, n_states: int = 1) -> torch.Tensor:
    """The surrogate d phi / dx: a window per jump, of the jump's height in area (the derivative of
    the staircase smoothed by the window); for N = 1 a window of half-width a around |x| = r."""
    ax = x.abs()
    if n_states == 0:
        return 2 * _pulse(ax, a, window)
    h = 2 ** (n_states - 1)  # jump k of height 1/h at |x| = r k / h, its window a / h wide
    g = torch.zeros_like(x)
    for k in range(1, h + 1):
        g = g + _pulse((ax - r * k / h).abs(), a / h, window) / h
    return g


class _PhiFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, r, a, window, n_states):
        ctx.save_for_backward(x)
        ctx.r, ctx.a, ctx.window, ctx.n_states = r, a, window, n_states
        return phi_levels(x, r, n_states)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * window_grad(x, ctx.r, ctx.a, ctx.window, ctx.n_states), None, None, None, None


MultiStepActivation = TernaryActivation


def _init_states(shape, n_states, device, generator=None):
    u = torch.rand(shape, device=device, generator=generator) * 2 - 1
    if n_states == 0:
        return torch.where(u >= 0, 1, -1).to(torch.int8)
    h = 2 ** (n_states - 1)
    return torch.round(u * h).clamp(-h, h).to(torch.int8)


def _out_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype nn.Linear / nn.Conv2d would return: autocast's, else the input's (float inputs)."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype if x.is_floating_point() else torch.float32


def twn_ternarize(w: torch.Tensor, delta: float = 0.7) -> tuple[torch.Tensor, torch.Tensor]:
    """Ternary-weight-network rounding per output row (dim 0) of a float weight (O, K):
    threshold 0.7 * mean |w|, values sign(w) where |w| exceeds it, scale = mean |w| of those.
    returns: (int8 values (O, K), float32 scale (O,)); scale * values approximates w."""
    a = w.abs()
    thr = delta * a.mean(dim=1, keepdim=True)
    keep = a > thr
    s = torch.where(keep, torch.sign(w), torch.zeros_like(w)).to(torch.int8)
    n = keep.sum(dim=1).clamp_min(1)
    scale = torch.where(keep, a, torch.zeros_like(a)).sum(dim=1) / n
    return s, scale.float()


class _GXNORBase(nn.Module):
    """Shared weight storage: the DiscreteWeight Parameter ``weight`` plus format metadata; optionally
    a float scale per output channel (``weight_scale``, on for converted float layers) applied to the
    output."""

    weight_scale: nn.Parameter | None

    def _init_weight(self, lead: tuple[int, ...], K: int, n_states: int, device, scaled: bool = False,
                     dtype=None):
        """Storage (*lead, 2, W) packed for N = 1, else (*lead, K) int8 states; K = packed axis."""
        if not 0 <= n_states <= 7:
            raise ValueError(f"n_states: expected N in [0, 7], got {n_states}")
        self.K, self.n_states = K, n_states
        s = _init_states((*lead, K), n_states, device)
        data = F.pack_ternary(s) if n_states == 1 else s
        self.weight = nn.Parameter(DiscreteWeight(data, self._weight_shape(), n_states, dtype or torch.float32))
        self.register_buffer("format_version", torch.tensor(fmt.FORMAT_VERSION), persistent=True)
        self.weight_scale = nn.Parameter(torch.ones(lead[0], device=device)) if scaled else None
        self._stamp()

    def _discrete(self) -> DiscreteWeight:
        w = self.weight
        if not isinstance(w, DiscreteWeight):  # replaced, e.g. by FSDP's sharded parameters
            raise TypeError(f"{type(self).__name__}.weight: expected a gxnor_cuda.weight.DiscreteWeight, got "
                            f"{type(w).__name__} (wrappers that replace parameters, such as FSDP, are not supported)")
        return w

    @property
    def weight_q(self) -> torch.Tensor:
        """The weight's storage (``weight.packed``): what the kernels read and DST writes."""
        return self._discrete().packed

    def _stamp(self) -> None:
        """Record that the stored weight holds canonical values written here (weight.stamp_of)."""
        self.weight_q.gxnor_stamp = stamp_of(self.weight_q)

    def set_weight(self, w: torch.Tensor) -> None:
        """Discretise a float weight into the storage: ternary rows by twn_ternarize (exact for weights
        already in {-1, 0, +1}), multi-level rows scaled by their max |w| when the layer has a
        ``weight_scale`` (converted layers keep their function: the scale is stored), else each value
        rounded to the nearest state of [-1, 1]."""
        w = w.detach().reshape(self._weight_shape())
        w = self._discrete().storage_order(w).to(self.weight_q.device, torch.float32)  # rows of K
        rows = w.reshape(w.shape[0], -1)
        scale = None
        if self.n_states == 0:
            s = torch.where(w >= 0, 1, -1).to(torch.int8)
            scale = rows.abs().mean(dim=1)
        elif self.n_states == 1:  # exact for weights that are already ternary (scale 1)
            s, scale = twn_ternarize(rows)
            s = s.reshape(w.shape)
            if self.weight_scale is None and bool(((scale - 1).abs() > 0.5).any()):
                warnings.warn(f"{type(self).__name__}.set_weight: this layer has no weight_scale, so the float "
                              f"weights' magnitude (row scales {float(scale.min()):.3g} to {float(scale.max()):.3g}) "
                              "is dropped; from_float / convert() keep it", stacklevel=2)
        else:
            h = 2 ** (self.n_states - 1)
            if self.weight_scale is not None:
                scale = rows.abs().amax(dim=1).clamp_min(1e-12)
                w = w / scale.reshape(-1, *([1] * (w.dim() - 1)))
            s = torch.round(w.clamp(-1, 1) * h).to(torch.int8)
        with torch.no_grad():
            self.weight_q.copy_(F.pack_ternary(s) if self.n_states == 1 else s)
        if self.weight_scale is not None and scale is not None:
            self.weight_scale.data.copy_(scale.to(self.weight_scale.device))
        self._stamp()

    def _fused_quantizer(self) -> bool:
        """Whether the input quantizer runs fused into the layer's kernels (packed ternary activations)."""
        q = self.input_quantizer
        return isinstance(q, TernaryActivation) and q.window == "rect" and q.n_states == 1 and self.n_states == 1

    def _epilogue(self, y: torch.Tensor) -> torch.Tensor:
        """y (N, O, ...) float32 times the per-channel scale, plus the bias (both on dim 1)."""
        shape = (-1, *([1] * (y.dim() - 2)))
        if self.weight_scale is not None:
            y = y * self.weight_scale.reshape(shape)
        if self.bias is not None:
            y = y + self.bias.float().reshape(shape)
        return y

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination.pop(prefix + "weight", None)  # the storage, a plain tensor, stands for it
        destination[prefix + "weight_q"] = self.weight_q

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        wkey, qkey = prefix + "weight", prefix + "weight_q"
        state_dict.pop(prefix + "anchor", None)  # a scalar older modules kept so that backward ran
        w = state_dict.get(wkey)
        if isinstance(w, DiscreteWeight):  # a DiscreteWeight itself (not from state_dict(): that saves weight_q)
            del state_dict[wkey]
            if w.n_states == self.n_states:
                state_dict[qkey] = w.packed
            else:
                state_dict[wkey] = w.dequantize(torch.float32)
        converted = wkey in state_dict and qkey not in state_dict
        if converted:  # a float checkpoint
            w = state_dict.pop(wkey)
            if tuple(w.shape) != tuple(self._weight_shape()):
                errors.append(f"{wkey}: expected shape {tuple(self._weight_shape())}, got {tuple(w.shape)}")
                return
            self.set_weight(w)
            state_dict[qkey] = self.weight_q.clone()
            if self.weight_scale is not None:
                state_dict.setdefault(prefix + "weight_scale", self.weight_scale.data.clone())
            state_dict.setdefault(prefix + "format_version", self.format_version.clone())
        vkey = prefix + "format_version"
        if vkey in state_dict and int(state_dict[vkey]) != fmt.FORMAT_VERSION:
            errors.append(f"{vkey}: expected packed format {fmt.FORMAT_VERSION}, got {int(state_dict[vkey])}")
            return
        if qkey in state_dict:
            q = state_dict.pop(qkey)
            have = self.weight_q
            if tuple(q.shape) != tuple(have.shape) or q.dtype != have.dtype:
                errors.append(f"size mismatch for {qkey}: expected {have.dtype} storage of shape {tuple(have.shape)}, "
                              f"got {q.dtype} {tuple(q.shape)}")
                return
            if self.n_states == 1 and not converted:
                # The kernels' results are defined for canonical words only: a packed weight entering from a
                # file is checked here (one pass, once), everything the package writes itself is canonical.
                n = int(F.count_noncanonical(q, self.K))
                if n:
                    errors.append(f"{qkey}: expected canonical packed words (sign bits only with the gate bit, zero "
                                  f"padding past K = {self.K}), got {n} non-canonical word pair(s)")
                    return
            state_dict[wkey] = DiscreteWeight(q, self.weight.shape, self.n_states, self.weight.dtype)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)
        self._stamp()

    def _matmul(self, x2d: torch.Tensor, lowp: torch.dtype | None = None) -> torch.Tensor:
        q = self.input_quantizer
        fused = self._fused_quantizer()
        if fused and not torch.is_grad_enabled():  # inference: plain ops, compiles with fullgraph=True
            return ternary_input_matmul(x2d, self.weight_q, self.K, q.r)[0]
        if fused:
            return TernaryInputMatmul.apply(x2d, self._discrete(), self.K, q.r, q.a, lowp)
        if q is not None:
            x2d = q(x2d)
        if not torch.is_grad_enabled() and self.n_states == 1:
            return matmul_lowp(x2d, self.weight_q, self.K, "nt", lowp)
        return TernaryWeightMatmul.apply(x2d, self._discrete(), self.K, self.n_states, lowp)


class GXNORLinear(_GXNORBase):
    """nn.Linear with discrete weights (N = n_states; 1 = ternary, packed 2 bits).

    input_quantizer: optional TernaryActivation applied to the input; a rectangular ternary one is
    fused: the input is quantized and packed in one pass and the product runs on xnor_gemm.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, n_states=1,
                 input_quantizer: nn.Module | None = None, scaled: bool = False):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._init_weight((out_features,), in_features, n_states, device, scaled, dtype)
        self.bias = nn.Parameter(torch.zeros(out_features, device=device, dtype=dtype or torch.float32)) if bias \
            else None
        self.input_quantizer = input_quantizer

    def _weight_shape(self):
        return (self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"input: expected last dim in_features = {self.in_features}, got {tuple(x.shape)}")
        lead, out_dtype, lowp = x.shape[:-1], _out_dtype(x), lowp_dtype(x)
        with torch.autocast(x.device.type, enabled=False):  # float32 around the kernels; lowp: autograd.py
            y = self._epilogue(self._matmul(x.reshape(-1, self.in_features).float(), lowp))
        return y.reshape(*lead, self.out_features).to(out_dtype)

    @classmethod
    def from_float(cls, linear: nn.Linear, n_states: int = 1, input_quantizer=None, scaled: bool = True) -> GXNORLinear:
        m = cls(linear.in_features, linear.out_features, linear.bias is not None, linear.weight.device,
                n_states=n_states, input_quantizer=input_quantizer, scaled=scaled)
        m.set_weight(linear.weight)
        if linear.bias is not None:
            m.bias.data.copy_(linear.bias.detach())
        return m

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, n_states={self.n_states}"


class GXNORConv2d(_GXNORBase):
    """nn.Conv2d with discrete weights, stored (O, kh, kw, 2, Wg) packed channels-last (N = 1).

    With a rectangular ternary input_quantizer the input is quantized and packed channels-last
    in one pass and the exact xnor_conv2d kernel runs; backward keeps the packed activations and
    window mask only. A real-valued input (first layer) uses the platform conv on the unpacked
    weight. ``.weight`` has the shape (O, C/groups, kh, kw), stored as above.

    ``max_pool=True``: the output is 2x2 / stride-2 max-pooled (nn.MaxPool2d(2)'s values and
    gradients). With no scale or bias, conv and pool run as one pass that never stores the conv output:
    for a real-valued float32 input (groups = 1) gxnor::conv2d_maxpool2x2 (the C++ kernels on the CPU,
    their Triton twin on a GPU), for the fused ternary input on the CPU gxnor::xnor_conv2d_maxpool2x2
    (the pool on the integer accumulators per chunk of output rows); elsewhere the conv then MaxPool2x2.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode: str = "zeros", device=None, dtype=None, n_states=1,
                 input_quantizer: nn.Module | None = None, scaled: bool = False, max_pool: bool = False):
        super().__init__()
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
        if not isinstance(max_pool, bool):
            raise ValueError(f"max_pool: expected a bool, got {max_pool!r}")
        self.max_pool = max_pool
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"groups: expected a divisor of in_channels = {in_channels} and out_channels = "
                             f"{out_channels}, got {groups}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode: expected 'zeros', 'reflect', 'replicate' or 'circular', got "
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = pair(kernel_size), pair(stride)
        self.dilation, self.groups, self.padding_mode = pair(dilation), groups, padding_mode
        if padding == "valid":
            padding = 0
        if padding == "same":
            if self.stride != (1, 1):
                raise ValueError(f"padding: 'same' needs stride 1 (as nn.Conv2d), got stride {self.stride}")
            tot = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size, strict=True)]
            self._pad4 = (tot[1] // 2, tot[1] - tot[1] // 2, tot[0] // 2, tot[0] - tot[0] // 2)  # F.pad order
            self.padding = "same"
        elif isinstance(padding, str) or min(pair(padding)) < 0:
            raise ValueError(f"padding: expected ints >= 0, 'same' or 'valid', got {padding!r}")
        else:
            self.padding = pair(padding)
            self._pad4 = (self.padding[1], self.padding[1], self.padding[0], self.padding[0])
        self._init_weight((out_channels, *self.kernel_size), in_channels // groups, n_states, device, scaled, dtype)
        self.bias = nn.Parameter(torch.zeros(out_channels, device=device, dtype=dtype or torch.float32)) if bias \
            else None
        self.input_quantizer = input_quantizer

    def _weight_shape(self):
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    max_pool = False  # also the value of a GXNORConv2d pickled before the option existed
    _pool = MaxPool2x2()  # stateless: one instance serves every layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3 and x.shape[0] == self.in_channels:  # unbatched (C, H, W), as nn.Conv2d takes it
            return self.forward(x.unsqueeze(0)).squeeze(0)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"input: expected (N, {self.in_channels}, H, W) or ({self.in_channels}, H, W), got "
                             f"{tuple(x.shape)}")
        out_dtype, lowp = _out_dtype(x), lowp_dtype(x)
        with torch.autocast(x.device.type, enabled=False):  # float32 around the kernels; lowp: autograd.py
            if self.max_pool and self._pool_fused(x, lowp):
                y = self._conv_pool(x.float())
            else:
                y = self._epilogue(self._conv(x.float(), lowp))
                y = self._pool(y) if self.max_pool else y
        return y.to(out_dtype)

    def _pool_fused(self, x: torch.Tensor, lowp) -> bool:
        """Conv and pool in one pass: nothing between them (no scale or bias), numeric zero padding, and a
        real-valued input (conv_pool_route) or the fused ternary input quantizer on the CPU kernels."""
        if lowp is not None or self.weight_scale is not None or self.bias is not None or \
                self.padding_mode != "zeros" or self.padding == "same":
            return False
        if self.input_quantizer is None:
            return conv_pool_route(x, self.groups)
        return self._fused_quantizer() and x.device.type == "cpu" and x.dim() == 4 and fc.native_cpu()

    def _conv_pool(self, x: torch.Tensor) -> torch.Tensor:
        spec = (list(self.stride), list(self.padding), list(self.dilation), self.groups)
        q = self.input_quantizer
        if q is None:
            return TernaryWeightConvPool.apply(x, self._discrete(), self.in_channels, spec, self.n_states)
        if not torch.is_grad_enabled():  # inference: the op itself, compiles with fullgraph=True
            hq = F.pack_conv_input(x, self.groups, threshold=q.r)
            return torch.ops.gxnor.xnor_conv2d_maxpool2x2(hq, self.weight_q, self.in_channels, *spec)[0]
        return TernaryInputConvPool.apply(x, self._discrete(), self.in_channels, spec, q.r, q.a)

    def _conv(self, x: torch.Tensor, lowp: torch.dtype | None = None) -> torch.Tensor:
        pad = self.padding
        if self.padding_mode != "zeros" or pad == "same":  # explicit padding, then a padding-free conv
            x = torch.nn.functional.pad(x, self._pad4, mode="constant" if self.padding_mode == "zeros"
                                        else self.padding_mode)
            pad = (0, 0)
        spec = (list(self.stride), list(pad), list(self.dilation), self.groups)
        q = self.input_quantizer
        fused = self._fused_quantizer()
        if fused and not torch.is_grad_enabled():  # inference: plain ops, compiles with fullgraph=True
            return ternary_input_conv(x, self.weight_q, self.in_channels, spec, q.r)[0]
        if fused:
            return TernaryInputConv.apply(x, self._discrete(), self.in_channels, spec, q.r, q.a, lowp)
        if q is not None:
            x = q(x)
        return TernaryWeightConv.apply(x, self._discrete(), self.in_channels, spec, self.n_states, lowp)

    @classmethod
    def from_float(cls, conv: nn.Conv2d, n_states: int = 1, input_quantizer=None, scaled: bool = True) -> GXNORConv2d:
        m = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                conv.groups, conv.bias is not None, conv.padding_mode, conv.weight.device, n_states=n_states,
                input_quantizer=input_quantizer, scaled=scaled)
        m.set_weight(conv.weight)
        if conv.bias is not None:
            m.bias.data.copy_(conv.bias.detach())
        return m

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, n_states={self.n_states}"
                + (f", padding_mode={self.padding_mode!r}" if self.padding_mode != "zeros" else "")
                + (", scaled" if self.weight_scale is not None else "")
                + (", max_pool=True" if self.max_pool else ""))


@dataclasses.dataclass
class ConversionReport:
    """What quantize_ / convert did to each candidate layer, in the order the data meets them."""

    rows: list[dict]

    def converted(self) -> list[str]:
        return [r["layer"] for r in self.rows if r["action"] == "converted"]

    def __str__(self) -> str:
        from tabulate import tabulate

        before = sum(r["bytes before"] for r in self.rows if r["action"] == "converted")
        after = sum(r["bytes after"] for r in self.rows if r["action"] == "converted")
        table = tabulate([[r["layer"], r["kind"], r["action"], r["why"], r["bytes before"], r["bytes after"]]
                          for r in self.rows], headers=["layer", "kind", "action", "why", "bytes before",
                                                        "bytes after"])
        return (f"{table}\nconverted {len(self.converted())} of {len(self.rows)} layers: weights {before} -> "
                f"{after} bytes")


def _kind(m: nn.Module) -> str | None:
    """'linear', 'conv1d-hf' (Hugging Face GPT-2 Conv1D: weight (in, out)), 'conv2d', or None."""
    if isinstance(m, nn.Linear):
        return "linear"
    if isinstance(m, nn.Conv2d):
        return "conv2d"
    if type(m).__name__ == "Conv1D" and hasattr(m, "nf") and getattr(m, "weight", None) is not None \
            and m.weight.dim() == 2:
        return "conv1d-hf"
    return None


def _make(m: nn.Module, kind: str, n_states: int, scaled: bool, quant=None) -> _GXNORBase:
    if kind == "conv2d":
        return GXNORConv2d.from_float(m, n_states, quant, scaled=scaled)
    if kind == "linear":
        return GXNORLinear.from_float(m, n_states, quant, scaled=scaled)
    lin = nn.Linear(m.weight.shape[0], m.weight.shape[1], bias=m.bias is not None, device=m.weight.device)
    with torch.no_grad():
        lin.weight.copy_(m.weight.T)
        if m.bias is not None:
            lin.bias.copy_(m.bias)
    return GXNORLinear.from_float(lin, n_states, quant, scaled=scaled)


def _data_order(model: nn.Module, names: list[str], example_input) -> tuple[list[str], int]:
    """Candidate names in the order a forward pass calls them, unreached ones (whose weights another
    module reads directly) after them; and how many were reached."""
    seen: list[str] = []
    hooks = [model.get_submodule(n).register_forward_pre_hook(lambda _m, _a, n=n: seen.append(n) if n not in seen
                                                              else None) for n in names]
    try:
        with torch.no_grad():
            model(*example_input) if isinstance(example_input, tuple) else model(example_input)
    finally:
        for h in hooks:
            h.remove()
    return seen + [n for n in names if n not in seen], len(seen)


def quantize_(model: nn.Module, filter_fn=None, *, skip=("first", "last"), n_states: int = 1,
              scaled: bool = True, activations: TernaryActivation | None = None,
              example_input=None) -> ConversionReport:
    """Replace nn.Linear (and subclasses), nn.Conv2d and Hugging Face Conv1D layers by GXNOR layers in
    place (torchao's quantize_ style); returns a ConversionReport.

    filter_fn(module, fqn) -> bool selects layers. ``skip`` holds names, or "first" / "last": the
    first / last candidate the data passes through (traced with ``example_input`` when given, else
    the registration order). ``scaled`` keeps a float scale per output channel (twn_ternarize), so a
    converted layer keeps its function. Weights only by default; ``activations`` (a TernaryActivation,
    e.g. ``TernaryActivation(r=0.5)``) also ternarises each converted layer's input, which then runs
    on the exact packed kernels (xnor_gemm / xnor_conv2d); that changes the function: fine-tune after.
    A module used in several places is converted once and stays shared; a layer whose weight is tied
    to a module that is not converted (an LM head tied to its embedding) is skipped with the reason;
    nn.MultiheadAttention's out_proj is skipped (the attention reads its weight directly).
    """
    if not 0 <= n_states <= 7:
        raise ValueError(f"n_states: expected N in [0, 7], got {n_states}")
    cands = [(n, m, _kind(m)) for n, m in model.named_modules() if _kind(m) is not None]
    names = [n for n, _, _ in cands]
    reached = len(names)
    if example_input is not None:
        names, reached = _data_order(model, names, example_input)
    by_name = {n: (m, k) for n, m, k in cands}
    skip = set(skip or ())
    skipped = {}
    if names and "first" in skip:
        skipped[names[0]] = "first layer (skip)"
    if reached and "last" in skip:
        skipped[names[reached - 1]] = "last layer (skip)"
    for n in names:
        if n in skip:
            skipped[n] = "named in skip"
    owners: dict[int, set[str]] = {}
    for mn, mod in model.named_modules(remove_duplicate=False):
        for p in mod.parameters(recurse=False):
            owners.setdefault(id(p), set()).add(mn)
    mha_out = {f"{mn}.out_proj" if mn else "out_proj" for mn, mod in model.named_modules()
               if isinstance(mod, nn.MultiheadAttention)}
    cand_ids = {id(m) for _, m, _ in cands}
    rows, new_of = [], {}
    for n in names:
        m, kind = by_name[n]
        nbytes = m.weight.numel() * m.weight.element_size()
        row = {"layer": n, "kind": type(m).__name__, "bytes before": nbytes, "bytes after": nbytes}
        why = skipped.get(n) or ("the model itself (convert its parent)" if n == "" else None)
        if why is None and n in mha_out:
            why = "read directly by nn.MultiheadAttention"
        if why is None and filter_fn is not None and not filter_fn(m, n):
            why = "filter_fn"
        if why is None:
            tied = [o for o in owners.get(id(m.weight), ()) if id(model.get_submodule(o)) not in cand_ids]
            if tied:
                why = f"weight tied to {tied[0]} (not converted)"
        if why is None:
            quant = copy.deepcopy(activations) if activations is not None else None
            new = _make(m, kind, n_states, scaled, quant)
            new_of[id(m)] = new
            row.update(action="converted", why="", **{"bytes after": sum(
                nbytes_stored(t) for t in (new.weight, new.weight_scale) if t is not None)})
        else:
            row.update(action="skipped", why=why)
        rows.append(row)
    for mod in list(model.modules()):  # every reference, so shared modules stay shared
        for cname, child in list(mod._modules.items()):  # named_children() would skip repeats
            if child is not None and id(child) in new_of:
                setattr(mod, cname, new_of[id(child)])
    report = ConversionReport(rows)
    if not report.converted():
        warnings.warn("convert: no nn.Linear or nn.Conv2d layer was converted (none found, or all skipped)",
                      stacklevel=3)
    return report


def convert(model: nn.Module, filter_fn=None, skip=("first", "last"), n_states: int = 1, *, scaled: bool = True,
            activations: TernaryActivation | None = None, example_input=None, verbose: bool = False) -> nn.Module:
    """Swap nn.Linear / nn.Conv2d (and Hugging Face Conv1D) for GXNOR modules in place and return the
    model; the report (quantize_'s) is ``model.gxnor_report`` and printed with ``verbose``."""
    report = quantize_(model, filter_fn, skip=skip, n_states=n_states, scaled=scaled, activations=activations,
                       example_input=example_input)
    model.gxnor_report = report
    if verbose:
        print(report)
    return model
