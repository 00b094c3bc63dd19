"""Peak tensor memory of a step: the bytes of tensor storage a step creates and holds at its peak.

ru_maxrss counts the process: the allocator's cached pages, libraries' one-time buffers and the
first step's lazy set-up land on every contender and hide the step's own tensors at small batches.
This counts what the step's ops allocate: every op output's storage (seen by a dispatch mode,
backward included: on the CPU the autograd engine runs in the caller's thread) from its creation
until the storage is freed. Buffers an op allocates and frees inside itself (its workspace) are
not counted, for any contender; nor the inner tensors of a wrapper tensor subclass (torchao).
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class StepTensorMemory(TorchDispatchMode):
    """``with StepTensorMemory() as m: step()`` -> m.peak: the most bytes of storages created inside
    the block alive at once; m.live: those still alive at its end (new gradients, optimizer state)."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self._seen: set[int] = set()

    def _track(self, t: torch.Tensor) -> None:
        try:
            s = t.untyped_storage()  # one Python object per storage while it lives, so id() keys it
        except (NotImplementedError, RuntimeError):  # a wrapper subclass without storage of its own
            return
        key, n = id(s), s.nbytes()
        if key in self._seen or n == 0:
            return
        self._seen.add(key)
        self.live += n
        self.peak = max(self.peak, self.live)
        weakref.finalize(s, self._free, key, n)

    def _free(self, key: int, n: int) -> None:
        self.live -= n
        self._seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                self._track(t)
        return out
