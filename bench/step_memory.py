"""Peak tensor memory of a step: the bytes of tensor storage a step creates and holds at its peak.

ru_maxrss counts the process: the allocator's cached pages, libraries' one-time buffers and the
first step's lazy set-up land on every contender and hide the step's own tensors at small batches.
This counts what the step's ops allocate: every new op output's storage (views and in-place
results are not new) (seen by a dispatch mode,
backward included: on the CPU the autograd engine runs in the caller's thread) from its creation
until the storage is freed. An uninitialised tensor (``empty`` and kin) counts from the first op
that writes it (its schema marks the argument written): memory that is only read for its shape
and strides is never touched and takes no pages. Buffers an op allocates and frees inside itself
(its workspace) are not counted, for any contender; nor the inner tensors of a wrapper tensor
subclass (torchao).
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

_UNINITIALISED = {"empty", "empty_strided", "empty_like", "new_empty", "new_empty_strided"}


def _storage(t) -> torch.UntypedStorage | None:
    if not isinstance(t, torch.Tensor) or t.device.type == "meta":
        return None
    try:
        return t.untyped_storage()  # one Python object per storage while it lives, so id() keys it
    except (NotImplementedError, RuntimeError):  # a wrapper subclass without storage of its own
        return None


class StepTensorMemory(TorchDispatchMode):
    """``with StepTensorMemory() as m: step()`` -> m.peak: the most bytes of storages created inside
    the block alive at once; m.live: those still alive at its end (new gradients, optimizer state)."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._counted: set[int] = set()
        self._pending: dict[int, int] = {}  # uninitialised storages not yet written: id -> bytes

    def _add(self, s: torch.UntypedStorage, pending: bool) -> None:
        key, n = id(s), s.nbytes()
        if key in self._counted or key in self._pending or n == 0:
            return
        weakref.finalize(s, self._free, key, n)
        if pending:
            self._pending[key] = n
            return
        self._count(key, n)

    def _count(self, key: int, n: int) -> None:
        self._counted.add(key)
        self.live += n
        self.peak = max(self.peak, self.live)

    def _free(self, key: int, n: int) -> None:
        if key in self._counted:
            self._counted.discard(key)
            self.live -= n
        self._pending.pop(key, None)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        schema = func._schema
        for i, a in enumerate(schema.arguments):  # arguments this op writes: pending storages count now
            if a.alias_info is None or not a.alias_info.is_write:
                continue
            v = kwargs.get(a.name) if a.kwarg_only or a.name in kwargs else (args[i] if i < len(args) else None)
            for t in tree_flatten(v)[0]:
                s = _storage(t)
                if s is not None and id(s) in self._pending:
                    self._count(id(s), self._pending.pop(id(s)))
        out = func(*args, **kwargs)
        pending = func.overloadpacket.__name__ in _UNINITIALISED
        outs = out if isinstance(out, (tuple, list)) and len(schema.returns) > 1 else [out]
        for ret, o in zip(schema.returns, outs, strict=False):
            if ret.alias_info is not None:  # a view or an in-place result: an existing storage
                continue
            for t in tree_flatten(o)[0]:
                s = _storage(t)
                if s is not None:
                    self._add(s, pending)
        return out
