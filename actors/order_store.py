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

from . import records_json
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


def _upsert(model: Any, record: Any) -> None:
    values = {k: v for k, v in _row_values(record).items() if k in model._meta.fields}
    key = values["id"]
    updated = model.update(**values).where(model.id == key).execute()
    if not updated:
        model.insert(**values).execute()


def _save_state(before: OrderState | None, after: OrderState) -> None:
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
    with db.atomic():
        if decision.state is not None:
            _save_state(before, decision.state)
        for child in decision.created_orders:
            _save_state(None, child)
        queued: list[Effect] = [e for e in decision.effects if not isinstance(e, _USER_EFFECTS)]
        # Users in one order (stable, by identity): two decisions locking the same
        # users can then never wait on each other in a cycle.
        user_effects = [e for e in decision.effects if isinstance(e, _USER_EFFECTS)]
        for effect in sorted(user_effects, key=lambda e: e.identity):
            _apply_user_effect(effect, ctx.now)
        seq = (
            models.JournalEntry.select()
            .where(models.JournalEntry.order_id == order_id)
            .count()
            + 1
        )
        models.JournalEntry.insert(
            order_id=order_id,
            seq=seq,
            message=records_json.dumps(event),
            decision=records_json.dumps(
                {"context": journal_context(ctx), "effects": decision.effects,
                 "created_orders": decision.created_orders, "state": decision.state}
            ),
            created_at=ctx.now,
        ).execute()
        for effect in queued:
            name = type(effect).__name__
            outbox_ids.append(
                models.OutboxEffect.insert(
                    order_id=order_id,
                    effect=name,
                    target=EFFECT_TARGETS[name],
                    payload=records_json.dumps(effect),
                    created_at=ctx.now,
                    attempts=0,
                ).execute()
            )
    return outbox_ids
