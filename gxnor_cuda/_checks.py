"""Argument checks shared by the reference, Triton and fake implementations.

Every message names the argument, what was expected and what came (DESIGN.md section 5).
The C++ and CUDA bindings carry the same checks in csrc/bind/checks.h.
"""

from __future__ import annotations

import math

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


def check_threshold(threshold: float, name: str = "threshold") -> None:
    torch._check(
        isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0,
        lambda: f"{name}: expected a finite float > 0, got {threshold!r}",
    )


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
