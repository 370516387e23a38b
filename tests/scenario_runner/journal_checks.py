"""What an actor-run order's journal says, for the checks: bond history, creation order, replay.

The order actor journals every event it decided with the decision and its
context (DESIGN.md §3). From those rows this module folds the ``BondHistory``
the invariants need, recovers the order in which bonds were created, and
replays every event through ``decide`` to compare with what was recorded.
Pure functions over rows already read; it reads no database and no LND.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from actors import journal_changes, records_json, replay
from actors.order_logic import taker_bonds
from actors.order_logic.decide import decide
from actors.order_logic.invariants import BondHistory
from actors.order_logic.model import Decision, OrderState


def recorded_decision(row: Any, before: OrderState | None) -> Decision:
    """The decision a row recorded; `before` is the state it was decided from (a row records
    only what changed since then: see actors/journal_changes.py)."""
    recorded = records_json.loads(row.decision)
    return Decision(journal_changes.recorded_state(before, recorded), tuple(recorded["effects"]),
                    tuple(recorded["created_orders"]))


def fold_history(initial: OrderState, rows: Sequence[Any], settings: Any) -> BondHistory:
    """The decisions' side of ``BondHistory`` (transitions, messages, publications); the
    LND side (accepted, settled, cancelled) is the caller's to fill in."""
    history = BondHistory(bonds_on_take=taker_bonds.bonds_on_take(settings))
    history.last_published = "pending"  # the order was listed before the run
    state = initial
    for row in rows:
        decision = recorded_decision(row, state)
        history.record_decision(state, decision)
        if decision.state is not None:
            state = decision.state
    return history


def bond_creation_order(initial: OrderState, rows: Sequence[Any]) -> list[str]:
    """Bond ids in the order the decisions created them."""
    seen = [b.id for b in initial.bonds]
    state = initial
    for row in rows:
        after = recorded_decision(row, state).state
        if after is not None:
            state = after
            seen += [b.id for b in state.bonds if b.id not in seen]
    return seen


def bonds_by_id(state: OrderState) -> OrderState:
    return replace(state, bonds=tuple(sorted(state.bonds, key=lambda b: b.id)))


def replay_problems(initial: OrderState, rows: Sequence[Any], settings: Any,
                    stored: OrderState) -> list[str]:
    """Replay each journaled event through ``decide`` with its recorded context: every
    decision must come out as recorded, and the last state must be the stored one."""
    state = initial
    for row in rows:
        recorded = json.loads(row.decision)
        event = records_json.loads(row.message)
        context = replay.context_of(recorded["context"], settings)
        decision = decide(state, event, context)
        recorded_state = replay.recorded_plain_state(state, recorded)
        for part in ("state", "effects", "created_orders"):
            wanted = recorded_state if part == "state" else recorded.get(part)
            difference = replay.first_difference(wanted,
                                                 replay.canonical(getattr(decision, part)))
            if difference is not None:
                return [f"journal seq {row.seq}: replayed {part} differs at {difference}"]
        if decision.state is not None:
            state = decision.state
    difference = replay.first_difference(replay.canonical(bonds_by_id(stored)),
                                         replay.canonical(bonds_by_id(state)))
    return [] if difference is None else [f"replayed final state differs at {difference}"]
