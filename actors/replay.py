"""Export an order's journal to a file and replay such a file through the pure logic.

A journal entry holds the event an order actor handled and what it decided
(with the decision's context: now, entropy, network, prices, reputations).
Replaying feeds each event to ``decide`` with that same context and
compares the result with the recorded decision; the first step whose state,
effects or created orders differ is a divergence (DESIGN.md §3: replaying a
journal must reproduce the stored state exactly).

File format: JSON lines, one per journal entry, in replay order:
``{"order_id", "seq", "created_at", "message": <tagged JSON>, "decision":
<tagged JSON>}`` where the tagged JSON is what ``records_json`` wrote.

A decision records either the whole ``state`` (an order's first entry, a
refusal, and every entry written before journals recorded changes) or the
``changes`` from the state it was decided from plus its ``subject`` (the
order's id): see ``journal_changes``. Replay rebuilds the recorded state by
applying the changes to the state replayed so far, which equals the recorded
one up to the first divergence, so both formats (and a journal mixing them,
from a daemon upgraded mid-trade) compare the same way.

Which order a line belongs to is the order of its recorded state (a
new-order entry may be journaled under another id than the order it
created). An order's first entry starts from None when it is a new-order,
else from the state a parent entry earlier in the file created
(``created_orders``: range child orders). This module reads the database
only in ``export_journal``; replaying touches nothing but the file's data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.nostr.protocol.enums import Action
from adapters.nostr.protocol.payloads import UserInfo
from storage import models, repository

from . import journal_changes, records_json
from .inspection import effect_summary, event_summary
from .order_logic.decide import decide
from .order_logic.model import (
    ClientRequest,
    Decision,
    DecisionContext,
    OrderState,
    PriceSnapshot,
)


# ------------------------------------------------------------------ export
def _line(row: models.JournalEntry) -> dict[str, Any]:
    return {
        "order_id": row.order_id,
        "seq": row.seq,
        "created_at": row.created_at,
        "message": json.loads(row.message),
        "decision": json.loads(row.decision),
    }


def _creating_entries(order_id: str, journal_ids: set[str]) -> list[models.JournalEntry]:
    """Entries journaled under another id whose decision made this order (a new-order entry
    kept under the id the directory gave the request, or a parent's entry for a child)."""
    needle = f'"id":"{order_id}"'
    rows = (
        models.JournalEntry.select()
        .where(models.JournalEntry.decision.contains(needle)
               & models.JournalEntry.order_id.not_in(list(journal_ids) or [""]))
        .order_by(models.JournalEntry.created_at, models.JournalEntry.id)
    )
    found = []
    for row in rows:
        decision = records_json.loads(row.decision)
        state = decision.get("state")
        created = [s.order.id for s in decision.get("created_orders", ())]
        message = records_json.loads(row.message)
        made_here = (isinstance(state, OrderState) and state.order.id == order_id
                     and _is_new_order(message))
        if made_here or order_id in created:
            found.append(row)
    return found


def export_journal(order_id: str) -> list[dict[str, Any]] | str:
    """The lines to replay `order_id`: its ancestors' journals (range parents), the entry
    that created it if journaled elsewhere, then its own journal; or why there are none."""
    order = repository.find_order(order_id)
    chain: list[str] = []
    current = order
    while current is not None and current.range_parent_id and current.range_parent_id not in chain:
        chain.insert(0, current.range_parent_id)
        current = repository.find_order(current.range_parent_id)
    lines: list[dict[str, Any]] = []
    for ancestor in chain:
        lines += _order_lines(ancestor)
    own = _order_lines(order_id)
    if not own:
        return f"no journal entries for order {order_id}"
    return lines + own


def _order_lines(order_id: str) -> list[dict[str, Any]]:
    rows = repository.journal_of(order_id)
    first_is_new = bool(rows) and _is_new_order(records_json.loads(rows[0].message))
    before = [] if first_is_new else [
        row for row in _creating_entries(order_id, {order_id}) if
        _is_new_order(records_json.loads(row.message))
    ]
    return [_line(row) for row in (*before, *rows)]


def write_export(lines: Sequence[dict[str, Any]], path: Path) -> None:
    path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))


def read_export(path: Path) -> list[dict[str, Any]] | str:
    """The file's lines, or what is wrong with it."""
    try:
        text = path.read_text()
    except OSError as err:
        return f"cannot read {path}: {err.strerror or err}"
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError as err:
            return f"{path}:{number}: not JSON: {err}"
        missing = {"order_id", "seq", "message", "decision"} - set(line)
        if missing:
            return f"{path}:{number}: missing {', '.join(sorted(missing))}"
        lines.append(line)
    if not lines:
        return f"{path}: no journal lines"
    return lines


# ------------------------------------------------------------------ replay
@dataclass(frozen=True)
class Divergence:
    """Where the replayed decision first differs from the recorded one."""

    part: str  # "state" | "effects" | "created_orders"
    path: str
    recorded: Any
    replayed: Any


@dataclass(frozen=True)
class ReplayStep:
    number: int
    order_id: str
    seq: int
    event: str
    status_before: str | None
    status_after: str | None
    effects: tuple[str, ...]
    state_diff: tuple[str, ...]
    divergences: tuple[Divergence, ...] = ()


@dataclass(frozen=True)
class ReplayProblem:
    """The file cannot be replayed from this line on (not a divergence)."""

    number: int
    order_id: str
    seq: int
    reason: str


@dataclass
class _Replay:
    states: dict[str, OrderState | None] = field(default_factory=dict)
    created: dict[str, OrderState] = field(default_factory=dict)


def canonical(value: Any) -> Any:
    """The plain JSON form of a logic value, as the journal stores it (comparable with ==)."""
    return json.loads(records_json.dumps(value))


def first_difference(recorded: Any, replayed: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """(path, recorded, replayed) of the first place two JSON values differ."""
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        for key in [*recorded, *(k for k in replayed if k not in recorded)]:
            if key == "__type__" and recorded.get(key) != replayed.get(key):
                return path or "(root)", recorded.get(key), replayed.get(key)
            found = first_difference(recorded.get(key), replayed.get(key),
                                     f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    if isinstance(recorded, list) and isinstance(replayed, list):
        for index in range(max(len(recorded), len(replayed))):
            left = recorded[index] if index < len(recorded) else "<missing>"
            right = replayed[index] if index < len(replayed) else "<missing>"
            found = first_difference(left, right, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if recorded == replayed else (path or "(root)", recorded, replayed)


def context_of(recorded: dict[str, Any], settings: Any) -> DecisionContext:
    """The decision context a journal entry recorded, with today's settings."""
    prices = recorded.get("prices")
    reputations = {
        key: UserInfo(**value) for key, value in (recorded.get("reputations") or {}).items()
    }
    return DecisionContext(
        settings=settings,
        now=int(recorded["now"]),
        entropy=bytes.fromhex(recorded["entropy"]),
        network=recorded.get("network", "regtest"),
        prices=PriceSnapshot(dict(prices), int(recorded.get("prices_at") or 0))
        if prices is not None else None,
        reputations=reputations,
    )


def _is_new_order(event: Any) -> bool:
    return isinstance(event, ClientRequest) and event.message.action == Action.NEW_ORDER


def subject_of(line: dict[str, Any]) -> str:
    """The order a line is about: its recorded state's order, else the journal's order id."""
    return journal_changes.subject_id(line["decision"]) or line["order_id"]


def state_diff(before: OrderState | None, after: OrderState | None) -> tuple[str, ...]:
    """Changed fields, one line each: order.<field>, bond[<id>].<field>, dispute.<field>."""
    if after is None:
        return () if before is None else ("order removed",)
    new = canonical(after)
    lines: list[str] = []
    if before is None:
        lines.append(f"+order {after.order.id} ({after.order.status.value})")
        old: dict[str, Any] = {"order": new["order"]}
    else:
        old = canonical(before)
    _diff_record("order", old.get("order") or {}, new["order"], lines)
    old_bonds = {b["id"]: b for b in old.get("bonds", [])}
    for bond in new.get("bonds", []):
        label = f"bond[{bond['id'][:8]}]"
        if bond["id"] not in old_bonds:
            lines.append(f"+{label} ({bond.get('state', {}).get('v', '?')})")
        else:
            _diff_record(label, old_bonds[bond["id"]], bond, lines)
    _diff_record("dispute", old.get("dispute") or {}, new.get("dispute") or {}, lines)
    return tuple(lines)


def _plain(value: Any) -> Any:
    return value["v"] if isinstance(value, dict) and "__enum__" in value else value


def _diff_record(label: str, old: dict[str, Any], new: dict[str, Any], out: list[str]) -> None:
    for key in new:
        if key != "__type__" and old.get(key) != new[key]:
            out.append(f"{label}.{key}: {short_json(_plain(old.get(key)))} → {short_json(_plain(new[key]))}")


def short_json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


def _status(state: OrderState | None) -> str | None:
    return state.order.status.value if state is not None else None


def recorded_plain_state(before: OrderState | None, recorded: dict[str, Any]) -> Any:
    """The plain JSON state a journal decision (plain JSON, either format) recorded, given the
    state it was decided from. Raises KeyError/TypeError/ValueError on a broken entry."""
    if journal_changes.CHANGES not in recorded:
        return recorded.get(journal_changes.STATE)
    changes = records_json.loads(json.dumps(recorded[journal_changes.CHANGES]))
    if not isinstance(changes, dict):
        raise TypeError(f"changes is a {type(changes).__name__}, not an object")
    return canonical(journal_changes.recorded_state(before, {journal_changes.CHANGES: changes}))


def _compare(recorded: dict[str, Any], recorded_state: Any,
             decision: Decision) -> tuple[Divergence, ...]:
    found = []
    for part in ("state", "effects", "created_orders"):
        wanted = recorded_state if part == "state" else recorded.get(part)
        difference = first_difference(wanted, canonical(getattr(decision, part)))
        if difference is not None:
            found.append(Divergence(part, *difference))
    return tuple(found)


def replay_lines(lines: Sequence[dict[str, Any]], settings: Any) -> Iterator[ReplayStep | ReplayProblem]:
    """Replay the lines in order, yielding each step; stops after the first divergence
    (a step with ``divergences``) or problem."""
    replay = _Replay()
    for number, line in enumerate(lines, start=1):
        order_id, seq = subject_of(line), int(line["seq"])
        try:
            event = records_json.loads(json.dumps(line["message"]))
            recorded = line["decision"]
            ctx = context_of(recorded["context"], settings)
        except (KeyError, TypeError, ValueError) as err:
            yield ReplayProblem(number, order_id, seq, f"unreadable entry: {err!r}")
            return
        if order_id in replay.states:
            before = replay.states[order_id]
        elif _is_new_order(event):
            before = None
        elif order_id in replay.created:
            before = replay.created[order_id]
        else:
            yield ReplayProblem(number, order_id, seq, _missing_start(event, line))
            return
        try:
            recorded_state = recorded_plain_state(before, recorded)
        except (KeyError, TypeError, ValueError) as err:
            yield ReplayProblem(number, order_id, seq, f"unreadable entry: {err!r}")
            return
        decision = decide(before, event, ctx)
        divergences = _compare(recorded, recorded_state, decision)
        after = decision.state
        yield ReplayStep(
            number, order_id, seq, event_summary(event), _status(before), _status(after),
            tuple(effect_summary(e) for e in decision.effects), state_diff(before, after),
            divergences,
        )
        if divergences:
            return
        replay.states[order_id] = after
        for child in decision.created_orders:
            replay.created[child.order.id] = child


def _missing_start(event: Any, line: dict[str, Any]) -> str:
    decision = line["decision"]
    state = decision.get(journal_changes.STATE) or decision.get(journal_changes.CHANGES) or {}
    parent = (state.get("order") or {}).get("range_parent_id") if isinstance(state, dict) else None
    if parent:
        return (f"order {subject_of(line)} is a range child of {parent}, and the parent's journal "
                "entry that created it is not in the file (export the child with its parent)")
    return (f"order {subject_of(line)} starts with {event_summary(event)}, not new-order, and no "
            "earlier entry in the file created it")
