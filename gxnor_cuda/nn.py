"""Drop-in GXNOR modules: GXNORLinear, GXNORConv2d, TernaryActivation, and convert().

Weights are Parameters holding the discrete state only: packed int32 (N = 1, 2 bits per weight)
or int8 state indices (N != 1); ``.weight`` returns the dense values for inspection. Train them
with ``gxnor_cuda.optim.DST``.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from . import format as fmt
from . import functional as F
from .autograd import TernaryInputMatmul, TernaryWeightMatmul, _dense, ternary_input_matmul
from .autograd_conv import TernaryInputConv, TernaryWeightConv, dense_conv_weight, ternary_input_conv
from .optim import stamp_of


class TernaryActivation(nn.Module):
    """phi_r: +1 if x >= r, -1 if x <= -r, else 0; surrogate gradient window of half-width a.

    window: "rect" (1/(2a) on r-a <= |x| <= r+a), "tri" (peak 1/a at |x| = r), "bell" (Gaussian,
    std a, unit area per jump). Multi-level (n_states > 1): 2^N + 1 levels in [-1, 1].
    """

    def __init__(self, r: float = 1.0, a: float = 0.5, window: str = "rect", n_states: int = 1):
        super().__init__()
        if not r > 0 or not a > 0:
            raise ValueError(f"r, a: expected positive floats, got r={r}, a={a}")
        if window not in ("rect", "tri", "bell"):
            raise ValueError(f"window: expected 'rect', 'tri' or 'bell', got {window!r}")
        self.r, self.a, self.window, self.n_states = float(r), float(a), window, int(n_states)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _PhiFn.apply(x, self.r, self.a, self.window, self.n_states)

    def extra_repr(self) -> str:
        return f"r={self.r}, a={self.a}, window={self.window!r}, n_states={self.n_states}"


def phi_levels(x: torch.Tensor, r: float, n_states: int) -> torch.Tensor:
    if n_states <= 1:
        return torch.where(x >= r, 1.0, torch.where(x <= -r, -1.0, 0.0)).to(x.dtype)
    h = 2 ** (n_states - 1)  # levels k/h, thresholds halfway, scaled by r
    return (torch.clamp(torch.round(x / r * h), -h, h) / h).to(x.dtype)


def window_grad(x: torch.Tensor, r: float, a: float, window: str) -> torch.Tensor:
    d = (x.abs() - r).abs()
    if window == "rect":
        return (d <= a).to(x.dtype) / (2 * a)
    if window == "tri":
        return torch.clamp(1 - d / a, min=0) / a
    return torch.exp(-0.5 * (d / a) ** 2) / (a * math.sqrt(2 * math.pi))


class _PhiFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, r, a, window, n_states):
        ctx.save_for_backward(x)
        ctx.r, ctx.a, ctx.window = r, a, window
        return phi_levels(x, r, n_states)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * window_grad(x, ctx.r, ctx.a, ctx.window), None, None, None, None


MultiStepActivation = TernaryActivation


def _init_states(shape, n_states, device, generator=None):
    u = torch.rand(shape, device=device, generator=generator) * 2 - 1
    if n_states == 0:
        return torch.where(u >= 0, 1, -1).to(torch.int8)
    h = 2 ** (n_states - 1)
    return torch.round(u * h).clamp(-h, h).to(torch.int8)


class _GXNORBase(nn.Module):
    """Shared weight storage: a discrete Parameter plus format metadata."""

    def _init_weight(self, lead: tuple[int, ...], K: int, n_states: int, device):
        """Storage (*lead, 2, W) packed for N = 1, else (*lead, K) int8 states; K = packed axis."""
        if not 0 <= n_states <= 7:
            raise ValueError(f"n_states: expected N in [0, 7], got {n_states}")
        self.K, self.n_states = K, n_states
        s = _init_states((*lead, K), n_states, device)
        data = F.pack_ternary(s) if n_states == 1 else s
        self.weight_q = nn.Parameter(data, requires_grad=False)
        self.weight_q.gxnor_K = K
        self.weight_q.gxnor_states = n_states
        self.anchor = nn.Parameter(torch.zeros((), device=device))
        self.register_buffer("format_version", torch.tensor(fmt.FORMAT_VERSION), persistent=True)
        self._stamp()

    def _stamp(self) -> None:
        """Record that the stored weight holds canonical values written here (optim.stamp_of)."""
        self.weight_q.gxnor_stamp = stamp_of(self.weight_q)

    def _apply(self, fn, recurse=True):
        trusted = getattr(self.weight_q, "gxnor_stamp", None) == stamp_of(self.weight_q)
        out = super()._apply(fn, recurse)
        self.weight_q.gxnor_K = self.K
        self.weight_q.gxnor_states = self.n_states
        if trusted:  # a move or copy of canonical words is canonical
            self._stamp()
        return out

    @property
    def weight(self) -> torch.Tensor:
        """Dense discrete weight values (float32), for inspection."""
        return _dense(self.weight_q, self.K, self.n_states).reshape(self._weight_shape())

    def _to_storage_order(self, w: torch.Tensor) -> torch.Tensor:
        return w.reshape(w.shape[0], -1)

    def set_weight(self, w: torch.Tensor) -> None:
        """Ternarise / discretise a float weight (nearest state) into the discrete storage."""
        w = self._to_storage_order(w.detach()).to(self.weight_q.device, torch.float32)
        if self.n_states == 0:
            s = torch.where(w >= 0, 1, -1).to(torch.int8)
        else:
            h = 2 ** (self.n_states - 1)
            s = torch.round(w.clamp(-1, 1) * h).to(torch.int8)
        self.weight_q.data = F.pack_ternary(s) if self.n_states == 1 else s
        self._stamp()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        wkey = prefix + "weight"
        if wkey in state_dict and prefix + "weight_q" not in state_dict:  # a float checkpoint
            w = state_dict.pop(wkey)
            if tuple(w.shape) != tuple(self._weight_shape()):
                errors.append(f"{wkey}: expected shape {tuple(self._weight_shape())}, got {tuple(w.shape)}")
                return
            self.set_weight(w)
            state_dict[prefix + "weight_q"] = self.weight_q.data.clone()
            state_dict.setdefault(prefix + "anchor", self.anchor.data.clone())
            state_dict.setdefault(prefix + "format_version", self.format_version.clone())
        vkey = prefix + "format_version"
        if vkey in state_dict and int(state_dict[vkey]) != fmt.FORMAT_VERSION:
            errors.append(f"{vkey}: expected packed format {fmt.FORMAT_VERSION}, got {int(state_dict[vkey])}")
            return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing, unexpected, errors)

    def _matmul(self, x2d: torch.Tensor) -> torch.Tensor:
        q = self.input_quantizer
        fused = (isinstance(q, TernaryActivation) and q.window == "rect" and q.n_states == 1
                 and self.n_states == 1)
        if fused and not torch.is_grad_enabled():  # inference: plain ops, compiles with fullgraph=True
            return ternary_input_matmul(x2d, self.weight_q, self.K, q.r)[0]
        if fused:
            return TernaryInputMatmul.apply(x2d, self.weight_q, self.anchor, self.K, q.r, q.a)
        if q is not None:
            x2d = q(x2d)
        if not torch.is_grad_enabled() and self.n_states == 1:
            return F.ternary_matmul(x2d.contiguous(), self.weight_q, self.K)
        return TernaryWeightMatmul.apply(x2d, self.weight_q, self.anchor, self.K, self.n_states)


class GXNORLinear(_GXNORBase):
    """nn.Linear with discrete weights (N = n_states; 1 = ternary, packed 2 bits).

    input_quantizer: optional TernaryActivation applied to the input; a rectangular ternary one is
    fused: the input is quantized and packed in one pass and the product runs on xnor_gemm.
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, n_states=1,
                 input_quantizer: nn.Module | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self._init_weight((out_features,), in_features, n_states, device)
        self.bias = nn.Parameter(torch.zeros(out_features, device=device, dtype=dtype or torch.float32)) if bias \
            else None
        self.input_quantizer = input_quantizer

    def _weight_shape(self):
        return (self.out_features, self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"input: expected last dim in_features = {self.in_features}, got {tuple(x.shape)}")
        lead = x.shape[:-1]
        y = self._matmul(x.reshape(-1, self.in_features).float())
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)

    @classmethod
    def from_float(cls, linear: nn.Linear, n_states: int = 1, input_quantizer=None) -> GXNORLinear:
        m = cls(linear.in_features, linear.out_features, linear.bias is not None, linear.weight.device,
                n_states=n_states, input_quantizer=input_quantizer)
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
    weight. ``.weight`` gives the dense (O, C/groups, kh, kw) values.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, device=None, dtype=None, n_states=1, input_quantizer: nn.Module | None = None):
        super().__init__()
        pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"groups: expected a divisor of in_channels = {in_channels} and out_channels = "
                             f"{out_channels}, got {groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = pair(kernel_size), pair(stride)
        self.padding, self.dilation, self.groups = pair(padding), pair(dilation), groups
        if isinstance(padding, str) or min(self.padding) < 0:
            raise ValueError(f"padding: expected ints >= 0, got {padding!r}")
        self._init_weight((out_channels, *self.kernel_size), in_channels // groups, n_states, device)
        self.bias = nn.Parameter(torch.zeros(out_channels, device=device, dtype=dtype or torch.float32)) if bias \
            else None
        self.input_quantizer = input_quantizer

    def _weight_shape(self):
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def weight(self) -> torch.Tensor:
        """Dense discrete weight values (float32, (O, C/groups, kh, kw)), for inspection."""
        return dense_conv_weight(self.weight_q, self.K, self.n_states)

    def _to_storage_order(self, w: torch.Tensor) -> torch.Tensor:
        return w.reshape(self._weight_shape()).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"input: expected (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        spec = (list(self.stride), list(self.padding), list(self.dilation), self.groups)
        x = x.float()
        q = self.input_quantizer
        fused = (isinstance(q, TernaryActivation) and q.window == "rect" and q.n_states == 1
                 and self.n_states == 1)
        if fused and not torch.is_grad_enabled():  # inference: plain ops, compiles with fullgraph=True
            return ternary_input_conv(x, self.weight_q, self.in_channels, spec, q.r, self.bias)[0]
        if fused:
            y = TernaryInputConv.apply(x, self.weight_q, self.anchor, self.in_channels, spec, q.r, q.a)
        else:
            if q is not None:
                x = q(x)
            y = TernaryWeightConv.apply(x, self.weight_q, self.anchor, self.in_channels, spec, self.n_states)
        return y if self.bias is None else y + self.bias[:, None, None]

    @classmethod
    def from_float(cls, conv: nn.Conv2d, n_states: int = 1, input_quantizer=None) -> GXNORConv2d:
        m = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                conv.groups, conv.bias is not None, conv.weight.device, n_states=n_states,
                input_quantizer=input_quantizer)
        m.set_weight(conv.weight)
        if conv.bias is not None:
            m.bias.data.copy_(conv.bias.detach())
        return m

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, n_states={self.n_states}")


def convert(model: nn.Module, filter_fn=None, skip=("first", "last"), n_states: int = 1) -> nn.Module:
    """Swap nn.Linear / nn.Conv2d for GXNOR modules in place (weights ternarised) and return the model.

    filter_fn(module, fqn) -> bool selects layers; ``skip`` holds names, or "first"/"last" for the
    first/last convertible layer (kept in float, as is usual for quantised networks).
    """
    if not 0 <= n_states <= 7:
        raise ValueError(f"n_states: expected N in [0, 7], got {n_states}")
    cands = [(n, m) for n, m in model.named_modules() if type(m) in (nn.Linear, nn.Conv2d)]
    skip = set(skip or ())
    names = {n for n, _ in cands}
    if cands and "first" in skip:
        names.discard(cands[0][0])
    if cands and "last" in skip:
        names.discard(cands[-1][0])
    names -= skip
    done = 0
    for fqn, mod in cands:
        if fqn not in names or (filter_fn is not None and not filter_fn(mod, fqn)):
            continue
        parent = model.get_submodule(fqn.rpartition(".")[0]) if "." in fqn else model
        new = (GXNORLinear if isinstance(mod, nn.Linear) else GXNORConv2d).from_float(mod, n_states)
        setattr(parent, fqn.rpartition(".")[2], new)
        done += 1
    if done == 0:
        warnings.warn("convert: no nn.Linear or nn.Conv2d layer was converted (none found, or all skipped)",
                      stacklevel=2)
    return model
