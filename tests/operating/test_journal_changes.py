"""The journal records a decision's changes, not the whole state (actors/journal_changes.py):
a storm of N bonded takes journals O(changes) per decision, every change round-trips, and a
journal whose early rows hold whole states (written before the change: a daemon upgraded
mid-trade) still replays, mixed with the new rows."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from actors import journal_changes, records_json, replay
from actors.messages import RuntimeConfig
from actors.order_actor import OrderProcessor
from actors.order_logic.model import BondState, ClientRequest, InvoiceAccepted, OrderState
from actors.order_store import load_state
from adapters.nostr import keys
from adapters.nostr.protocol import Action, Kind, Message, OrderPayload, SmallOrder, Status
from config.examples import example_settings
from storage import migrate, open_database, repository

from .conftest import load_data
from .journal_kit import run_script

TAKERS = 12


def _state_lines(lines: list[dict[str, Any]], settings: Any) -> list[Any]:
    """The whole recorded state after each line (plain JSON), by replaying the lines."""
    states: list[Any] = []
    before: dict[str, OrderState | None] = {}
    for line in lines:
        subject = replay.subject_of(line)
        event = records_json.loads(json.dumps(line["message"]))
        start = before.get(subject)
        state = replay.recorded_plain_state(start, line["decision"])
        states.append(state)
        before[subject] = records_json.loads(json.dumps(state)) if state is not None else None
        for child in records_json.loads(json.dumps(line["decision"]["created_orders"])):
            before.setdefault(child.order.id, child)
        assert event is not None
    return states


def _as_old_format(line: dict[str, Any], state: Any) -> dict[str, Any]:
    decision = {k: v for k, v in line["decision"].items()
                if k not in (journal_changes.CHANGES, journal_changes.SUBJECT)}
    decision[journal_changes.STATE] = state
    return {**line, "decision": decision}


@pytest.fixture
def sell_lines(db, settings) -> list[dict[str, Any]]:
    order_id = run_script(load_data("sell_trade.json"), settings)[0]
    lines = replay.export_journal(order_id)
    assert isinstance(lines, list)
    return lines


def test_only_the_first_entry_holds_a_whole_state(sell_lines):
    kinds = [journal_changes.STATE in line["decision"] for line in sell_lines]
    assert kinds == [True] + [False] * (len(sell_lines) - 1)
    # a deadline that only moved the order back to pending records the order, no bond
    changes = sell_lines[2]["decision"]["changes"]
    assert changes["order"]["status"]["v"] == "pending" and changes["bonds"] == []


@pytest.mark.parametrize("old_rows", [1, 4, 11])
def test_journal_upgraded_mid_trade_replays(sell_lines, settings, old_rows):
    states = _state_lines(sell_lines, settings)
    mixed = [_as_old_format(line, state) if index < old_rows else line
             for index, (line, state) in enumerate(zip(sell_lines, states, strict=True))]
    assert sum(journal_changes.CHANGES in line["decision"] for line in mixed) == 11 - old_rows
    steps = list(replay.replay_lines(mixed, settings))
    assert len(steps) == len(sell_lines)
    assert all(isinstance(s, replay.ReplayStep) and not s.divergences for s in steps), steps[-1]
    assert steps[-1].status_after == "success"


def test_old_rows_after_new_ones_replay_too(sell_lines, settings):
    states = _state_lines(sell_lines, settings)
    mixed = [*sell_lines[:5], *(_as_old_format(line, state)
                                for line, state in zip(sell_lines[5:], states[5:], strict=True))]
    steps = list(replay.replay_lines(mixed, settings))
    assert [s.divergences for s in steps] == [()] * len(sell_lines)


def test_broken_changes_are_a_problem_not_a_crash(sell_lines, settings):
    sell_lines[4]["decision"]["changes"] = ["not", "an", "object"]
    steps = list(replay.replay_lines(sell_lines, settings))
    assert isinstance(steps[-1], replay.ReplayProblem) and len(steps) == 5
    assert "unreadable entry" in steps[-1].reason


# ------------------------------------------------------------------ a storm of bonded takes
def _order(amount: int) -> OrderPayload:
    return OrderPayload(SmallOrder(amount=amount, fiat_code="USD", fiat_amount=100,
                                   payment_method="SEPA", premium=0, kind=Kind.SELL,
                                   status=Status.PENDING))


@pytest.fixture
def storm(tmp_path: Path) -> tuple[str, Any]:
    """A sell order taken by TAKERS bonded takers; then the bonds are paid, first one first."""
    url = f"sqlite:///{tmp_path / 'storm.db'}"
    settings = example_settings(database={"url": url}, anti_abuse_bond={"enabled": True},
                                price={"fixed": {"USD": 100_000.0}})
    database = open_database(url)
    migrate(database)
    config = RuntimeConfig(settings, url)
    order_id = "00000000-0000-4000-8000-0000000000aa"
    maker, identity = keys.generate_keypair(), keys.generate_keypair()
    processor = OrderProcessor(order_id, config)
    processor.handle(ClientRequest(Message(
        Action.NEW_ORDER, version=2, request_id=1, trade_index=1, id=order_id,
        payload=_order(50_000)), maker.public_hex, identity.public_hex), 1_000)
    for index in range(TAKERS):
        taker, who = keys.generate_keypair(), keys.generate_keypair()
        processor.handle(ClientRequest(Message(
            Action.TAKE_SELL, version=2, request_id=index + 2, trade_index=1, id=order_id),
            taker.public_hex, who.public_hex), 1_010 + index)
    assert processor.state is not None
    bonds = processor.state.bonds
    assert len(bonds) == TAKERS
    for index, bond in enumerate(bonds):
        processor.handle(InvoiceAccepted(bond.hash, bond.amount_sats), 1_100 + index)
    yield order_id, settings
    database.close()


def test_storm_journal_grows_with_changes_not_with_bonds(storm):
    order_id, settings = storm
    rows = repository.journal_of(order_id)[1:]  # after the new-order entry (a whole state)
    state = load_state(order_id)
    assert state is not None and len(state.bonds) == TAKERS
    takes = rows[:TAKERS]  # each take adds one bond and records only that one
    for row in takes:
        recorded = json.loads(row.decision)
        assert len(recorded["changes"]["bonds"]) == 1
    sizes = [len(row.decision) for row in takes[1:]]  # the first take changes the order too
    assert max(sizes) - min(sizes) < 100  # the twelfth take records as much as the second
    accepted = rows[TAKERS:]
    assert len(accepted) == TAKERS
    winner = json.loads(accepted[0].decision)["changes"]["bonds"]
    assert len(winner) == TAKERS  # the winner locks, every other bond is released at once
    for row in accepted[1:]:  # a loser paying late changes at most its own bond
        assert len(json.loads(row.decision)["changes"]["bonds"]) <= 1
    states = [BondState(b.state) for b in state.bonds]
    assert states.count(BondState.LOCKED) == 1


def test_storm_journal_replays_to_the_stored_state(storm):
    order_id, settings = storm
    lines = replay.export_journal(order_id)
    assert isinstance(lines, list) and len(lines) == 1 + 2 * TAKERS
    steps = list(replay.replay_lines(lines, settings))
    assert all(isinstance(s, replay.ReplayStep) and not s.divergences for s in steps)
    final = _state_lines(lines, settings)[-1]
    assert final == replay.canonical(load_state(order_id))


def _bond(state: OrderState, index: int, **changes: Any) -> Any:
    return dataclasses.replace(state.bonds[index], **changes)


def test_changes_round_trip_every_kind_of_change(storm):
    order_id, _ = storm
    state = load_state(order_id)
    assert state is not None
    extra = _bond(state, 0, id="ffffffff-0000-4000-8000-000000000001")
    cases = [
        state,                                                    # nothing changed
        dataclasses.replace(state, order=dataclasses.replace(state.order, fee=state.order.fee + 1)),
        dataclasses.replace(state, bonds=(*state.bonds[:3], _bond(state, 3, slashed_share_sats=7),
                                          *state.bonds[4:])),
        dataclasses.replace(state, bonds=(*state.bonds, extra)),  # one added at the end
        dataclasses.replace(state, bonds=state.bonds[1:]),        # one removed
        dataclasses.replace(state, bonds=(extra, *reversed(state.bonds))),  # reordered + added
    ]
    for after in cases:
        changes = journal_changes.state_changes(state, after)
        text = records_json.dumps(journal_changes.journal_state(state, after))
        decoded = records_json.loads(text)
        assert journal_changes.recorded_state(state, decoded) == after
        assert journal_changes.apply_changes(state, changes) == after
    unchanged = journal_changes.state_changes(state, state)
    assert unchanged == {"bonds": ()}
    assert journal_changes.journal_state(None, state) == {"state": state}
    assert journal_changes.recorded_state(None, {"state": None}) is None
    with pytest.raises(ValueError):
        journal_changes.recorded_state(None, {"changes": unchanged})
