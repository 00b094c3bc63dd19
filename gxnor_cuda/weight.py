"""DiscreteWeight: a GXNOR layer's weight as PyTorch sees a weight, stored in 2 bits.

The tensor has the float layer's logical shape and a float dtype (Linear (O, K), Conv2d
(O, C/groups, kh, kw)), so ``.grad``, DistributedDataParallel's buckets, ``.to()``, deepcopy and
pickling treat it as any weight; its values live in ``.packed``, in storage order (*lead, K)
with the packed axis K = dim 1 moved last:
- N = 1 (ternary): format v1 words (*lead, 2, W) int32, W = 2 * ceil(K / 64);
- N != 1: int8 state indices (*lead, K), value s / 2^(N-1) (N = 0: {-1, +1}).
The logical strides are those of the storage order (channels-last for a conv weight), so a
gradient computed in storage order (the kernels' layout) is accepted as ``.grad`` without a copy,
and ``storage_order(p.grad)`` is contiguous again for the DST kernel.

Reading ops (``w.sum()``, ``w == 0``, ``F.linear(x, w)``) see the dense values. In-place writes
other than ``copy_`` are refused: the values change only through the DST optimizer, ``copy_`` (of
another DiscreteWeight, or of dense values on the states grid: how DDP broadcasts rank 0's
weights) or the layer's ``set_weight``.
"""

from __future__ import annotations

import math

import torch
from torch.utils._pytree import tree_map

from . import functional as F

aten = torch.ops.aten


def stamp_of(t: torch.Tensor) -> tuple[int, int]:
    """(storage, version) of a discrete weight's storage. The optimizer and the modules record it after
    they write canonical values; the optimizer validates the weight (one host sync) whenever it differs:
    a new storage (``.to()``, deepcopy) or a tracked in-place write (``copy_``, ``load_state_dict``)."""
    t = t.packed if isinstance(t, DiscreteWeight) else t
    return t.untyped_storage()._cdata, t._version


def is_storage(t: torch.Tensor) -> bool:
    """Whether t is the storage of a DiscreteWeight (tagged with its K and N)."""
    return hasattr(t, "gxnor_K") and t.dtype in (torch.int32, torch.int8)


def decode(storage: torch.Tensor, K: int, n_states: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Storage -> dense values in storage order (*lead, K): unpacked words (N = 1), or state indices
    over 2^(N-1) (N = 0: the indices themselves, {-1, +1})."""
    if n_states == 1:
        return F.unpack_ternary(storage, K, dtype)
    return storage.to(dtype) / (1.0 if n_states == 0 else 2.0 ** (n_states - 1))


def _orders(ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(logical -> storage order, storage -> logical order): dim 1 (K) last in storage."""
    to_storage = (0, *range(2, ndim), 1) if ndim > 1 else (0,)
    to_logical = tuple(to_storage.index(i) for i in range(ndim))
    return to_storage, to_logical


def _storage_shape(shape: tuple[int, ...], n_states: int) -> tuple[int, ...]:
    lead = (shape[0], *shape[2:])
    return (*lead, 2, 2 * math.ceil(shape[1] / 64)) if n_states == 1 else (*lead, shape[1])


class DiscreteWeight(torch.Tensor):
    """See the module docstring. ``DiscreteWeight(packed, shape, n_states, dtype=torch.float32)``."""

    packed: torch.Tensor
    n_states: int

    @staticmethod
    def __new__(cls, packed: torch.Tensor, shape, n_states: int, dtype: torch.dtype = torch.float32,
                requires_grad: bool = False):
        shape = tuple(int(s) for s in shape)
        to_storage, _ = _orders(len(shape))
        sizes = [shape[d] for d in to_storage]
        strides = [0] * len(shape)
        step = 1
        for i in reversed(range(len(shape))):  # contiguous strides of the storage order, by logical dim
            strides[to_storage[i]] = step
            step *= max(sizes[i], 1)
        return torch.Tensor._make_wrapper_subclass(cls, shape, strides=strides, dtype=dtype, device=packed.device,
                                                   requires_grad=requires_grad)

    def __init__(self, packed, shape, n_states, dtype=torch.float32, requires_grad=False):
        shape = tuple(int(s) for s in shape)
        want = _storage_shape(shape, n_states)
        kind = torch.int32 if n_states == 1 else torch.int8
        if len(shape) < 2 or tuple(packed.shape) != want or packed.dtype != kind:
            raise ValueError(f"packed: expected {kind} storage of shape {want} for a weight of shape {shape} with "
                             f"n_states = {n_states}, got {packed.dtype} {tuple(packed.shape)}")
        self.packed, self.n_states = packed, int(n_states)
        packed.gxnor_K, packed.gxnor_states = shape[1], int(n_states)  # read by layout caches (optim.derived)

    @property
    def K(self) -> int:
        return self.shape[1]

    def storage_order(self, t: torch.Tensor) -> torch.Tensor:
        """A tensor of this weight's logical shape (its gradient) in storage order (*lead, K)."""
        return t.permute(_orders(t.dim())[0])

    def dequantize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The dense values, logical shape, ``dtype`` (default: this tensor's)."""
        return decode(self.packed, self.K, self.n_states, dtype or self.dtype).permute(_orders(self.dim())[1])

    def nbytes_stored(self) -> int:
        return self.packed.numel() * self.packed.element_size()

    def __repr__(self, *, tensor_contents=None):
        return (f"DiscreteWeight(shape={tuple(self.shape)}, n_states={self.n_states}, dtype={self.dtype}, "
                f"storage {tuple(self.packed.shape)} {self.packed.dtype}, device={self.device})")

    def __tensor_flatten__(self):
        return ["packed"], (tuple(self.shape), self.n_states, self.dtype)

    @staticmethod
    def __tensor_unflatten__(inner, meta, outer_size, outer_stride):
        shape, n_states, dtype = meta
        return DiscreteWeight(inner["packed"], shape, n_states, dtype)

    def __reduce_ex__(self, proto):
        return _rebuild, (self.packed, tuple(self.shape), self.n_states, self.dtype, self.requires_grad,
                          bool(getattr(self, "_is_param", False)))

    def _like(self, packed: torch.Tensor, dtype: torch.dtype | None = None) -> DiscreteWeight:
        out = DiscreteWeight(packed, self.shape, self.n_states, dtype or self.dtype)
        if getattr(self.packed, "gxnor_stamp", None) == stamp_of(self.packed):  # canonical in, canonical out
            packed.gxnor_stamp = stamp_of(packed)
        return out

    def encode(self, dense: torch.Tensor) -> torch.Tensor:
        """Dense values of this weight's shape, on the states grid, -> storage (refused otherwise)."""
        if tuple(dense.shape) != tuple(self.shape):
            raise ValueError(f"src: expected a tensor of shape {tuple(self.shape)}, got {tuple(dense.shape)}")
        d = self.storage_order(dense.detach()).to(self.packed.device, torch.float32)
        h = 1.0 if self.n_states <= 1 else 2.0 ** (self.n_states - 1)
        s = d * h
        ok = (s == torch.round(s)) & (s.abs() <= h) & ((s != 0) if self.n_states == 0 else True)
        if not bool(ok.all()):
            raise ValueError(f"src: expected values on the {self.n_states}-state grid of a discrete weight "
                             f"(k / {h:g}, |k| <= {h:g}), got others")
        s = s.to(torch.int8).contiguous()
        return F.pack_ternary(s) if self.n_states == 1 else s

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (aten.detach.default, aten.alias.default):
            return args[0]._like(args[0].packed)
        if func is aten.clone.default:
            w, fmt = args[0], kwargs.get("memory_format", torch.preserve_format)
            if fmt in (None, torch.preserve_format) or w.is_contiguous(memory_format=fmt):
                return w._like(w.packed.clone())
            return w.dequantize().clone(memory_format=fmt)  # .contiguous() of a conv weight: dense NCHW values
        if func is aten._to_copy.default:  # .to(device / float dtype): the storage moves, the dtype is logical
            w = args[0]
            if kwargs.get("dtype") is not None and not kwargs["dtype"].is_floating_point:  # .long(): dense values
                return func(w.dequantize(), **kwargs)
            dev = kwargs.get("device") or w.device
            return w._like(w.packed.to(dev, non_blocking=bool(kwargs.get("non_blocking", False))),
                           kwargs.get("dtype") or w.dtype)
        if func is aten.copy_.default:
            dst, src = args[0], args[1]
            if isinstance(src, DiscreteWeight) and src.n_states == dst.n_states:
                if tuple(src.shape) != tuple(dst.shape):
                    raise ValueError(f"src: expected shape {tuple(dst.shape)}, got {tuple(src.shape)}")
                dst.packed.copy_(src.packed)
            else:
                dst.packed.copy_(dst.encode(src.dequantize() if isinstance(src, DiscreteWeight) else src))
            return dst
        if func._schema.is_mutable or func.overloadpacket.__name__.endswith("_"):
            raise RuntimeError(f"DiscreteWeight: in-place {func} is not supported; a discrete weight changes only "
                               "through gxnor_cuda.optim.DST, copy_ or its layer's set_weight")
        dense = lambda a: a.dequantize() if isinstance(a, DiscreteWeight) else a  # noqa: E731
        return func(*tree_map(dense, args), **tree_map(dense, kwargs))


def _rebuild(packed, shape, n_states, dtype, requires_grad, is_param):
    w = DiscreteWeight(packed, shape, n_states, dtype)
    return torch.nn.Parameter(w, requires_grad) if is_param else w.requires_grad_(requires_grad)


def nbytes_stored(t: torch.Tensor) -> int:
    """Bytes a parameter keeps: a DiscreteWeight's storage, else its elements."""
    return t.nbytes_stored() if isinstance(t, DiscreteWeight) else t.numel() * t.element_size()


# torch.load(weights_only=True) rebuilds a pickled DiscreteWeight from its storage tensor
torch.serialization.add_safe_globals([DiscreteWeight, _rebuild])
