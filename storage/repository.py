"""Every query the daemon makes, as plain functions over the models (bound via `open_database`).

Queries live here and nowhere else. Rules the order logic relies on:
bonds are always looked up *scoped* — by order and taker pubkey, by hash, by
state — never as "the" bond of an order, because several takers may race on
one order (BONDS.md §1); lists come back in a stable order (`created_at`,
then creation order, then id), so replays see the same sequence on either
backend. Rows that several orders share (users) are read for update with
`lock_user`, so two decisions committing at once on PostgreSQL never lose
each other's change.

Functions here do not decide anything and do not open transactions, except
where one statement must be atomic by itself; the order actor wraps a
decision's writes in `storage.write_transaction()`. `now` arguments default
to the wall clock for callers outside the pure core. The statements every
request runs are fixed SQL text (`storage.fixed_sql`: peewee's query builder
cost more than the database); the rest use the models.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import peewee

from storage import fixed_sql
from storage.database import database_proxy, is_sqlite
from storage.models import Bond, Dispute, JournalEntry, Order, OutboxEffect, SeenEvent, User

# BondState values (kebab-case, as stored) that still hold or may hold an HTLC.
BOND_REQUESTED = "requested"
BOND_LOCKED = "locked"
BOND_RELEASED = "released"
ACTIVE_BOND_STATES = (BOND_REQUESTED, BOND_LOCKED)
# LND invoice states after which nothing more happens to the HTLC.
FINAL_INVOICE_STATES = ("canceled", "settled")
ROLE_TAKER = "taker"
ROLE_MAKER = "maker"
# Order statuses in which the order's escrow hold invoice (when it has a hash) may be open.
ESCROW_OPEN_STATUSES = ("waiting-payment", "waiting-buyer-invoice", "active", "fiat-sent", "dispute")
# Order statuses after which nothing more happens to the order (ORDER_FLOW.md §2.4).
TERMINAL_ORDER_STATUSES = (
    "success", "canceled", "cooperatively-canceled", "canceled-by-admin",
    "settled-by-admin", "completed-by-admin", "expired",
)
# restore-session leaves these out: terminal ones, and disputed orders (listed as disputes).
RESTORE_EXCLUDED_ORDER_STATUSES = (*TERMINAL_ORDER_STATUSES, "dispute")
OPEN_DISPUTE_STATUSES = ("initiated", "in-progress")


# Oldest first: bonds of one race are often made in the same second, and `created_seq`
# (numbered by the database on insert) keeps them in the order they were made.
BOND_ORDER = (Bond.created_at, Bond.created_seq, Bond.id)


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


def order_exists(order_id: str) -> bool:
    """Whether the order is stored: the directory asks it for every request to an order that has
    no live actor (fixed SQL: peewee's `get_or_none` built its query and a whole row for a yes
    or no)."""
    return fixed_sql.fetch_one(_ORDER_EXISTS, (order_id,)) is not None


_ORDER_EXISTS = 'SELECT 1 FROM "orders" WHERE "id" = ? LIMIT 1'


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
    return list(Bond.select().where(Bond.order_id == order_id).order_by(*BOND_ORDER))


def active_bonds_of_order(order_id: str, role: str | None = None) -> list[Bond]:
    """Bonds of the order that are `requested` or `locked`, oldest first; optionally of one role."""
    query = Bond.select().where((Bond.order_id == order_id) & Bond.state.in_(ACTIVE_BOND_STATES))
    if role is not None:
        query = query.where(Bond.role == role)
    return list(query.order_by(*BOND_ORDER))


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
        .order_by(*BOND_ORDER)
        .first()
    )


def bond_by_hash(payment_hash: str) -> Bond | None:
    return Bond.get_or_none(Bond.hash == payment_hash)


def find_bond(bond_id: str) -> Bond | None:
    return Bond.get_or_none(Bond.id == bond_id)


def bonds_by_state(*states: str) -> list[Bond]:
    return list(Bond.select().where(Bond.state.in_(states)).order_by(*BOND_ORDER))


def active_bonds() -> list[Bond]:
    """Every `requested`/`locked` bond of every order: re-subscribed on start, whatever the settings say."""
    return bonds_by_state(*ACTIVE_BOND_STATES)


def upsert_bond(row: Mapping[str, Any]) -> None:
    """Write a whole bond row (every column, as `as_dict` gives them).

    A row without `created_seq` (or with None) is numbered by the database when
    inserted and keeps its number when overwritten.
    """
    if row.get("created_seq") is None:
        row = {name: value for name, value in row.items() if name != "created_seq"}
    _upsert(Bond, row)


class OpenInvoice(NamedTuple):
    """A hold invoice the Lightning adapter must watch, with the last state LND reported (if stored).

    Unpacks as `(payment_hash, last_state)`. `last_state` is the bond's
    `invoice_state` (`open`/`accepted`/`settled`/`canceled`); orders do not
    store their escrow invoice's state, so it is None for them.
    """

    payment_hash: str
    last_state: str | None


def open_hold_invoices() -> list[OpenInvoice]:
    """Every hold invoice to (re)subscribe on start, escrows first, then bonds; each oldest first.

    Escrows: orders in a waiting/trade status that have a hash. Bonds: every
    active bond, plus released bonds whose cancel LND has not confirmed yet
    (so a late ACCEPTED is seen and answered with another cancel, and the
    confirmation is recorded). Never filtered by the current bond setting.
    """
    escrows = (
        Order.select(Order.hash)
        .where(Order.status.in_(ESCROW_OPEN_STATUSES) & Order.hash.is_null(False))
        .order_by(Order.created_at, Order.id)
    )
    unconfirmed_release = (
        (Bond.state == BOND_RELEASED)
        & Bond.release_confirmed_at.is_null()
        & (Bond.invoice_state.is_null() | Bond.invoice_state.not_in(FINAL_INVOICE_STATES))
    )
    bonds = (
        Bond.select(Bond.hash, Bond.invoice_state)
        .where(Bond.hash.is_null(False) & (Bond.state.in_(ACTIVE_BOND_STATES) | unconfirmed_release))
        .order_by(*BOND_ORDER)
    )
    return [OpenInvoice(order.hash, None) for order in escrows] + [
        OpenInvoice(bond.hash, bond.invoice_state) for bond in bonds
    ]


def order_id_for_hash(payment_hash: str) -> str | None:
    """The order an invoice event belongs to: by its escrow hash, else by one of its bonds' hash."""
    row = (fixed_sql.fetch_one(_ORDER_BY_HASH, (payment_hash,))
           or fixed_sql.fetch_one(_BOND_ORDER_BY_HASH, (payment_hash,)))
    return row[0] if row is not None else None


_ORDER_BY_HASH = 'SELECT "id" FROM "orders" WHERE "hash" = ? LIMIT 1'
_BOND_ORDER_BY_HASH = 'SELECT "order_id" FROM "bonds" WHERE "hash" = ? LIMIT 1'


def order_id_for_payout(payment_hash: str) -> str | None:
    """The order whose buyer payout is in flight under this payment hash."""
    order = Order.select(Order.id).where(Order.payout_payment_hash == payment_hash).first()
    return order.id if order is not None else None


def live_order_ids() -> list[str]:
    """Orders that may still have a deadline or an open invoice: not terminal, or holding an active bond."""
    not_terminal = Order.select(Order.id, Order.created_at).where(Order.status.not_in(TERMINAL_ORDER_STATUSES))
    with_bond = (
        Order.select(Order.id, Order.created_at)
        .join(Bond, on=(Bond.order_id == Order.id))
        .where(Bond.state.in_(ACTIVE_BOND_STATES))
    )
    rows = (not_terminal | with_bond).order_by(peewee.SQL("created_at"), peewee.SQL("id"))
    return [row.id for row in rows]


def identity_has_pending_take(identity: str, order_kind: str) -> bool:
    """Mostro's `pending_order_exists` guard for a take of an order of `order_kind` (trap 11).

    Keyed on the identity and on one status per side, like the Rust daemon:
    take-sell (the taker buys) → an order where this identity is the buyer in
    `waiting-buyer-invoice`; take-buy (the taker sells) → an order where it is
    the seller in `waiting-payment`.
    """
    if order_kind == "sell":
        text, status = _PENDING_TAKE_AS_BUYER, "waiting-buyer-invoice"
    elif order_kind == "buy":
        text, status = _PENDING_TAKE_AS_SELLER, "waiting-payment"
    else:
        raise ValueError(f"order kind must be 'buy' or 'sell', got {order_kind!r}")
    return fixed_sql.fetch_one(text, (identity, status)) is not None


_PENDING_TAKE_AS_BUYER = ('SELECT 1 FROM "orders" WHERE "master_buyer_pubkey" = ?'
                          ' AND "status" = ? LIMIT 1')
_PENDING_TAKE_AS_SELLER = ('SELECT 1 FROM "orders" WHERE "master_seller_pubkey" = ?'
                           ' AND "status" = ? LIMIT 1')


def orders_of_identity(order_ids: Sequence[str], identity: str) -> list[Order]:
    """The `orders` request: those of `order_ids` where `identity` is buyer or seller, in request order."""
    wanted = list(dict.fromkeys(order_ids))
    found = {
        order.id: order
        for order in Order.select().where(
            Order.id.in_(wanted)
            & ((Order.master_buyer_pubkey == identity) | (Order.master_seller_pubkey == identity))
        )
    }
    return [found[order_id] for order_id in wanted if order_id in found]


@dataclass(frozen=True)
class RestoredOrder:
    id: str
    trade_index: int
    status: str


@dataclass(frozen=True)
class RestoredDispute:
    dispute_id: str
    order_id: str
    trade_index: int
    status: str
    initiator: str | None  # "buyer" | "seller" | None when not exactly one side opened it
    solver_pubkey: str | None


def restore_data(identity: str) -> tuple[list[RestoredOrder], list[RestoredDispute]]:
    """`restore-session`: the identity's open orders (not terminal, not in dispute) and open disputes.

    The trade index is the one this identity used on its side of the order
    (0 if unknown). The Rust daemon spells some excluded statuses without
    dashes and so lists e.g. `canceled-by-admin` orders; we exclude every
    terminal status as ORDER_FLOW.md §4.14 says.
    """
    orders: list[RestoredOrder] = []
    query = (
        Order.select()
        .where(
            ((Order.master_buyer_pubkey == identity) | (Order.master_seller_pubkey == identity))
            & Order.status.not_in(RESTORE_EXCLUDED_ORDER_STATUSES)
        )
        .order_by(Order.created_at, Order.id)
    )
    for order in query:
        orders.append(RestoredOrder(order.id, _trade_index_of(order, identity), order.status))
    disputes: list[RestoredDispute] = []
    joined = (
        Dispute.select(Dispute, Order)
        .join(Order, on=(Dispute.order_id == Order.id), attr="order")
        .where(
            ((Order.master_buyer_pubkey == identity) | (Order.master_seller_pubkey == identity))
            & Dispute.status.in_(OPEN_DISPUTE_STATUSES)
        )
        .order_by(Dispute.created_at, Dispute.id)
    )
    for dispute in joined:
        order = dispute.order
        initiator = None
        if order.buyer_dispute != order.seller_dispute:
            initiator = "buyer" if order.buyer_dispute else "seller"
        disputes.append(RestoredDispute(
            dispute.id, dispute.order_id, _trade_index_of(order, identity), dispute.status,
            initiator, dispute.solver_pubkey,
        ))
    return orders, disputes


def _trade_index_of(order: Order, identity: str) -> int:
    if order.master_buyer_pubkey == identity:
        return order.trade_index_buyer or 0
    return order.trade_index_seller or 0


# --- users and disputes ---

def find_user(pubkey: str) -> User | None:
    return User.get_or_none(User.pubkey == pubkey)


def upsert_user(row: Mapping[str, Any]) -> None:
    _upsert(User, row)


_USER_LAST_TRADE_INDEX = 'SELECT "last_trade_index" FROM "users" WHERE "pubkey" = ?'


def last_trade_index(pubkey: str) -> int | None:
    """The user's last trade index (0 when never set), or None when there is no user row:
    the one column the intake's trade-index rule reads for every new order and take."""
    row = fixed_sql.fetch_one(_USER_LAST_TRADE_INDEX, (pubkey,))
    return None if row is None else int(row[0] or 0)


# Every other column takes its DDL default (the same values as the model's defaults).
_RECORD_TRADE_INDEX = (
    'INSERT INTO "users" ("pubkey", "created_at", "last_trade_index") VALUES (?, ?, ?)'
    ' ON CONFLICT ("pubkey") DO UPDATE SET "last_trade_index" = excluded."last_trade_index"'
    ' WHERE COALESCE("users"."last_trade_index", 0) < excluded."last_trade_index"')


def record_trade_index(pubkey: str, trade_index: int, now: int | None = None) -> None:
    """Create the user row unless it exists and raise its last trade index to `trade_index` if
    that is higher. One statement (it was an insert and an update, run for every new order and
    take): on PostgreSQL the row's lock orders two concurrent decisions, and the comparison is
    made on the row as it is then."""
    fixed_sql.execute(_RECORD_TRADE_INDEX, (pubkey, _now(now), max(trade_index, 0)))


def lock_user(pubkey: str) -> User | None:
    """The user row, held until the transaction ends, for a read-modify-write.

    PostgreSQL: `SELECT … FOR UPDATE`, so a concurrent decision on another
    order waits instead of overwriting this one's change (call it inside a
    transaction, and lock several users in sorted order so two decisions
    cannot deadlock). SQLite: a plain read, as `BEGIN IMMEDIATE` already holds
    the database's write lock.
    """
    query = User.select().where(User.pubkey == pubkey)
    if not is_sqlite(database_proxy.obj):
        query = query.for_update()
    return query.first()


def dispute_of_order(order_id: str) -> Dispute | None:
    return Dispute.get_or_none(Dispute.order_id == order_id)


def upsert_dispute(row: Mapping[str, Any]) -> None:
    _upsert(Dispute, row)


# --- outbox ---

_OUTBOX_INTO = ('INSERT INTO "outbox" ("order_id", "effect", "target", "payload", "created_at",'
                ' "attempts")')
_OUTBOX_ROW = "(?, ?, ?, ?, ?, 0)"
_OUTBOX_INSERT = f"{_OUTBOX_INTO} VALUES {_OUTBOX_ROW}"


def enqueue_effect(
    order_id: str | None, effect: str, target: str, payload_json: str, now: int | None = None,
) -> int:
    """Record an effect before anyone acts on it; returns its outbox id."""
    params = (order_id, effect, target, payload_json, _now(now))
    if is_sqlite(database_proxy.obj):
        return int(fixed_sql.execute(_OUTBOX_INSERT, params).lastrowid)
    return int(fixed_sql.fetch_one(_OUTBOX_INSERT + ' RETURNING "id"', params)[0])


def enqueue_effects(
    order_id: str | None, effects: Sequence[tuple[str, str, str]], now: int | None = None,
) -> list[int]:
    """`enqueue_effect` for a decision's `(effect, target, payload_json)` rows in one statement
    (most decisions queue two or three); returns their outbox ids in the same order.

    The ids come back in row order on both backends: on SQLite each row takes the next rowid
    (the transaction holds the write lock, so nothing else inserts meanwhile), and on
    PostgreSQL each row's id is the sequence's next value, taken row by row."""
    if len(effects) < 2:
        return [enqueue_effect(order_id, *row, now=now) for row in effects]
    stamp = _now(now)
    sql = fixed_sql.many_rows(_OUTBOX_INTO, _OUTBOX_ROW, len(effects))
    params = [value for effect, target, payload in effects
              for value in (order_id, effect, target, payload, stamp)]
    if is_sqlite(database_proxy.obj):
        last = int(fixed_sql.execute(sql, params).lastrowid)
        return list(range(last - len(effects) + 1, last + 1))
    return sorted(int(row[0]) for row in fixed_sql.fetch_all(sql + ' RETURNING "id"', params))


def undone_outbox(target: str | None = None) -> list[OutboxEffect]:
    """Effects not yet marked done, in the order they were recorded (re-sent on start)."""
    query = OutboxEffect.select().where(OutboxEffect.done_at.is_null())
    if target is not None:
        query = query.where(OutboxEffect.target == target)
    return list(query.order_by(OutboxEffect.id))


_OUTBOX_DONE = 'UPDATE "outbox" SET "done_at" = ? WHERE "id" = ? AND "done_at" IS NULL'


def mark_outbox_done(effect_id: int, now: int | None = None) -> bool:
    """Mark an effect done; False if it was unknown or already done (a duplicate confirmation)."""
    return fixed_sql.execute(_OUTBOX_DONE, (_now(now), effect_id)).rowcount == 1


# SQLite allows 999 bound parameters per statement in old builds: stay well below.
_IDS_PER_QUERY = 500


class OutboxRow(NamedTuple):
    """One outbox row as `outbox_rows` reads it (the columns of `OutboxEffect`)."""

    id: int
    order_id: str | None
    effect: str
    target: str
    payload: str
    created_at: int
    done_at: int | None
    attempts: int
    last_error: str | None


_OUTBOX_COLUMNS = ", ".join(f'"{name}"' for name in OutboxRow._fields)
# number of ids -> statement (at most _IDS_PER_QUERY texts per statement kind)
_OUTBOX_ROWS: dict[int, str] = {}
_OUTBOX_DONE_MANY: dict[int, str] = {}


def _outbox_rows_sql(count: int) -> str:
    sql = _OUTBOX_ROWS.get(count)
    if sql is None:
        sql = _OUTBOX_ROWS[count] = (f'SELECT {_OUTBOX_COLUMNS} FROM "outbox"'
                                     f' WHERE "id" IN ({fixed_sql.placeholders(count)})')
    return sql


def _outbox_done_many_sql(count: int) -> str:
    sql = _OUTBOX_DONE_MANY.get(count)
    if sql is None:
        sql = _OUTBOX_DONE_MANY[count] = (
            f'UPDATE "outbox" SET "done_at" = ? WHERE "id" IN ({fixed_sql.placeholders(count)})'
            ' AND "done_at" IS NULL')
    return sql


def outbox_rows(effect_ids: Sequence[int]) -> dict[int, OutboxRow]:
    """The outbox rows with these ids (done or not), one query per 500 ids; unknown ids are
    simply absent."""
    rows: dict[int, OutboxRow] = {}
    ids = list(dict.fromkeys(effect_ids))
    for first in range(0, len(ids), _IDS_PER_QUERY):
        chunk = ids[first:first + _IDS_PER_QUERY]
        for values in fixed_sql.fetch_all(_outbox_rows_sql(len(chunk)), chunk):
            row = OutboxRow(*values)
            rows[row.id] = row
    return rows


def mark_outbox_done_many(effect_ids: Sequence[int], now: int | None = None) -> int:
    """`mark_outbox_done` for many effects in one transaction; returns how many were marked
    (unknown or already done ones are not counted)."""
    ids = list(dict.fromkeys(effect_ids))
    marked = 0
    done_at = _now(now)
    with database_proxy.atomic():
        for first in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[first:first + _IDS_PER_QUERY]
            marked += fixed_sql.execute(_outbox_done_many_sql(len(chunk)),
                                        [done_at, *chunk]).rowcount
    return marked


def record_outbox_failure(effect_id: int, error: str) -> None:
    """Count a failed attempt and keep its reason; the effect stays undone for a retry."""
    OutboxEffect.update(attempts=OutboxEffect.attempts + 1, last_error=error).where(
        OutboxEffect.id == effect_id
    ).execute()


# --- journal ---

def append_journal(
    order_id: str, message_json: str, decision_json: str, now: int | None = None,
    last_seq: int | None = None,
) -> int:
    """Append one handled message of an order; returns its sequence number (1, 2, …).

    Only the order's actor appends to its journal, so reading the last seq and
    inserting the next needs no lock; the unique (order_id, seq) index turns a
    routing bug into an IntegrityError instead of a silent fork. An actor that knows its
    last seq (it wrote it) passes `last_seq` and saves the read.
    """
    if last_seq is None:
        last_seq = int(fixed_sql.fetch_one(_JOURNAL_LAST, (order_id,))[0] or 0)
    seq = last_seq + 1
    fixed_sql.execute(_JOURNAL_INSERT, (order_id, seq, message_json, decision_json, _now(now)))
    return seq


_JOURNAL_LAST = 'SELECT MAX("seq") FROM "journal" WHERE "order_id" = ?'
_JOURNAL_INSERT = ('INSERT INTO "journal" ("order_id", "seq", "message", "decision", "created_at")'
                   " VALUES (?, ?, ?, ?, ?)")


def journal_of(order_id: str) -> list[JournalEntry]:
    return list(JournalEntry.select().where(JournalEntry.order_id == order_id).order_by(JournalEntry.seq))


# --- Nostr event de-duplication ---

def record_seen_event(event_id: str, now: int | None = None) -> bool:
    """Remember a processed Nostr event id; False if it had been seen already."""
    return fixed_sql.execute(_SEEN_INSERT, (event_id, _now(now))).rowcount == 1


_SEEN_INTO = 'INSERT INTO "seen_events" ("event_id", "seen_at")'
_SEEN_INSERT = f"{_SEEN_INTO} VALUES (?, ?) ON CONFLICT DO NOTHING"


def record_seen_events(event_ids: Sequence[str], now: int | None = None) -> set[str]:
    """`record_seen_event` for several ids in one statement; returns those not seen before
    (an id given twice counts once)."""
    if not event_ids:
        return set()
    sql = fixed_sql.many_rows(_SEEN_INTO, "(?, ?)", len(event_ids),
                              ' ON CONFLICT DO NOTHING RETURNING "event_id"')
    stamp = _now(now)
    params = [value for event_id in event_ids for value in (event_id, stamp)]
    return {row[0] for row in fixed_sql.fetch_all(sql, params)}


def forget_seen_events_before(cutoff: int) -> int:
    """Drop ids seen before `cutoff` (older events fail the freshness rule anyway); returns how many."""
    return SeenEvent.delete().where(SeenEvent.seen_at < cutoff).execute()


def newest_done_publication(effect: str, order_id: str) -> tuple[int, int] | None:
    """The newest confirmed effect of this kind for the order: (its id, the latest done_at).

    The outbox seeds its ordering of addressable publications from here after a restart:
    an effect older than the newest one done is stale, and a new event must be stamped
    later than anything already confirmed (done_at is never before the event's created_at).
    """
    newest, done_at = fixed_sql.fetch_one(_NEWEST_DONE, (order_id, effect))
    if newest is None:
        return None
    return int(newest), int(done_at)


_NEWEST_DONE = ('SELECT MAX("id"), MAX("done_at") FROM "outbox"'
                ' WHERE "order_id" = ? AND "effect" = ? AND "done_at" IS NOT NULL')
