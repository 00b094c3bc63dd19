"""Shared test helpers: backend lists, random ternary tensors, poisoned outputs."""

from __future__ import annotations

import pytest
import torch

import gxnor_cuda
from gxnor_cuda import _backend

# Backends that take CPU tensors here: the C++ kernels, and Triton through its interpreter.
CPU_BACKENDS = [b for b in ("cpp", "triton") if _backend.available(b)]
UNAVAILABLE = {b: _backend.STATUS.get(b, (False, "?"))[1] for b in ("cpp", "triton", "cuda")
               if not _backend.available(b)}


def backend_params(include_cuda: bool = True):
    """pytest params for every backend; unavailable ones skip, naming why."""
    out = []
    for b in ("cpp", "triton", "cuda"):
        if b == "cuda" and not include_cuda:
            continue
        marks = []
        if not _backend.available(b):
            marks = [pytest.mark.skip(reason=f"{b}: {_backend.STATUS.get(b, (False, '?'))[1]}")]
        out.append(pytest.param(b, marks=marks, id=b))
    return out


def device_for(backend: str) -> torch.device:
    if backend == "cuda" or (backend == "triton" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def rand_ternary(*shape, p_zero: float = 1 / 3, dtype=torch.float32, device="cpu") -> torch.Tensor:
    """Random values in {-1, 0, +1} with P(0) = p_zero."""
    nz = torch.rand(shape, device=device) >= p_zero
    sign = torch.where(torch.rand(shape, device=device) < 0.5, -1, 1)
    return (nz * sign).to(dtype)


__all__ = ["CPU_BACKENDS", "UNAVAILABLE", "backend_params", "device_for", "gxnor_cuda", "rand_ternary"]


def parsed_train_args(argv, monkeypatch):
    """The options ``python -m gxnor_cuda.train`` resolves for argv (recipe defaults filled in), on a
    tiny fake MNIST, stopping before the first epoch."""
    import gxnor_cuda.train as T

    fake = ((torch.randn(64, 1, 28, 28), torch.zeros(64, dtype=torch.long)),
            (torch.randn(8, 1, 28, 28), torch.zeros(8, dtype=torch.long)))
    monkeypatch.setattr(T.D, "load", lambda *a: fake)
    seen = []

    def stop(args, ep):
        seen.append(args)
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "batch_at", stop)
    with pytest.raises(KeyboardInterrupt):
        T.main(argv)
    return seen[0]
