"""Rounding that matches the Rust daemon: half away from zero (`f64::round`).

Every sats amount the Rust daemon derives from a fraction (Mostro fee, dev
fee, bond amount) is rounded with `f64::round`, which rounds halves away from
zero. Python's `round()` rounds halves to even, so using it would make our
amounts differ by one sat from Mostro's on exact halves.

This module only rounds; it knows nothing about fees or bonds.
"""

from __future__ import annotations

import math


def round_half_away(x: float) -> int:
    """Round `x` to the nearest integer, halves away from zero (Rust `f64::round`).

    `x - trunc(x)` is exact in binary floating point, so the tie test is exact
    too (unlike `floor(x + 0.5)`, which rounds 0.49999999999999994 up to 1).
    NaN and infinities have no integer value: passing one is a bug.
    """
    if not math.isfinite(x):
        raise ValueError(f"cannot round {x!r} to an integer")
    whole = math.trunc(x)
    if abs(x - whole) >= 0.5:
        whole += 1 if x > 0 else -1
    return whole
