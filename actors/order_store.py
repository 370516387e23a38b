"""Load an order's state and commit a decision: the order actor's only door to storage.

A decision's new order row, bond rows, dispute row, child orders, user updates,
journal entry and outbox rows are written in ONE transaction (DESIGN.md §3), so
a crash can never separate a state change from its side effects. Rows are
converted to the logic's records here and nowhere else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from functools import partial
from operator import attrgetter
from typing import Any

import peewee

from storage import commit_group, fixed_sql, models, repository

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


def order_record(row: models.Order) -> OrderRecord:
    from adapters.nostr.protocol.enums import Kind, Status

    return _record_from_row(OrderRecord, row, {"kind": Kind, "status": Status})


def _bond_record(row: models.Bond) -> BondRecord:
    return _record_from_row(BondRecord, row, {"role": BondRole, "state": BondState})


def _dispute_record(row: models.Dispute) -> DisputeRecord:
    return _record_from_row(DisputeRecord, row, {})


class _RowReader:
    """Reads one record class from its table with fixed SQL text: the columns the record has,
    each converted as the model's field converts it (then to the record's enums)."""

    def __init__(self, cls: type, model: Any, enums: dict[str, type[Enum]], where: str,
                 order_by: str = "") -> None:
        fields = model._meta.fields
        names = [f.name for f in dataclasses.fields(cls) if f.name in fields]
        self._cls = cls
        self._names = names
        self._converters = [
            (lambda value, field=fields[n], enum=enums[n]:
             None if value is None else enum(field.python_value(value)))
            if n in enums else fields[n].python_value
            for n in names
        ]
        columns = ", ".join(f'"{fields[n].column_name}"' for n in names)
        self.sql = (f'SELECT {columns} FROM "{model._meta.table_name}" WHERE {where}'
                    + (f" ORDER BY {order_by}" if order_by else ""))

    def records(self, params: tuple[Any, ...]) -> list[Any]:
        names, converters, cls = self._names, self._converters, self._cls
        return [cls(**{n: convert(v) for n, convert, v in zip(names, converters, row, strict=True)})
                for row in fixed_sql.fetch_all(self.sql, params)]


_READERS: dict[str, _RowReader] = {}


def _reader(name: str) -> _RowReader:
    """The readers are built on first use (the record enums import the protocol package)."""
    reader = _READERS.get(name)
    if reader is None:
        from adapters.nostr.protocol.enums import Kind, Status

        _READERS.update(
            order=_RowReader(OrderRecord, models.Order, {"kind": Kind, "status": Status},
                             '"id" = ?'),
            # creation order, as repository.BOND_ORDER (see load_state)
            bonds=_RowReader(BondRecord, models.Bond, {"role": BondRole, "state": BondState},
                             '"order_id" = ?', '"created_at", "created_seq", "id"'),
            dispute=_RowReader(DisputeRecord, models.Dispute, {}, '"order_id" = ?'),
        )
        reader = _READERS[name]
    return reader


def load_state(order_id: str) -> OrderState | None:
    """The order with its bonds (oldest first) and dispute, or None if there is no such order."""
    orders = _reader("order").records((order_id,))
    if not orders:
        return None
    # Creation order, as the order actor holds them in memory: bonds made in the same second
    # tie on created_at, and a uuid is no tiebreak (created_seq is numbered on insert).
    bonds = _reader("bonds").records((order_id,))
    disputes = _reader("dispute").records((order_id,))
    return OrderState(
        order=orders[0],
        bonds=tuple(bonds),
        dispute=disputes[0] if disputes else None,
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


# (model, field names) -> the UPDATE's and the INSERT's SQL text: building them with peewee's
# query builder for every row cost ~1 ms (most of a decision's commit in a take storm); the
# text never changes (`fixed_sql` turns its placeholders into the backend's).
_UPDATE_SQL: dict[tuple[type, tuple[str, ...]], str] = {}
_INSERT_SQL: dict[tuple[type, tuple[str, ...]], str] = {}


def _column(model: Any, name: str) -> str:
    return f'"{model._meta.fields[name].column_name}"'


def _update_sql(model: Any, names: tuple[str, ...]) -> str:
    key = (model, names)
    sql = _UPDATE_SQL.get(key)
    if sql is None:
        assignments = ", ".join(f"{_column(model, n)} = ?" for n in names if n != "id")
        sql = _UPDATE_SQL[key] = (f'UPDATE "{model._meta.table_name}" SET {assignments} '
                                  f"WHERE {_column(model, 'id')} = ?")
    return sql


def _insert_sql(model: Any, names: tuple[str, ...]) -> str:
    """INSERT of a whole row that updates the row with the same id if there is one (one
    statement: a new record is written without an UPDATE that finds nothing first)."""
    key = (model, names)
    sql = _INSERT_SQL.get(key)
    if sql is None:
        columns = ", ".join(_column(model, n) for n in names)
        updates = ", ".join(f"{_column(model, n)} = excluded.{_column(model, n)}"
                            for n in names if n != "id")
        sql = _INSERT_SQL[key] = (f'INSERT INTO "{model._meta.table_name}" ({columns})'
                                  f" VALUES ({fixed_sql.placeholders(len(names))})"
                                  f" ON CONFLICT ({_column(model, 'id')}) DO UPDATE SET {updates}")
    return sql


# peewee field class -> the value types its `db_value` returns unchanged (as does None)
_WRITTEN_AS_IS: dict[type, tuple[type, ...]] = {
    peewee.CharField: (str,), peewee.TextField: (str,),
    peewee.IntegerField: (int,), peewee.BigIntegerField: (int,), peewee.BigAutoField: (int,),
    peewee.BooleanField: (bool,), peewee.FloatField: (float,), peewee.DoubleField: (float,),
}


@dataclass(frozen=True)
class _Columns:
    """The record's fields the table has, id last: their names, one C-level getter for all their
    values, and how each value is written. Most values are already what the column stores
    (`as_is`: a str for a text column, …): a call into peewee per column of an order's ~45 was a
    third of an INSERT's time."""

    names: tuple[str, ...]
    values_of: Callable[[Any], tuple[Any, ...]]
    as_is: tuple[frozenset[type], ...]
    db_values: tuple[Callable[[Any], Any], ...]

    def params(self, values: tuple[Any, ...], indexes: Iterable[int]) -> list[Any]:
        as_is, db_values = self.as_is, self.db_values
        return [values[i] if type(values[i]) in as_is[i] else db_values[i](values[i])
                for i in indexes]


# (model, record class) -> its _Columns
_COLUMNS: dict[tuple[type, type], _Columns] = {}


def _columns(model: Any, cls: type) -> _Columns:
    key = (model, cls)
    columns = _COLUMNS.get(key)
    if columns is None:
        fields = model._meta.fields
        names = tuple([f.name for f in dataclasses.fields(cls)
                       if f.name in fields and f.name != "id"] + ["id"])
        assert len(names) > 1, f"{cls.__name__} has no column besides its id"
        columns = _COLUMNS[key] = _Columns(
            names,
            attrgetter(*names),  # a tuple, for two names or more
            tuple(_as_is(fields[n]) for n in names),
            tuple(partial(_db_value, fields[n]) for n in names))
    return columns


def _as_is(field: Any) -> frozenset[type]:
    """The value types `field` stores unchanged; none for a field class not in the table."""
    native = _WRITTEN_AS_IS.get(type(field))
    return frozenset((type(None), *native)) if native else frozenset()


def _db_value(field: Any, value: Any) -> Any:
    return field.db_value(value.value if isinstance(value, Enum) else value)


def _upsert(model: Any, record: Any, before: Any = None) -> None:
    """Write `record`'s row. Given `before`, the record as its row was last written, only the
    columns that differ are updated (an order record has ~50: a status change wrote them all);
    else, or if that row is missing, the whole row is inserted (or replaces the row)."""
    columns = _columns(model, type(record))
    values = columns.values_of(record)
    if before is not None:
        last = len(values) - 1  # the id
        old_values = columns.values_of(before)
        changed = [i for i in range(last) if values[i] != old_values[i]]
        if not changed:
            return
        changed.append(last)
        sql = _update_sql(model, tuple(columns.names[i] for i in changed))
        if fixed_sql.execute(sql, columns.params(values, changed)).rowcount:
            return
    fixed_sql.execute(_insert_sql(model, columns.names),
                      columns.params(values, range(len(values))))


def _save_state(before: OrderState | None, after: OrderState,
                changes: dict[str, Any] | None = None) -> None:
    """Write the rows that differ from `before`; `changes` (``state_changes(before, after)``,
    already computed for the journal) saves comparing every bond twice."""
    if before is not None and changes is not None:
        if "order" in changes:
            _upsert(models.Order, after.order, before.order)
        old_bonds = {b.id: b for b in before.bonds} if changes["bonds"] else {}
        for bond in changes["bonds"]:
            _upsert(models.Bond, bond, old_bonds.get(bond.id))
        if changes.get("dispute") is not None:
            _upsert(models.Dispute, after.dispute, before.dispute)
        return
    if before is None or before.order != after.order:
        _upsert(models.Order, after.order, before.order if before else None)
    old_bonds = {b.id: b for b in before.bonds} if before else {}
    for bond in after.bonds:
        if old_bonds.get(bond.id) != bond:
            _upsert(models.Bond, bond, old_bonds.get(bond.id))
    if after.dispute is not None and (before is None or before.dispute != after.dispute):
        _upsert(models.Dispute, after.dispute, before.dispute if before else None)


def _apply_user_effect(effect: RecordTradeIndex | RecordRating, now: int) -> None:
    # Users are shared between orders whose decisions may commit at once (PostgreSQL):
    # create-if-missing never fails on a concurrent creation, and the row is locked
    # for the read-modify-write, so neither decision's change is lost.
    if isinstance(effect, RecordTradeIndex):
        # one fixed statement (the conditional upsert is its own read-modify-write under the
        # row's lock) instead of insert, locked read and a whole-row save
        repository.record_trade_index(effect.identity, effect.trade_index, now)
        return
    user = repository.lock_user(effect.identity)
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


def queued_effects(decision: Decision) -> list[Effect]:
    """The decision's effects that go to the outbox, in the order their rows are written
    (user effects are applied inside the transaction instead)."""
    return [e for e in decision.effects if not isinstance(e, _USER_EFFECTS)]


def journal_context(ctx: DecisionContext) -> dict[str, Any]:
    """The parts of a context a replay needs besides settings."""
    return {
        "now": ctx.now,
        "entropy": ctx.entropy.hex(),
        "network": ctx.network,
        "prices": dict(ctx.prices.prices) if ctx.prices else None,
        "prices_at": ctx.prices.taken_at if ctx.prices else None,
        # UserInfo's fields are plain: its asdict, without asdict's deep copy
        "reputations": {k: {"rating": v.rating, "reviews": v.reviews,
                            "operating_days": v.operating_days}
                        for k, v in ctx.reputations.items()},
    }


def commit_decision(
    order_id: str,
    before: OrderState | None,
    event: OrderEvent,
    ctx: DecisionContext,
    decision: Decision,
    journal_seq: int | None = None,
) -> tuple[list[int], int]:
    """Write the decision atomically (on its own, or with the thread's group commit:
    `commit_group.writes`); return the outbox ids to dispatch after commit and the journal seq
    written. `journal_seq`: the order's last seq, when the caller knows it."""
    # Only what changed since `before` (journal_changes): the whole state with every decision
    # made N accepted bonds cost O(N²) serialisation.
    state_part = journal_changes.journal_state(before, decision.state)
    with commit_group.writes():
        if decision.state is not None:
            _save_state(before, decision.state, state_part.get(journal_changes.CHANGES))
        for child in decision.created_orders:
            _save_state(None, child)
        # Users in one order (stable, by identity): two decisions locking the same
        # users can then never wait on each other in a cycle.
        user_effects = [e for e in decision.effects if isinstance(e, _USER_EFFECTS)]
        for effect in sorted(user_effects, key=lambda e: e.identity):
            _apply_user_effect(effect, ctx.now)
        # each effect serialised once, for the journal and for its outbox row
        effect_texts = [records_json.dumps(e) for e in decision.effects]
        seq = repository.append_journal(
            order_id,
            records_json.dumps(event),
            _decision_text(ctx, decision, state_part, effect_texts),
            ctx.now,
            journal_seq,
        )
        # the journal and outbox rows are fixed SQL text (storage.fixed_sql), the outbox's in
        # one statement
        outbox_ids = repository.enqueue_effects(order_id, [
            (type(effect).__name__, EFFECT_TARGETS[type(effect).__name__], text)
            for effect, text in zip(decision.effects, effect_texts, strict=True)
            if not isinstance(effect, _USER_EFFECTS)], ctx.now)
    return outbox_ids, seq


def _decision_text(ctx: DecisionContext, decision: Decision, state_part: dict[str, Any],
                   effect_texts: list[str]) -> str:
    """`records_json.dumps` of the journal's decision object ({"context", "effects",
    "created_orders", **state_part}), put together from its parts' texts so the effects,
    already serialised for the outbox, are not serialised twice (compact JSON of an object
    is its members' compact texts joined)."""
    parts = {"context": records_json.dumps(journal_context(ctx)),
             "effects": "[" + ",".join(effect_texts) + "]",
             "created_orders": records_json.dumps(decision.created_orders)}
    for key, value in state_part.items():
        parts[key] = records_json.dumps(value)
    return "{" + ",".join(f"{records_json.dumps(key)}:{text}" for key, text in parts.items()) + "}"


