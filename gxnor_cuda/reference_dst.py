"""Pure-torch reference of the in-place DST update (docs/design.md, "DST random numbers").

Every float step is a separate float32 torch op in the same order as csrc/gxnor/dst.h, so the
C++, CUDA and Triton kernels must match it bit for bit.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_dst, check_state_values, state_grid
from .reference import count_noncanonical, pack_ternary

_M32 = 0xFFFFFFFF
# float32 constants of the rational tanh (csrc/gxnor/dst.h), as float32 tensors
_P = [-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
      1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03]
_Q = [1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03]
_CLAMP = 7.90531110763549805


def _f32(v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float32)


def _mulhi(a: int, b: torch.Tensor) -> torch.Tensor:
    """High 32 bits of a * b for a uint32 constant and a tensor of uint32 values held in int64."""
    ah, al = a >> 16, a & 0xFFFF
    bh, bl = b >> 16, b & 0xFFFF
    mid = ah * bl + al * bh
    return ah * bh + ((mid + ((al * bl) >> 16)) >> 16)


def philox4(seed: int, counter: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The four Philox4x32-10 outputs for counters (lo, hi, 0, 0) of int64 ``counter``, key = seed.
    Returns uint32 values in int64 (equal to Triton's tl.randint4x(seed, counter))."""
    c0 = counter & _M32
    c1 = (counter >> 32) & _M32
    c2 = torch.zeros_like(c0)
    c3 = torch.zeros_like(c0)
    k0, k1 = seed & _M32, (seed >> 32) & _M32
    for _ in range(10):
        p0, p2 = c0, c2
        c0 = _mulhi(0xCD9E8D57, p2) ^ c1 ^ k0
        c2 = _mulhi(0xD2511F53, p0) ^ c3 ^ k1
        c1 = (p2 * 0xCD9E8D57) & _M32
        c3 = (p0 * 0xD2511F53) & _M32
        k0 = (k0 + 0x9E3779B9) & _M32
        k1 = (k1 + 0xBB67AE85) & _M32
    return c0, c1, c2, c3


def philox_first(seed: int, counter: torch.Tensor) -> torch.Tensor:
    """First Philox output (Triton's tl.randint(seed, counter))."""
    return philox4(seed, counter)[0]


def rng_words(seed: int, offset: int, shape: tuple[int, ...], rng: int, device=None) -> torch.Tensor:
    """The uint32 draw (in int64) of every element of a tensor of ``shape`` (docs/design.md).

    v1: element of flat index i takes the first output of counter offset + i.
    v2: the tensor is read as rows of K = shape[-1]; element (r, k) takes output k % 4 of counter
    offset + r * ceil(K / 4) + k // 4 (one Philox call per four elements of a row)."""
    n = math.prod(shape)
    if rng == 1:
        return philox_first(seed, offset + torch.arange(n, dtype=torch.int64, device=device)).reshape(shape)
    K = shape[-1] if len(shape) else 1
    kq = (K + 3) // 4
    q = offset + torch.arange(n // K * kq if K else 0, dtype=torch.int64, device=device)
    words = torch.stack(philox4(seed, q), dim=-1).reshape(-1, kq * 4)[:, :K]
    return words.reshape(shape)


def counters_used(shape: tuple[int, ...], rng: int) -> int:
    """How far one update of a tensor of ``shape`` advances the Philox counter."""
    n = math.prod(shape)
    if rng == 1 or n == 0:
        return n
    K = shape[-1] if len(shape) else 1
    return n // K * ((K + 3) // 4)


def uniform(u: torch.Tensor) -> torch.Tensor:
    """Triton's uint_to_uniform_float: int32 bitcast, -x-1 if negative, times 2^-31 (float32)."""
    x = torch.where(u >= 2**31, u - 2**32, u)
    x = torch.where(x < 0, -x - 1, x)
    return x.to(torch.float32) * _f32(4.6566127342e-10)


def tanh_rational(x: torch.Tensor) -> torch.Tensor:
    """float32 x * P(x^2) / Q(x^2), x >= 0, clamped at 7.905 (same op order as dst.h)."""
    x = torch.minimum(x, _f32(_CLAMP))
    x2 = x * x
    p = torch.full_like(x, _P[0])
    for c in _P[1:]:
        p = p * x2 + _f32(c)
    p = p * x
    q = torch.full_like(x, _Q[0])
    for c in _Q[1:]:
        q = q * x2 + _f32(c)
    return p / q


def moves(t: torch.Tensor, fin: torch.Tensor, m: float, u: torch.Tensor) -> torch.Tensor:
    """States to move for increments t (float32, in state units) of finite gradients ``fin``: an
    increment that overflowed (a finite gradient times a large lr) saturates at +-1e9 states; a
    non-finite gradient moves nothing. returns: moves int64."""
    t = torch.where(fin, t, torch.zeros_like(t)).clamp(-1e9, 1e9)
    k = t.trunc()
    f = t - k
    p = tanh_rational(_f32(m) * f.abs())
    extra = torch.where(u < p, torch.sign(f), torch.zeros_like(f))
    return k.to(torch.int64) + extra.to(torch.int64)


def _unpack_lenient(w: torch.Tensor, K: int) -> torch.Tensor:
    """Values of packed words as the kernels read them: gate bit -> +-1 by the sign bit, else 0;
    bits past K ignored (equal to unpack_ternary on canonical words)."""
    k = torch.arange(K, device=w.device)
    bits = lambda plane: (w[..., plane, k // 32].to(torch.int64) >> (k % 32)) & 1  # noqa: E731
    return bits(0) * (1 - 2 * bits(1))


def _increment(grad: torch.Tensor, lr: float, increment: bool, inv_dz: float) -> torch.Tensor:
    g = grad.to(torch.float32)
    d = g if increment else g * _f32(-lr)
    return d * _f32(inv_dz)


def dst_update_(w: torch.Tensor, grad: torch.Tensor, lr: float, m: float, seed: int, offset: int,
                increment: bool = False, rng: int = 2, check: bool = True) -> torch.Tensor:
    """In-place DST on packed ternary weights.

    w: (..., 2, W) int32 packed, updated in place; grad: (..., K) float (or the increment D when
    ``increment``). Random numbers: ``rng_words`` (contract v1 or v2). ``check``: refuse
    non-canonical words first (one host sync); without it they are read by their gate bits.
    returns: () int64, the number of non-finite gradient entries (those weights do not move).
    """
    check_dst(w, grad, lr, m, seed, offset, increment, packed=True, rng=rng)
    K = grad.shape[-1]
    if check:
        nbad = int(count_noncanonical(w, K))
        torch._check(nbad == 0, lambda: f"w: expected canonical packed weights, got {nbad} non-canonical word "
                     "pair(s); w was not modified")
    s = _unpack_lenient(w, K)
    u = uniform(rng_words(seed, offset, tuple(grad.shape), rng, grad.device))
    fin = torch.isfinite(grad.to(torch.float32))
    mv = moves(_increment(grad, lr, increment, 1.0), fin, m, u)
    w.copy_(pack_ternary((s + mv).clamp(-1, 1).to(torch.int8)))
    return (~fin).sum()


def dst_update_states_(s: torch.Tensor, grad: torch.Tensor, lr: float, m: float, n_states: int, seed: int,
                       offset: int, increment: bool = False, rng: int = 2, check: bool = True) -> torch.Tensor:
    """In-place DST on int8 state indices of Z_N: s in [-2^(N-1), 2^(N-1)], value s / 2^(N-1);
    N = 0 is binary, s in {-1, +1} (value s). returns: () int64 non-finite count."""
    check_dst(s, grad, lr, m, seed, offset, increment, packed=False, n_states=n_states, rng=rng)
    if check:
        check_state_values(s, n_states)
    hi, inv_dz, step = state_grid(n_states)
    u = uniform(rng_words(seed, offset, tuple(grad.shape), rng, grad.device))
    fin = torch.isfinite(grad.to(torch.float32))
    mv = moves(_increment(grad, lr, increment, inv_dz), fin, m, u)
    s.copy_((s.to(torch.int64) + step * mv).clamp(-hi, hi).to(torch.int8))
    return (~fin).sum()
