"""Argument checks shared by the reference, Triton and fake implementations.

Every message names the argument, what was expected and what came (docs/design.md, "Errors").
The C++ and CUDA bindings carry the same checks in csrc/bind/checks.h.
"""

from __future__ import annotations

import math
import struct

import torch

from . import format as fmt

PACK_DTYPES = (
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int8,
    torch.int32,
    torch.int64,
)
FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def check_pack_input(x: torch.Tensor, name: str, allow_any_values: bool = False) -> None:
    allowed = FLOAT_DTYPES if allow_any_values else PACK_DTYPES
    torch._check(
        x.dtype in allowed,
        lambda: f"{name}: expected dtype in {[str(d) for d in allowed]}, got {x.dtype}",
    )
    torch._check(x.dim() >= 1, lambda: f"{name}: expected shape (..., K), got a 0-dim tensor")
    torch._check(
        x.shape[-1] >= 1, lambda: f"{name}: expected K = shape[-1] >= 1, got shape {tuple(x.shape)}"
    )


def check_K(K: int, name: str = "K") -> None:
    torch._check(
        isinstance(K, int) and 1 <= K < 2**31,
        lambda: f"{name}: expected an int in [1, 2^31), got {K!r}",
    )


def check_packed(packed: torch.Tensor, name: str, K: int) -> None:
    check_K(K)
    torch._check(
        packed.dtype == torch.int32,
        lambda: f"{name}: expected packed dtype torch.int32, got {packed.dtype}",
    )
    torch._check(
        packed.dim() >= 2 and packed.shape[-2] == 2,
        lambda: f"{name}: expected packed shape (..., 2, W), got {tuple(packed.shape)}",
    )
    W = fmt.packed_words(K)
    torch._check(
        packed.shape[-1] == W,
        lambda: f"{name}: expected W = 2*ceil(K/64) = {W} words for K = {K}, "
        f"got W = {packed.shape[-1]} (shape {tuple(packed.shape)})",
    )


def f32(v: float) -> float:
    """v rounded to float32, the precision the kernels compare and multiply in (inf past its range)."""
    try:
        return struct.unpack("f", struct.pack("f", v))[0]
    except OverflowError:
        return math.copysign(math.inf, v)


def check_threshold(threshold: float, name: str = "threshold") -> None:
    ok = isinstance(threshold, (int, float)) and not isinstance(threshold, bool)
    torch._check(ok and math.isfinite(threshold) and threshold > 0,
                 lambda: f"{name}: expected a finite float > 0, got {threshold!r}")
    # the kernels compare in float32: a value that rounds to 0 or inf there would change the rule
    torch._check(0 < f32(threshold) < math.inf,
                 lambda: f"{name}: expected a float32-representable value > 0 (the kernels compare in float32), "
                 f"got {threshold!r} (float32: {f32(threshold)!r})")


def check_out_dtype(dtype: torch.dtype, name: str = "dtype") -> None:
    allowed = (torch.int8, *FLOAT_DTYPES)
    torch._check(
        dtype in allowed, lambda: f"{name}: expected one of {[str(d) for d in allowed]}, got {dtype}"
    )


def check_same_device(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    torch._check(
        a.device == b.device,
        lambda: f"{name_b}: expected device {a.device} (the device of {name_a}), got {b.device}",
    )


def check_gemm(a, b, K, scale=None, bias=None) -> None:
    check_packed(a, "a", K)
    check_packed(b, "b", K)
    torch._check(a.dim() == 3, lambda: f"a: expected packed shape (M, 2, W), got {tuple(a.shape)}")
    torch._check(b.dim() == 3, lambda: f"b: expected packed shape (N, 2, W), got {tuple(b.shape)}")
    check_same_device("a", a, "b", b)
    N = b.shape[0]
    for name, v in (("scale", scale), ("bias", bias)):
        if v is None:
            continue
        torch._check(v.dtype == torch.float32, lambda n=name, v=v: f"{n}: expected dtype torch.float32, got {v.dtype}")
        torch._check(
            v.dim() == 1 and v.shape[0] == N,
            lambda n=name, v=v: f"{n}: expected shape (N,) = ({N},), got {tuple(v.shape)}",
        )
        check_same_device("a", a, name, v)


def check_ternary_matmul(x, w, K, nn) -> None:
    check_packed(w, "w", K)
    torch._check(w.dim() == 3, lambda: f"w: expected packed shape (N, 2, W), got {tuple(w.shape)}")
    check_same_device("w", w, "x", x)
    torch._check(
        x.dtype in (torch.float32, torch.bfloat16),
        lambda: f"x: expected dtype float32 or bfloat16, got {x.dtype}",
    )
    inner = w.shape[0] if nn else K
    torch._check(x.dim() == 2, lambda: f"x: expected shape (M, {'N' if nn else 'K'}), got {tuple(x.shape)}")
    torch._check(
        x.shape[1] == inner,
        lambda: f"x: expected {'N' if nn else 'K'} = {inner} columns "
        f"({'rows of w' if nn else 'the K of w'}), got shape {tuple(x.shape)}",
    )


RNG_VERSIONS = (1, 2)


def check_dst_scalars(lr, m, seed, offset, increment) -> None:
    """The DST ops' scalar arguments, checked in Python before any backend (the C++ schema would
    refuse a float seed or an offset past int64 with torch's own message)."""
    for nm, v in (("lr", lr), ("m", m)):
        torch._check(isinstance(v, (int, float)) and not isinstance(v, bool),
                     lambda nm=nm, v=v: f"{nm}: expected a float, got {v!r}")
    # lr and m multiply in float32: they must stay finite and nonzero there
    torch._check(increment or (math.isfinite(lr) and 0 < f32(lr) < math.inf),
                 lambda: f"lr: expected a finite float32 > 0, got {lr}")
    torch._check(math.isfinite(m) and 0 < f32(m) < math.inf, lambda: f"m: expected a finite float32 > 0, got {m}")
    for nm, v in (("seed", seed), ("offset", offset)):
        torch._check(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63,
                     lambda nm=nm, v=v: f"{nm}: expected an int in [0, 2^63), got {v!r}")


def check_dst(w, grad, lr, m, seed, offset, increment, packed=True, n_states=1, rng=2) -> None:
    name = "w" if packed else "s"
    torch._check(rng in RNG_VERSIONS, lambda: f"rng: expected a random-number contract in {RNG_VERSIONS}, got {rng}")
    check_same_device(name, w, "grad", grad)
    torch._check(
        grad.dtype in (torch.float32, torch.bfloat16, torch.float16),
        lambda: f"grad: expected a float32/bfloat16/float16 gradient, got {grad.dtype}",
    )
    check_dst_scalars(lr, m, seed, offset, increment)
    if packed:
        torch._check(w.dtype == torch.int32, lambda: f"w: expected packed dtype torch.int32, got {w.dtype}")
        torch._check(w.dim() >= 2 and w.shape[-2] == 2, lambda: f"w: expected packed shape (..., 2, W), got "
                     f"{tuple(w.shape)}")
        ok = grad.dim() == w.dim() - 1 and tuple(grad.shape[:-1]) == tuple(w.shape[:-2])
        torch._check(ok, lambda: f"grad: expected the logical shape (..., K) of w {tuple(w.shape)}, got "
                     f"{tuple(grad.shape)}")
        K = grad.shape[-1]
        torch._check(K >= 1 and fmt.packed_words(K) == w.shape[-1],
                     lambda: f"grad: expected K with 2*ceil(K/64) = W = {w.shape[-1]} (w {tuple(w.shape)}), "
                     f"got K = {K}")
    else:
        torch._check(0 <= n_states <= 7, lambda: f"n_states: expected N in [0, 7], got {n_states}")
        torch._check(w.dtype == torch.int8, lambda: f"s: expected int8 state indices, got {w.dtype}")
        torch._check(tuple(grad.shape) == tuple(w.shape),
                     lambda: f"grad: expected the shape of s {tuple(w.shape)}, got {tuple(grad.shape)}")


def state_grid(n_states: int) -> tuple[int, float, int]:
    """(hi, inv_dz, step) of the DST state grid Z_N: indices in [-hi, hi], increments in index units
    are D * inv_dz, one state move changes the index by step (2 for binary {-1, +1})."""
    hi = 1 if n_states == 0 else 2 ** (n_states - 1)
    return (hi, 0.5, 2) if n_states == 0 else (hi, float(hi), 1)


def check_state_values(s: torch.Tensor, n_states: int) -> None:
    """Data check before an in-place update: indices in [-hi, hi]; binary (N = 0) has no zero state."""
    hi = state_grid(n_states)[0]
    torch._check(bool(((s >= -hi) & (s <= hi)).all()),
                 lambda: f"s: expected state indices in [{-hi}, {hi}] for n_states = {n_states}; s was not modified")
    torch._check(n_states != 0 or not bool((s == 0).any()),
                 lambda: "s: expected binary states in {-1, +1}, got 0; s was not modified")


def check_maxpool2x2(x: torch.Tensor) -> None:
    torch._check(x.dtype == torch.float32, lambda: f"x: expected dtype torch.float32, got {x.dtype}")
    torch._check(x.dim() == 4, lambda: f"x: expected shape (N, C, H, W), got {tuple(x.shape)}")
    torch._check(x.shape[2] >= 2 and x.shape[3] >= 2,
                 lambda: f"x: expected H, W >= 2 (a 2 x 2 window), got shape {tuple(x.shape)}")


def check_maxpool2x2_backward(grad: torch.Tensor, argmax: torch.Tensor, H: int, W: int) -> None:
    torch._check(grad.dtype == torch.float32, lambda: f"grad: expected dtype torch.float32, got {grad.dtype}")
    torch._check(argmax.dtype == torch.uint8, lambda: f"argmax: expected dtype torch.uint8, got {argmax.dtype}")
    torch._check(grad.dim() == 4, lambda: f"grad: expected shape (N, C, H // 2, W // 2), got {tuple(grad.shape)}")
    torch._check(H >= 0 and W >= 0, lambda: f"H, W: expected sizes >= 0, got {H}, {W}")
    torch._check(
        tuple(grad.shape[2:]) == (H // 2, W // 2) and argmax.shape == grad.shape,
        lambda: f"argmax: expected grad's shape {tuple(grad.shape)} = (N, C, H // 2, W // 2) for H, W = {H}, {W}, "
        f"got argmax {tuple(argmax.shape)}",
    )
    check_same_device("grad", grad, "argmax", argmax)


def check_accumulator_stats(x: torch.Tensor) -> None:
    torch._check(x.dtype == torch.float32, lambda: f"x: expected dtype torch.float32, got {x.dtype}")
    torch._check(x.dim() in (2, 4), lambda: f"x: expected shape (N, C) or (N, C, H, W), got {tuple(x.shape)}")


def bad_accumulator_message(v: float) -> str:
    return f"x: expected integer values in [-32768, 32767] (a ternary layer's accumulators), got {v}"
