"""Packed ternary format, version 1 (docs/design.md): the one Python definition.

A logical tensor ``(..., K)`` with values in {-1, 0, +1} packs into an int32 tensor
``(..., 2, W)`` with ``W = 2 * ceil(K / 64)``. Plane 0 is the gate (1 = nonzero), plane 1 the
sign (1 = negative). Element k is bit ``k % 32`` of word ``k // 32``, least significant bit
first. Canonical form: sign bits only where the gate is set, padding bits zero.
The C++ twin is ``csrc/gxnor/format.h``; ``tests/test_format.py`` checks that they agree.
"""

from __future__ import annotations

FORMAT_VERSION = 1
BITS_PER_WORD = 32
PAD_ELEMS = 64
GATE_PLANE = 0
SIGN_PLANE = 1


def packed_words(K: int) -> int:
    """Words per plane for logical length ``K``: ``2 * ceil(K / 64)``."""
    if K < 1:
        raise ValueError(f"K: expected a positive logical length, got {K}")
    return 2 * ((K + PAD_ELEMS - 1) // PAD_ELEMS)


def max_K(W: int) -> int:
    """Largest logical length a plane of ``W`` words can hold (``32 * W``)."""
    return BITS_PER_WORD * W


def packed_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Packed shape ``(..., 2, W)`` of a logical shape ``(..., K)``."""
    *lead, K = shape
    return (*lead, 2, packed_words(K))


def valid_mask(w: int, K: int) -> int:
    """Unsigned mask of the valid bits of word ``w`` of a plane for logical length ``K``."""
    lo = w * BITS_PER_WORD
    if K >= lo + BITS_PER_WORD:
        return 0xFFFFFFFF
    if K <= lo:
        return 0
    return (1 << (K - lo)) - 1
