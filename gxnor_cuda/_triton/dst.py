"""Triton in-place DST update (GPU, or CPU with TRITON_INTERPRET=1).

1-D grid over packed plane words, BLOCK_W words per program: a (BLOCK_W, 32) tile of elements;
random numbers by the contract of docs/design.md (v2: one tl.randint4x call per four elements of
a row; v1: tl.rand(seed, offset + row*K + k) per element), the rational tanh of csrc/gxnor/dst.h
in separate float32 ops (compiled without FMA contraction), new (gate, sign) words stored in place.
States kernel: 1-D grid, BLOCK int8 state indices per program. No shared memory.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .. import format as fmt
from .._checks import check_dst, check_state_values, state_grid
from .launch import cdiv, launch
from .pack import count_noncanonical


@triton.jit
def _tanh_rational(x):
    x = tl.minimum(x, 7.90531110763549805)
    x2 = x * x
    p = tl.full(x.shape, -2.76076847742355e-16, tl.float32)
    p = p * x2 + 2.00018790482477e-13
    p = p * x2 + -8.60467152213735e-11
    p = p * x2 + 5.12229709037114e-08
    p = p * x2 + 1.48572235717979e-05
    p = p * x2 + 6.37261928875436e-04
    p = p * x2 + 4.89352455891786e-03
    p = p * x
    q = tl.full(x.shape, 1.19825839466702e-06, tl.float32)
    q = q * x2 + 1.18534705686654e-04
    q = q * x2 + 2.26843463243900e-03
    q = q * x2 + 4.89352518554385e-03
    return p / q


@triton.jit
def _moves(g, lr, m, inv_dz, u, INCREMENT: tl.constexpr):
    if INCREMENT:
        d = g
    else:
        d = g * (-lr)
    t = d * inv_dz
    # a non-finite gradient moves nothing (false for NaN and +-Inf, no arithmetic a compiler could
    # fuse); a finite one whose increment overflowed saturates at the clamp below
    fin = tl.abs(g) < float("inf")
    t = tl.where(fin, t, 0.0)
    t = tl.minimum(tl.maximum(t, -1e9), 1e9)
    k = t.to(tl.int32)
    f = t - k.to(tl.float32)
    p = _tanh_rational(m * tl.abs(f))
    extra = tl.where(u < p, tl.where(f > 0.0, 1, tl.where(f < 0.0, -1, 0)), 0)
    return k + extra, fin


@triton.jit
def _uniform4(seed, q):
    """Contract v2: the four Philox outputs of counter q feed four consecutive elements, in order.
    q: (R, C) counters -> (R, 4 C) uniforms."""
    r0, r1, r2, r3 = tl.randint4x(seed, q)
    r = tl.join(tl.join(r0, r2), tl.join(r1, r3))  # [..., a, b] = r_(2 b + a): flat 2 a + b = output
    return tl.random.uint_to_uniform_float(tl.reshape(r, (q.shape[0], q.shape[1] * 4)))


@triton.jit
def _dst_packed_kernel(w_ptr, g_ptr, bad_ptr, n_words, K, W, lr, m, seed, offset,
                       INCREMENT: tl.constexpr, RNG: tl.constexpr, BLOCK_W: tl.constexpr):
    t = tl.program_id(0).to(tl.int64) * BLOCK_W + tl.arange(0, BLOCK_W).to(tl.int64)
    row = t // W
    w = t % W
    j = tl.arange(0, 32)
    k = w[:, None] * 32 + j[None, :]
    ok = t < n_words
    m_el = ok[:, None] & (k < K)
    base = row * 2 * W + w
    gw = tl.load(w_ptr + base, mask=ok, other=0)
    sw = tl.load(w_ptr + base + W, mask=ok, other=0)
    gb = (gw[:, None] >> j[None, :]) & 1
    sb = (sw[:, None] >> j[None, :]) & 1
    s = gb * (1 - 2 * sb)
    g = tl.load(g_ptr + row[:, None] * K + k, mask=m_el, other=0.0).to(tl.float32)
    if RNG == 1:
        u = tl.rand(seed, offset + row[:, None] * K + k)
    else:  # row r, word w: counters r * ceil(K / 4) + 8 w + [0, 8)
        u = _uniform4(seed, offset + row[:, None] * ((K + 3) // 4) + w[:, None] * 8 + tl.arange(0, 8)[None, :])
    mv, fin = _moves(g, lr, m, 1.0, u, INCREMENT)
    s = tl.minimum(tl.maximum(s + mv, -1), 1)
    s = tl.where(m_el, s, 0)
    sh = j.to(tl.uint32)[None, :]
    ng = tl.sum((s != 0).to(tl.uint32) << sh, axis=1).to(tl.int32, bitcast=True)
    ns = tl.sum((s < 0).to(tl.uint32) << sh, axis=1).to(tl.int32, bitcast=True)
    tl.store(w_ptr + base, ng, mask=ok)
    tl.store(w_ptr + base + W, ns, mask=ok)
    tl.atomic_add(bad_ptr, tl.sum((m_el & ~fin).to(tl.int64)))


@triton.jit
def _dst_states_kernel(s_ptr, g_ptr, bad_ptr, n, K, lr, m, inv_dz, hi, step, seed, offset,
                       INCREMENT: tl.constexpr, RNG: tl.constexpr, BLOCK: tl.constexpr):
    if RNG == 1:
        i = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK).to(tl.int64)
        u = tl.rand(seed, offset + i)
    else:  # BLOCK / 4 counters per program; counter q holds elements 4 (q % KQ) + [0, 4) of row q // KQ
        KQ = (K + 3) // 4
        q = tl.program_id(0).to(tl.int64) * (BLOCK // 4) + tl.arange(0, BLOCK // 4).to(tl.int64)
        u = tl.reshape(_uniform4(seed, offset + q[:, None]), (BLOCK,))
        kk = tl.reshape((q[:, None] % KQ) * 4 + tl.arange(0, 4)[None, :], (BLOCK,))
        rr = tl.reshape(q[:, None] // KQ + tl.zeros((1, 4), tl.int64), (BLOCK,))
        i = tl.where(kk < K, rr * K + kk, n)  # past the row's end: masked off
    ok = i < n
    s = tl.load(s_ptr + i, mask=ok, other=0).to(tl.int32)
    g = tl.load(g_ptr + i, mask=ok, other=0.0).to(tl.float32)
    mv, fin = _moves(g, lr, m, inv_dz, u, INCREMENT)
    s = tl.minimum(tl.maximum(s + step * mv, -hi), hi)
    tl.store(s_ptr + i, s.to(tl.int8), mask=ok)
    tl.atomic_add(bad_ptr, tl.sum((ok & ~fin).to(tl.int64)))


def dst_update_(w, grad, lr, m, seed, offset, increment=False, rng=2, check=True):
    """Triton twin of reference_dst.dst_update_. w: (..., 2, W) int32 in place; grad: (..., K)."""
    check_dst(w, grad, lr, m, seed, offset, increment, packed=True, rng=rng)
    torch._check(w.is_contiguous(), lambda: "w: expected a contiguous packed tensor (it is updated in place)")
    K = grad.shape[-1]
    if check:
        nbad = int(count_noncanonical(w, K))
        torch._check(nbad == 0, lambda: f"w: expected canonical packed weights, got {nbad} non-canonical word "
                     "pair(s); w was not modified")
    g = grad.to(torch.float32).contiguous()
    bad = torch.zeros((), dtype=torch.int64, device=w.device)
    n_words = w.numel() // 2
    if n_words:
        BW = 16
        launch("dst_packed", cdiv(n_words, BW), w, g, bad, n_words, K, fmt.packed_words(K), float(lr), float(m),
               seed, offset, INCREMENT=bool(increment), RNG=rng, BLOCK_W=BW)
    return bad


def dst_update_states_(s, grad, lr, m, n_states, seed, offset, increment=False, rng=2, check=True):
    """Triton twin of reference_dst.dst_update_states_ (int8 state indices, in place)."""
    check_dst(s, grad, lr, m, seed, offset, increment, packed=False, n_states=n_states, rng=rng)
    torch._check(s.is_contiguous(), lambda: "s: expected a contiguous tensor (it is updated in place)")
    if check:
        check_state_values(s, n_states)
    hi, inv_dz, step = state_grid(n_states)
    g = grad.to(torch.float32).contiguous()
    bad = torch.zeros((), dtype=torch.int64, device=s.device)
    n = s.numel()
    if n:
        K = s.shape[-1] if s.dim() else 1
        BLOCK = 1024
        progs = cdiv(n, BLOCK) if rng == 1 else cdiv(n // K * ((K + 3) // 4), BLOCK // 4)
        launch("dst_states", progs, s, g, bad, n, K, float(lr), float(m), inv_dz, hi, step, seed, offset,
               INCREMENT=bool(increment), RNG=rng, BLOCK=BLOCK)
    return bad
