"""Every query the daemon makes, as plain functions over the models (bound via `open_database`).

Queries live here and nowhere else. Rules the order logic relies on:
bonds are always looked up *scoped* — by order and taker pubkey, by hash, by
state — never as "the" bond of an order, because several takers may race on
one order (BONDS.md §1); lists come back in a stable order (`created_at`,
then id), so replays see the same sequence.

Functions here do not decide anything and do not open transactions, except
where one statement must be atomic by itself; the order actor wraps a
decision's writes in `storage.write_transaction()`. `now` arguments default
to the wall clock for callers outside the pure core.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import peewee

from storage.database import database_proxy
from storage.models import Bond, Dispute, JournalEntry, Order, OutboxEffect, SeenEvent, User

# BondState values (kebab-case, as stored) that still hold or may hold an HTLC.
BOND_REQUESTED = "requested"
BOND_LOCKED = "locked"
ACTIVE_BOND_STATES = (BOND_REQUESTED, BOND_LOCKED)
ROLE_TAKER = "taker"
ROLE_MAKER = "maker"
# Order statuses in which the order's escrow hold invoice (when it has a hash) may be open.
ESCROW_OPEN_STATUSES = ("waiting-payment", "waiting-buyer-invoice", "active", "fiat-sent", "dispute")


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else now


def as_dict(row: peewee.Model) -> dict[str, Any]:
    """Every column of a row, by column name (what `upsert_*` takes back)."""
    return {field.name: getattr(row, field.name) for field in row._meta.sorted_fields}


def _upsert(model: type[peewee.Model], row: Mapping[str, Any]) -> None:
    """Insert a whole row, or overwrite every given column of the row with its primary key."""
    unknown = set(row) - set(model._meta.fields)
    if unknown:
        raise KeyError(f"{model.__name__} has no column(s) {sorted(unknown)}")
    primary_key = model._meta.primary_key
    updates = {model._meta.fields[name]: value for name, value in row.items() if name != primary_key.name}
    query = model.insert(**row)
    query = query.on_conflict(conflict_target=[primary_key], update=updates) if updates else query.on_conflict_ignore()
    query.execute()


# --- orders ---

def find_order(order_id: str) -> Order | None:
    return Order.get_or_none(Order.id == order_id)


def find_order_by_hash(payment_hash: str) -> Order | None:
    """The order whose escrow hold invoice has this hash (hold-invoice events carry only the hash)."""
    return Order.get_or_none(Order.hash == payment_hash)


def orders_by_status(*statuses: str) -> list[Order]:
    return list(Order.select().where(Order.status.in_(statuses)).order_by(Order.created_at, Order.id))


def upsert_order(row: Mapping[str, Any]) -> None:
    """Write a whole order row (every column, as `as_dict` gives them)."""
    _upsert(Order, row)


# --- bonds ---

def bonds_of_order(order_id: str) -> list[Bond]:
    """Every bond of the order, whatever its state, oldest first."""
    return list(Bond.select().where(Bond.order_id == order_id).order_by(Bond.created_at, Bond.id))


def active_bonds_of_order(order_id: str, role: str | None = None) -> list[Bond]:
    """Bonds of the order that are `requested` or `locked`, oldest first; optionally of one role."""
    query = Bond.select().where((Bond.order_id == order_id) & Bond.state.in_(ACTIVE_BOND_STATES))
    if role is not None:
        query = query.where(Bond.role == role)
    return list(query.order_by(Bond.created_at, Bond.id))


def active_bond_of_taker(order_id: str, pubkey: str) -> Bond | None:
    """The active taker bond that this trade pubkey holds on this order (at most one, I8)."""
    return (
        Bond.select()
        .where(
            (Bond.order_id == order_id)
            & (Bond.pubkey == pubkey)
            & (Bond.role == ROLE_TAKER)
            & Bond.state.in_(ACTIVE_BOND_STATES)
        )
        .order_by(Bond.created_at, Bond.id)
        .first()
    )


def bond_by_hash(payment_hash: str) -> Bond | None:
    return Bond.get_or_none(Bond.hash == payment_hash)


def find_bond(bond_id: str) -> Bond | None:
    return Bond.get_or_none(Bond.id == bond_id)


def bonds_by_state(*states: str) -> list[Bond]:
    return list(Bond.select().where(Bond.state.in_(states)).order_by(Bond.created_at, Bond.id))


def active_bonds() -> list[Bond]:
    """Every `requested`/`locked` bond of every order: re-subscribed on start, whatever the settings say."""
    return bonds_by_state(*ACTIVE_BOND_STATES)


def upsert_bond(row: Mapping[str, Any]) -> None:
    """Write a whole bond row (every column, as `as_dict` gives them)."""
    _upsert(Bond, row)


@dataclass(frozen=True)
class OpenInvoice:
    """A hold invoice the Lightning adapter must watch: an order's escrow or a bond."""

    payment_hash: str
    order_id: str
    bond_id: str | None  # None for the order's escrow invoice


def open_hold_invoices() -> list[OpenInvoice]:
    """Escrow invoices of orders in a waiting/trade status with a hash, then every active bond's invoice."""
    escrows = (
        Order.select(Order.id, Order.hash)
        .where(Order.status.in_(ESCROW_OPEN_STATUSES) & Order.hash.is_null(False))
        .order_by(Order.created_at, Order.id)
    )
    found = [OpenInvoice(order.hash, order.id, None) for order in escrows]
    found += [OpenInvoice(bond.hash, bond.order_id, bond.id) for bond in active_bonds() if bond.hash]
    return found


# --- users and disputes ---

def find_user(pubkey: str) -> User | None:
    return User.get_or_none(User.pubkey == pubkey)


def upsert_user(row: Mapping[str, Any]) -> None:
    _upsert(User, row)


def dispute_of_order(order_id: str) -> Dispute | None:
    return Dispute.get_or_none(Dispute.order_id == order_id)


def upsert_dispute(row: Mapping[str, Any]) -> None:
    _upsert(Dispute, row)


# --- outbox ---

def enqueue_effect(
    order_id: str | None, effect: str, target: str, payload_json: str, now: int | None = None,
) -> int:
    """Record an effect before anyone acts on it; returns its outbox id."""
    return OutboxEffect.insert(
        order_id=order_id, effect=effect, target=target, payload=payload_json,
        created_at=_now(now), attempts=0,
    ).execute()


def undone_outbox(target: str | None = None) -> list[OutboxEffect]:
    """Effects not yet marked done, in the order they were recorded (re-sent on start)."""
    query = OutboxEffect.select().where(OutboxEffect.done_at.is_null())
    if target is not None:
        query = query.where(OutboxEffect.target == target)
    return list(query.order_by(OutboxEffect.id))


def mark_outbox_done(effect_id: int, now: int | None = None) -> bool:
    """Mark an effect done; False if it was unknown or already done (a duplicate confirmation)."""
    updated = (
        OutboxEffect.update(done_at=_now(now))
        .where((OutboxEffect.id == effect_id) & OutboxEffect.done_at.is_null())
        .execute()
    )
    return updated == 1


def record_outbox_failure(effect_id: int, error: str) -> None:
    """Count a failed attempt and keep its reason; the effect stays undone for a retry."""
    OutboxEffect.update(attempts=OutboxEffect.attempts + 1, last_error=error).where(
        OutboxEffect.id == effect_id
    ).execute()


# --- journal ---

def append_journal(
    order_id: str, message_json: str, decision_json: str, now: int | None = None,
) -> int:
    """Append one handled message of an order; returns its sequence number (1, 2, …).

    Only the order's actor appends to its journal, so reading the last seq and
    inserting the next needs no lock; the unique (order_id, seq) index turns a
    routing bug into an IntegrityError instead of a silent fork.
    """
    last = (
        JournalEntry.select(peewee.fn.MAX(JournalEntry.seq))
        .where(JournalEntry.order_id == order_id)
        .scalar()
    )
    seq = (last or 0) + 1
    JournalEntry.insert(
        order_id=order_id, seq=seq, message=message_json, decision=decision_json, created_at=_now(now),
    ).execute()
    return seq


def journal_of(order_id: str) -> list[JournalEntry]:
    return list(JournalEntry.select().where(JournalEntry.order_id == order_id).order_by(JournalEntry.seq))


# --- Nostr event de-duplication ---

def record_seen_event(event_id: str, now: int | None = None) -> bool:
    """Remember a processed Nostr event id; False if it had been seen already."""
    query = SeenEvent.insert(event_id=event_id, seen_at=_now(now)).on_conflict_ignore()
    cursor = database_proxy.execute(query)
    return cursor.rowcount == 1


def forget_seen_events_before(cutoff: int) -> int:
    """Drop ids seen before `cutoff` (older events fail the freshness rule anyway); returns how many."""
    return SeenEvent.delete().where(SeenEvent.seen_at < cutoff).execute()
