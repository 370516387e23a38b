"""Load an order's state and commit a decision: the order actor's only door to storage.

A decision's new order row, bond rows, dispute row, child orders, user updates,
journal entry and outbox rows are written in ONE transaction (DESIGN.md §3), so
a crash can never separate a state change from its side effects. Rows are
converted to the logic's records here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from storage import models, repository
from storage.database import is_sqlite

from . import journal_changes, records_json
from .order_logic.model import (
    BondRecord,
    BondRole,
    BondState,
    Decision,
    DecisionContext,
    DisputeRecord,
    Effect,
    OrderEvent,
    OrderRecord,
    OrderState,
    RecordRating,
    RecordTradeIndex,
)
from .order_logic.rating import RatingTotals, fold_rating

# effect class name -> adapter that executes it
EFFECT_TARGETS: dict[str, str] = {
    "SendMessage": "nostr",
    "PublishOrder": "nostr",
    "PublishDispute": "nostr",
    "AddHoldInvoice": "lightning",
    "CancelHoldInvoice": "lightning",
    "SettleHoldInvoice": "lightning",
    "SendPayment": "lightning",
}

# applied to the users table inside the decision's transaction, never queued
_USER_EFFECTS = (RecordTradeIndex, RecordRating)


def _record_from_row(cls: type, row: Any, enums: dict[str, type[Enum]]) -> Any:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not hasattr(row, f.name):
            continue
        value = getattr(row, f.name)
        if f.name in enums and value is not None:
            value = enums[f.name](value)
        values[f.name] = value
    return cls(**values)


def _row_values(record: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        values[f.name] = value.value if isinstance(value, Enum) else value
    return values


def order_record(row: models.Order) -> OrderRecord:
    from adapters.nostr.protocol.enums import Kind, Status

    return _record_from_row(OrderRecord, row, {"kind": Kind, "status": Status})


def _bond_record(row: models.Bond) -> BondRecord:
    return _record_from_row(BondRecord, row, {"role": BondRole, "state": BondState})


def _dispute_record(row: models.Dispute) -> DisputeRecord:
    return _record_from_row(DisputeRecord, row, {})


def load_state(order_id: str) -> OrderState | None:
    """The order with its bonds (oldest first) and dispute, or None if there is no such order."""
    row = models.Order.get_or_none(models.Order.id == order_id)
    if row is None:
        return None
    # Creation order, as the order actor holds them in memory: bonds made in the same second
    # tie on created_at, and a uuid is no tiebreak (created_seq is numbered on insert).
    bonds = (
        models.Bond.select()
        .where(models.Bond.order_id == order_id)
        .order_by(*repository.BOND_ORDER)
    )
    dispute = models.Dispute.get_or_none(models.Dispute.order_id == order_id)
    return OrderState(
        order=order_record(row),
        bonds=tuple(_bond_record(b) for b in bonds),
        dispute=_dispute_record(dispute) if dispute is not None else None,
    )


def load_states(order_ids: list[str], chunk: int = 500) -> dict[str, OrderState]:
    """`load_state` for many orders at once, three queries per `chunk` orders instead of three
    per order (start-up re-schedules every live order's deadlines; with 10,000 pending orders
    the per-order queries were most of the start)."""
    states: dict[str, OrderState] = {}
    for first in range(0, len(order_ids), chunk):
        ids = order_ids[first:first + chunk]
        bonds: dict[str, list[BondRecord]] = {}
        for bond in (models.Bond.select().where(models.Bond.order_id.in_(ids))
                     .order_by(*repository.BOND_ORDER)):  # the same order as load_state
            bonds.setdefault(bond.order_id, []).append(_bond_record(bond))
        disputes: dict[str, DisputeRecord] = {}
        for dispute in models.Dispute.select().where(models.Dispute.order_id.in_(ids)):
            disputes.setdefault(dispute.order_id, _dispute_record(dispute))
        for row in models.Order.select().where(models.Order.id.in_(ids)):
            states[row.id] = OrderState(order=order_record(row),
                                        bonds=tuple(bonds.get(row.id, ())),
                                        dispute=disputes.get(row.id))
    return states


# (model, field names, placeholder, quotes) -> the UPDATE's SQL text: building it with peewee's
# query builder for every row cost ~1 ms (most of a decision's commit in a take storm); the
# text never changes for one backend.
_UPDATE_SQL: dict[tuple[type, tuple[str, ...], str, str], str] = {}


def _update_sql(model: Any, names: tuple[str, ...]) -> str:
    db = models.database_proxy.obj
    key = (model, names, db.param, db.quote)
    sql = _UPDATE_SQL.get(key)
    if sql is None:
        quote = db.quote[0], db.quote[1]
        fields = model._meta.fields

        def column(name: str) -> str:
            return f"{quote[0]}{fields[name].column_name}{quote[1]}"

        assignments = ", ".join(f"{column(n)} = {db.param}" for n in names if n != "id")
        sql = (f"UPDATE {quote[0]}{model._meta.table_name}{quote[1]} SET {assignments} "
               f"WHERE {column('id')} = {db.param}")
        _UPDATE_SQL[key] = sql
    return sql


def _upsert(model: Any, record: Any) -> None:
    values = {k: v for k, v in _row_values(record).items() if k in model._meta.fields}
    fields = model._meta.fields
    names = tuple(values)
    params = [fields[n].db_value(values[n]) for n in names if n != "id"]
    params.append(fields["id"].db_value(values["id"]))
    cursor = models.database_proxy.execute_sql(_update_sql(model, names), params)
    if not cursor.rowcount:
        model.insert(**values).execute()


def _save_state(before: OrderState | None, after: OrderState,
                changes: dict[str, Any] | None = None) -> None:
    """Write the rows that differ from `before`; `changes` (``state_changes(before, after)``,
    already computed for the journal) saves comparing every bond twice."""
    if before is not None and changes is not None:
        if "order" in changes:
            _upsert(models.Order, after.order)
        for bond in changes["bonds"]:
            _upsert(models.Bond, bond)
        if changes.get("dispute") is not None:
            _upsert(models.Dispute, after.dispute)
        return
    if before is None or before.order != after.order:
        _upsert(models.Order, after.order)
    old_bonds = {b.id: b for b in before.bonds} if before else {}
    for bond in after.bonds:
        if old_bonds.get(bond.id) != bond:
            _upsert(models.Bond, bond)
    if after.dispute is not None and (before is None or before.dispute != after.dispute):
        _upsert(models.Dispute, after.dispute)


def _apply_user_effect(effect: RecordTradeIndex | RecordRating, now: int) -> None:
    # Users are shared between orders whose decisions may commit at once (PostgreSQL):
    # create-if-missing never fails on a concurrent creation, and the row is locked
    # for the read-modify-write, so neither decision's change is lost.
    if isinstance(effect, RecordTradeIndex):
        repository.ensure_user(effect.identity, now)
    user = repository.lock_user(effect.identity)
    if isinstance(effect, RecordTradeIndex):
        assert user is not None
        if effect.trade_index > (user.last_trade_index or 0):
            user.last_trade_index = effect.trade_index
            user.save()
        return
    if user is None:
        return  # full-privacy or unknown identity: ratings are skipped (ORDER_FLOW.md §4.13)
    totals = fold_rating(
        RatingTotals(user.total_reviews, user.total_rating, user.last_rating,
                     user.min_rating, user.max_rating),
        effect.rating,
    )
    for name, value in dataclasses.asdict(totals).items():
        setattr(user, name, value)
    user.save()


def journal_context(ctx: DecisionContext) -> dict[str, Any]:
    """The parts of a context a replay needs besides settings."""
    return {
        "now": ctx.now,
        "entropy": ctx.entropy.hex(),
        "network": ctx.network,
        "prices": dict(ctx.prices.prices) if ctx.prices else None,
        "prices_at": ctx.prices.taken_at if ctx.prices else None,
        "reputations": {k: dataclasses.asdict(v) for k, v in ctx.reputations.items()},
    }


def commit_decision(
    order_id: str,
    before: OrderState | None,
    event: OrderEvent,
    ctx: DecisionContext,
    decision: Decision,
) -> list[int]:
    """Write the decision atomically; return the outbox ids to dispatch after commit."""
    db = models.database_proxy
    outbox_ids: list[int] = []
    # Only what changed since `before` (journal_changes): the whole state with every decision
    # made N accepted bonds cost O(N²) serialisation.
    state_part = journal_changes.journal_state(before, decision.state)
    with db.atomic():
        if decision.state is not None:
            _save_state(before, decision.state, state_part.get(journal_changes.CHANGES))
        for child in decision.created_orders:
            _save_state(None, child)
        queued: list[Effect] = [e for e in decision.effects if not isinstance(e, _USER_EFFECTS)]
        # Users in one order (stable, by identity): two decisions locking the same
        # users can then never wait on each other in a cycle.
        user_effects = [e for e in decision.effects if isinstance(e, _USER_EFFECTS)]
        for effect in sorted(user_effects, key=lambda e: e.identity):
            _apply_user_effect(effect, ctx.now)
        _append_journal(
            order_id,
            records_json.dumps(event),
            records_json.dumps(
                {"context": journal_context(ctx), "effects": decision.effects,
                 "created_orders": decision.created_orders, **state_part}
            ),
            ctx.now,
        )
        for effect in queued:
            name = type(effect).__name__
            outbox_ids.append(_enqueue(order_id, name, records_json.dumps(effect), ctx.now))
    return outbox_ids


# On SQLite the journal and outbox rows are written with fixed SQL text (peewee's query
# builder cost more than SQLite itself: ~0.5 ms a row, 400 rows for a storm's winner);
# elsewhere through the repository, which needs RETURNING for the new ids.
_JOURNAL_LAST = 'SELECT MAX("seq") FROM "journal" WHERE "order_id" = ?'
_JOURNAL_INSERT = ('INSERT INTO "journal" ("order_id", "seq", "message", "decision", "created_at")'
                   " VALUES (?, ?, ?, ?, ?)")
_OUTBOX_INSERT = ('INSERT INTO "outbox" ("order_id", "effect", "target", "payload", "created_at",'
                  ' "attempts") VALUES (?, ?, ?, ?, ?, 0)')


def _on_sqlite() -> bool:
    return is_sqlite(models.database_proxy.obj)


def _append_journal(order_id: str, message: str, decision: str, now: int) -> None:
    if not _on_sqlite():
        repository.append_journal(order_id, message, decision, now)
        return
    db = models.database_proxy
    last = db.execute_sql(_JOURNAL_LAST, (order_id,)).fetchone()[0]
    db.execute_sql(_JOURNAL_INSERT, (order_id, (last or 0) + 1, message, decision, now))


def _enqueue(order_id: str, name: str, payload: str, now: int) -> int:
    if not _on_sqlite():
        return repository.enqueue_effect(order_id, name, EFFECT_TARGETS[name], payload, now)
    cursor = models.database_proxy.execute_sql(
        _OUTBOX_INSERT, (order_id, name, EFFECT_TARGETS[name], payload, now))
    return int(cursor.lastrowid)
