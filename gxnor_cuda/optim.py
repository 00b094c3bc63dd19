"""The DST optimizer: discrete weights move by stochastic state transitions, no hidden floats.

``DST(params, lr, m=3.0, base="sgd" | "normalized" | "adam", seed=None)``:
- discrete weights (``gxnor_cuda.weight.DiscreteWeight`` Parameters made by gxnor_cuda.nn: 2-bit
  ternary or int8 multi-state storage, an ordinary float ``.grad`` of the logical shape) get the
  in-place DST kernel on their storage;
- float parameters (BatchNorm, biases) get the base update itself.
Bases: "sgd" D = -lr * grad (no per-weight float state: 2 bits per ternary weight);
"normalized" divides each tensor's gradient by its RMS (one float per tensor); "rownorm" divides each
output row's gradient (dim 0: one output neuron or channel, whose scale the following BatchNorm
removes) by that row's RMS (one transient float per row, still no per-weight state); "adam" is the
original code's rule (D = Adam step; two float moments per weight: 8 extra bytes per weight).
state_dict carries (seed, offset, step, rng): a resumed run is bit-identical to an uninterrupted
one, and keeps the random-number contract it started with (``rng``: 2 for new runs, 1 for runs
saved before contract 2 existed).

No host sync inside ``step``: the non-finite gradient count stays on the device
(``nonfinite_total`` reads it); stored weights are validated (one sync) only the first time the
optimizer sees them and whenever something other than the optimizer or the modules wrote them
(``stamp_of``). Under torch.distributed the DST seed is rank 0's, so with gradients that
DistributedDataParallel (or FSDP) averaged, every rank's discrete weights stay bit-identical.
"""

from __future__ import annotations

import math
import warnings

import torch

from . import functional as F
from ._checks import RNG_VERSIONS
from .reference_dst import counters_used
from .weight import DiscreteWeight, is_storage, stamp_of

BASES = ("sgd", "normalized", "rownorm", "adam")


def is_discrete(p: torch.Tensor) -> bool:
    return isinstance(p, DiscreteWeight)


class DST(torch.optim.Optimizer):
    """Discrete State Transition optimizer (see module docstring)."""

    def __init__(self, params, lr: float = 0.1, m: float = 3.0, base: str = "sgd", seed: int | None = None,
                 betas=(0.9, 0.999), eps: float = 1e-8, rng: int = 2):
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr: expected a finite float > 0, got {lr!r}")
        if not (math.isfinite(m) and m > 0):
            raise ValueError(f"m: expected a finite float > 0, got {m!r}")
        if base not in BASES:
            raise ValueError(f"base: expected one of {BASES}, got {base!r}")
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        if not 0 <= seed < 2**63:
            raise ValueError(f"seed: expected an int in [0, 2^63), got {seed}")
        if rng not in RNG_VERSIONS:
            raise ValueError(f"rng: expected a random-number contract in {RNG_VERSIONS}, got {rng!r}")
        super().__init__(params, dict(lr=lr, m=m, base=base, betas=betas, eps=eps))
        self.dst_seed = _rank0(int(seed))
        self.dst_offset = 0
        self.dst_step = 0
        self.dst_rng = rng
        self._nonfinite = None  # () int64 on the weights' device, summed without a sync
        self._warned = False

    @classmethod
    def for_model(cls, model: torch.nn.Module, lr: float = 0.02, float_lr: float = 1e-3, base: str = "normalized",
                  **kw) -> DST:
        """DST for a model's discrete weights, Adam (``float_lr``) for its float parameters (BatchNorm,
        biases, per-channel scales, the float first and last layers)."""
        disc = [p for p in model.parameters() if is_discrete(p)]
        flt = [p for p in model.parameters() if not is_discrete(p) and p.requires_grad]
        return cls([{"params": disc}, {"params": flt, "base": "adam", "lr": float_lr}], lr=lr, base=base, **kw)

    @property
    def nonfinite_total(self) -> int:
        """Non-finite gradient entries seen so far (their weights did not move). Reading it syncs."""
        return 0 if self._nonfinite is None else int(self._nonfinite)

    def state_dict(self):
        sd = super().state_dict()
        sd["dst"] = {"seed": self.dst_seed, "offset": self.dst_offset, "step": self.dst_step, "rng": self.dst_rng}
        return sd

    def load_state_dict(self, state_dict):
        sd = dict(state_dict)
        dst = sd.pop("dst", None)
        if dst is None:
            raise ValueError("state_dict: expected a DST optimizer state with a 'dst' entry (seed, offset, step)")
        super().load_state_dict(sd)
        self.dst_seed, self.dst_offset, self.dst_step = int(dst["seed"]), int(dst["offset"]), int(dst["step"])
        self.dst_rng = int(dst.get("rng", 1))  # states saved before contract 2 resume under contract 1

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.dst_step += 1
        for group in self.param_groups:
            lr, m, base = group["lr"], group["m"], group["base"]
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if is_discrete(p):
                    bad = self._discrete_step(p, g, lr, m, base, group)
                else:
                    bad = self._float_step(p, g, lr, base, group)
                self._nonfinite = bad if self._nonfinite is None else self._nonfinite + bad.to(self._nonfinite.device)
        return loss

    def warn_nonfinite(self) -> int:
        """Warn (once) if any gradient entry so far was not finite; returns the count (one sync).
        The training loop calls it once per epoch instead of syncing every step."""
        n = self.nonfinite_total
        if n and not self._warned:
            warnings.warn(f"DST: {n} non-finite gradient entries so far; those weights did not move", stacklevel=2)
            self._warned = True
        return n

    def _base_increment(self, p, g, lr, base, group, finite: bool = False):
        """Returns (tensor, is_increment): the gradient to feed with lr, or the increment D.
        ``finite``: g has no non-finite entry (the float step zeroed them), so the masks that keep
        non-finite entries out of the moments are the identity and are skipped."""
        if base == "sgd":
            return g, False
        if base in ("normalized", "rownorm"):
            sq = (g if finite else torch.where(torch.isfinite(g), g, 0)) ** 2
            # RMS over the whole tensor, or per output row (dim 0) for rownorm on a matrix or conv weight
            ms = sq.mean(dim=tuple(range(1, g.ndim)), keepdim=True) if base == "rownorm" and g.ndim > 1 else sq.mean()
            return g / torch.sqrt(ms).clamp_min(1e-12), False
        st = self.state[p]
        if "exp_avg" not in st:
            st["exp_avg"] = torch.zeros_like(g, dtype=torch.float32)
            st["exp_avg_sq"] = torch.zeros_like(g, dtype=torch.float32)
            st["t"] = 0
        b1, b2 = group["betas"]
        st["t"] += 1
        gg = g if finite else torch.where(torch.isfinite(g), g, 0)
        st["exp_avg"].mul_(b1).add_(gg, alpha=1 - b1)
        st["exp_avg_sq"].mul_(b2).addcmul_(gg, gg, value=1 - b2)
        mh = st["exp_avg"] / (1 - b1 ** st["t"])
        vh = st["exp_avg_sq"] / (1 - b2 ** st["t"])
        d = -lr * mh / (vh.sqrt() + group["eps"])
        return (d if finite else torch.where(torch.isfinite(g), d, g)), True

    def _discrete_step(self, p, g, lr, m, base, group) -> torch.Tensor:
        # the gradient in storage order (*lead, K), rows of K as the DST kernel and its counters take them
        g = p.storage_order(g.to(torch.float32)).contiguous()
        t, inc = self._base_increment(p, g, lr, base, group)
        store = p.packed
        check = getattr(store, "gxnor_stamp", None) != stamp_of(store)
        if p.n_states == 1:
            bad = F.dst_update_(store, t, lr, m, self.dst_seed, self.dst_offset, inc, self.dst_rng, check)
        else:
            bad = F.dst_update_states_(store, t, lr, m, p.n_states, self.dst_seed, self.dst_offset, inc,
                                       self.dst_rng, check)
        torch.autograd.graph.increment_version(p)  # a forward that saved the weight itself sees the write
        store.gxnor_stamp = stamp_of(store)
        self.dst_offset += counters_used(tuple(t.shape), self.dst_rng)
        return bad.to(torch.int64)

    def _float_step(self, p, g, lr, base, group) -> torch.Tensor:
        fin = torch.isfinite(g)
        bad = (~fin).sum()
        g = torch.where(fin, g, 0)
        t, inc = self._base_increment(p, g, lr, base, group, finite=True)
        if inc:
            p.add_(t)
        else:
            p.add_(t, alpha=-lr)
        return bad


def derived(p: torch.Tensor, name: str, key, make):
    """``make()``, kept on a discrete weight as attribute ``name`` until a write changes its stamp or
    ``key`` changes (a layout of the weight for a kernel, rebuilt once per optimizer step); computed
    every time for any other tensor."""
    if not is_storage(p):
        return make()
    full = (stamp_of(p), key)
    hit = getattr(p, name, None)
    if hit is not None and hit[0] == full:
        return hit[1]
    v = make()
    setattr(p, name, (full, v))
    return v


def world_size() -> int:
    """Processes of the initialised torch.distributed group (1 without one)."""
    d = torch.distributed
    return d.get_world_size() if d.is_available() and d.is_initialized() else 1


def rank() -> int:
    d = torch.distributed
    return d.get_rank() if d.is_available() and d.is_initialized() else 0


def _distributed() -> bool:
    return world_size() > 1


def _rank0(seed: int) -> int:
    """Rank 0's seed on every rank (the DST draws must agree for the weights to stay identical)."""
    if not _distributed():
        return seed
    t = torch.tensor([seed], dtype=torch.int64)
    if torch.distributed.get_backend() == "nccl":
        t = t.cuda()
    torch.distributed.broadcast(t, src=0)
    return int(t)
