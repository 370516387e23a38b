"""Bond amount math (BONDS.md §2) and the Rust-compatible rounding it relies on.

Cases live in tests/logic/data/*.json so adding an edge case is a data edit.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.bond_amount import I64_MAX, bond_amount_sats
from actors.rounding import round_half_away

DATA = Path(__file__).resolve().parent / "data"


def _cases(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text())["cases"]


@pytest.mark.parametrize("case", _cases("round_half_away_cases.json"), ids=lambda c: repr(c["x"]))
def test_round_half_away_matches_rust(case: dict) -> None:
    result = round_half_away(case["x"])
    assert type(result) is int
    assert result == case["expected"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_round_half_away_refuses_non_finite(bad: float) -> None:
    with pytest.raises(ValueError):
        round_half_away(bad)


@given(st.floats(min_value=-1e15, max_value=1e15, allow_nan=False))
def test_round_half_away_is_nearest_and_symmetric(x: float) -> None:
    result = round_half_away(x)
    assert abs(result - x) <= 0.5
    assert round_half_away(-x) == -result


@pytest.mark.parametrize("case", _cases("bond_amount_cases.json"), ids=lambda c: c["name"])
def test_bond_amount_cases(case: dict) -> None:
    result = bond_amount_sats(case["amount_sats"], case["amount_pct"], case["base_amount_sats"])
    assert result == case["expected"]


def test_nan_percentage_gives_the_floor() -> None:
    assert bond_amount_sats(1_000_000, math.nan, 700) == 700


@given(
    amount=st.integers(min_value=-(10**6), max_value=21 * 10**14),
    pct=st.floats(min_value=0.0, max_value=1.0),
    base=st.integers(min_value=0, max_value=10**9),
)
def test_bond_is_never_below_floor_nor_above_i64(amount: int, pct: float, base: int) -> None:
    bond = bond_amount_sats(amount, pct, base)
    assert base <= bond <= I64_MAX
    if amount > 0:
        assert bond == max(base, round_half_away(amount * pct))


@given(
    smaller=st.integers(min_value=0, max_value=21 * 10**14),
    extra=st.integers(min_value=0, max_value=10**12),
    pct=st.floats(min_value=0.0, max_value=1.0),
)
def test_bond_grows_with_the_amount(smaller: int, extra: int, pct: float) -> None:
    assert bond_amount_sats(smaller + extra, pct, 1000) >= bond_amount_sats(smaller, pct, 1000)
