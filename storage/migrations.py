"""Versioned schema migrations, applied in order on start; a new version appends a step.

Each step is frozen history: it declares the tables *as they were* at its
version (its own throwaway peewee models below, never the live models of
`storage.models`, which describe the current schema), so an old database and
a new one end up identical. `schema_version` records what ran. Steps only
issue DDL through the database they are given, so the same list renders the
PostgreSQL statements in a test without a server.

This module writes no rows other than `schema_version`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import peewee
from peewee import SQL

from storage.database import is_sqlite


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[peewee.Database], None]


# --- column builders (fresh Field objects each call; DDL defaults mirror Mostro's) ---

def _id36(**kw) -> peewee.Field:  # type: ignore[no-untyped-def]
    return peewee.CharField(max_length=36, **kw)


def _key64(**kw) -> peewee.Field:  # type: ignore[no-untyped-def]
    return peewee.CharField(max_length=64, **kw)


def _text(**kw) -> peewee.Field:  # type: ignore[no-untyped-def]
    return peewee.TextField(**kw)


def _int(default: int | None = None, **kw) -> peewee.Field:  # type: ignore[no-untyped-def]
    if default is None:
        return peewee.BigIntegerField(**kw)
    return peewee.BigIntegerField(default=default, constraints=[SQL(f"DEFAULT {default}")], **kw)


def _flag() -> peewee.Field:
    return peewee.BooleanField(default=False, constraints=[SQL("DEFAULT FALSE")])


def _word(length: int = 32, **kw) -> peewee.Field:  # type: ignore[no-untyped-def]
    return peewee.CharField(max_length=length, **kw)


def _create_table(
    db: peewee.Database,
    table_name: str,
    columns: dict[str, peewee.Field],
    *,
    indexes: tuple[tuple[tuple[str, ...], bool], ...] = (),
) -> None:
    """CREATE TABLE (and its indexes) from a column snapshot, through `db`."""
    meta = type("Meta", (), {"database": db, "table_name": table_name, "indexes": indexes})
    # The class is named after the table so index names read `<table>_<columns>`.
    snapshot = type(table_name, (peewee.Model,), {**columns, "Meta": meta})
    db.create_tables([snapshot], safe=False)


# --- version 1: the whole Phase-0 schema ---

def _v1_initial_schema(db: peewee.Database) -> None:
    orders_ref = [SQL("REFERENCES orders (id)")]
    _create_table(db, "orders", {
        "id": _id36(primary_key=True),
        "kind": _word(4),
        "event_id": _key64(null=True),
        "hash": _key64(null=True),
        "preimage": _key64(null=True),
        "creator_pubkey": _key64(),
        "cancel_initiator_pubkey": _key64(null=True),
        "dispute_initiator_pubkey": _key64(null=True),
        "buyer_pubkey": _key64(null=True),
        "seller_pubkey": _key64(null=True),
        "master_buyer_pubkey": _key64(null=True),
        "master_seller_pubkey": _key64(null=True),
        "status": _word(),
        "price_from_api": _flag(),
        "premium": _int(0),
        "payment_method": _text(),
        "amount": _int(0),
        "min_amount": _int(null=True),
        "max_amount": _int(null=True),
        "buyer_dispute": _flag(),
        "seller_dispute": _flag(),
        "buyer_cooperativecancel": _flag(),
        "seller_cooperativecancel": _flag(),
        "fee": _int(0),
        "routing_fee": _int(0),
        "dev_fee": _int(0),
        "dev_fee_paid": _flag(),
        "dev_fee_payment_hash": _word(128, null=True),
        "fiat_code": _word(16),
        "fiat_amount": _int(0),
        "buyer_invoice": _text(null=True),
        "range_parent_id": _id36(null=True),
        "invoice_held_at": _int(0),
        "taken_at": _int(0),
        "created_at": _int(),
        "buyer_sent_rate": _flag(),
        "seller_sent_rate": _flag(),
        "payment_attempts": _int(0),
        "failed_payment": _flag(),
        "expires_at": _int(),
        "trade_index_seller": _int(null=True),
        "trade_index_buyer": _int(null=True),
        "next_trade_pubkey": _key64(null=True),
        "next_trade_index": _int(null=True),
        "payout_payment_hash": _key64(null=True),
        "payout_claimed_at": _int(null=True),
        "cashu_mint_url": _text(null=True),
        "cashu_escrow_token": _text(null=True),
        "cashu_escrow_locked_at": _int(null=True),
    }, indexes=((("status",), False), (("hash",), False)))
    _create_table(db, "users", {
        "pubkey": _key64(primary_key=True),
        "is_admin": _flag(),
        "admin_password": _key64(null=True),
        "is_solver": _flag(),
        "is_banned": _flag(),
        "category": _int(0),
        "last_trade_index": _int(0),
        "total_reviews": _int(0),
        "total_rating": peewee.DoubleField(default=0.0, constraints=[SQL("DEFAULT 0")]),
        "last_rating": _int(0),
        "max_rating": _int(0),
        "min_rating": _int(0),
        "created_at": _int(),
    })
    _create_table(db, "disputes", {
        "id": _id36(primary_key=True),
        "order_id": _id36(unique=True, constraints=orders_ref),
        "status": _word(),
        "order_previous_status": _word(),
        "solver_pubkey": _key64(null=True),
        "created_at": _int(),
        "taken_at": _int(0),
    })
    _create_table(db, "bonds", {
        "id": _id36(primary_key=True),
        "order_id": _id36(constraints=orders_ref),
        "parent_bond_id": _id36(null=True),
        "child_order_id": _id36(null=True),
        "pubkey": _key64(),
        "role": _word(8),
        "amount_sats": _int(),
        "slashed_share_sats": _int(0),
        "state": _word(),
        "slashed_reason": _word(null=True),
        "hash": _key64(null=True),
        "preimage": _key64(null=True),
        "payment_request": _text(null=True),
        "payout_invoice": _text(null=True),
        "payout_routing_fee_sats": _int(null=True),
        "node_share_sats": _int(null=True),
        "payout_attempts": _int(0),
        "invoice_request_attempts": _int(0),
        "last_invoice_request_at": _int(null=True),
        "locked_at": _int(null=True),
        "released_at": _int(null=True),
        "slashed_at": _int(null=True),
        "created_at": _int(),
        "taker_identity": _key64(null=True),
        "taker_trade_index": _int(null=True),
        "taker_invoice": _text(null=True),
        "taker_fiat_amount": _int(null=True),
        "taker_amount": _int(null=True),
        "taker_fee": _int(null=True),
        "taker_dev_fee": _int(null=True),
        "invoice_state": _word(16, null=True),
        "release_confirmed_at": _int(null=True),
    }, indexes=(
        (("order_id",), False),
        (("state",), False),
        (("parent_bond_id",), False),
        (("hash",), True),
        (("order_id", "pubkey"), False),
    ))
    _create_table(db, "outbox", {
        "id": peewee.BigAutoField(),
        "order_id": _id36(null=True),
        "effect": _word(64),
        "target": _word(),
        "payload": _text(),
        "created_at": _int(),
        "done_at": _int(null=True),
        "attempts": _int(0),
        "last_error": _text(null=True),
    }, indexes=((("done_at",), False), (("order_id",), False)))
    _create_table(db, "journal", {
        "id": peewee.BigAutoField(),
        "order_id": _id36(),
        "seq": _int(),
        "message": _text(),
        "decision": _text(),
        "created_at": _int(),
    }, indexes=((("order_id", "seq"), True),))
    _create_table(db, "seen_events", {
        "event_id": _key64(primary_key=True),
        "seen_at": _int(),
    }, indexes=((("seen_at",), False),))


# --- version 2: bond columns the order logic keeps (ours) ---

def _add_column(db: peewee.Database, table: str, column: str, sqlite_type: str, postgres_type: str) -> None:
    column_type = sqlite_type if is_sqlite(db) else postgres_type
    db.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {column_type}')


def _v2_bond_expiry_and_notice(db: peewee.Database) -> None:
    # When an unpaid bond invoice lapses (BONDS.md §4.1, ours), and whether its
    # taker was already told `canceled` (exactly one notice, I7, across restarts).
    _add_column(db, "bonds", "expires_at", "INTEGER", "BIGINT")
    _add_column(db, "bonds", "canceled_notice_sent",
                "INTEGER NOT NULL DEFAULT FALSE", "BOOLEAN NOT NULL DEFAULT FALSE")


# --- version 3: bond creation order (ours) ---

def _v3_bond_creation_order(db: peewee.Database) -> None:
    # Bonds made in the same second tie on created_at, and a uuid is no tiebreak: the
    # database numbers each bond as it is inserted, so "oldest first" is the order the
    # order actor made them in, after a reload, on either backend.
    if is_sqlite(db):
        # rowid already is the insertion order (bonds are never deleted); a trigger copies it.
        db.execute_sql('ALTER TABLE "bonds" ADD COLUMN "created_seq" INTEGER')
        db.execute_sql('UPDATE "bonds" SET "created_seq" = rowid')
        db.execute_sql(
            'CREATE TRIGGER "bonds_created_seq" AFTER INSERT ON "bonds" '
            'WHEN NEW."created_seq" IS NULL BEGIN '
            'UPDATE "bonds" SET "created_seq" = NEW.rowid WHERE rowid = NEW.rowid; END'
        )
        return
    # PostgreSQL keeps no insertion order: existing rows are numbered by (created_at, id),
    # the order they were listed in so far; new rows take the next value of a sequence.
    db.execute_sql('ALTER TABLE "bonds" ADD COLUMN "created_seq" BIGINT')
    db.execute_sql(
        'UPDATE "bonds" SET "created_seq" = numbered.n FROM ('
        'SELECT "id", row_number() OVER (ORDER BY "created_at", "id") AS n FROM "bonds"'
        ') AS numbered WHERE "bonds"."id" = numbered."id"'
    )
    db.execute_sql('CREATE SEQUENCE "bonds_created_seq_seq" OWNED BY "bonds"."created_seq"')
    db.execute_sql(
        "SELECT setval('bonds_created_seq_seq', "
        'COALESCE((SELECT MAX("created_seq") FROM "bonds"), 0) + 1, false)'
    )
    db.execute_sql(
        "ALTER TABLE \"bonds\" ALTER COLUMN \"created_seq\" SET DEFAULT nextval('bonds_created_seq_seq')"
    )


# --- version 4: finding a user's pending take without a scan (ours) ---

def _v4_pending_take_indexes(db: peewee.Database) -> None:
    # Every take asks whether the taker already has a take waiting for its invoice or payment
    # (repository.has_pending_take): by identity and status. With only the status index that
    # read every order in that status (30 µs of SQLite at 400 of them, growing with the book).
    for column in ("master_buyer_pubkey", "master_seller_pubkey"):
        db.execute_sql(f'CREATE INDEX IF NOT EXISTS "orders_{column}_status" '
                       f'ON "orders" ("{column}", "status")')


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema: orders, users, disputes, bonds, outbox, journal, seen_events",
              _v1_initial_schema),
    Migration(2, "bonds.expires_at, bonds.canceled_notice_sent", _v2_bond_expiry_and_notice),
    Migration(3, "bonds.created_seq: creation order, numbered by the database", _v3_bond_creation_order),
    Migration(4, "orders: (master_buyer_pubkey, status) and (master_seller_pubkey, status) indexes",
              _v4_pending_take_indexes),
)


# PostgreSQL advisory lock taken while creating `schema_version` (any fixed 64-bit number
# no other code of this database uses; this one spells "mostro-m" in ASCII).
MIGRATION_LOCK_KEY = 0x6D6F7374726F2D6D


class _SchemaVersion(peewee.Model):
    version = peewee.IntegerField(primary_key=True)
    name = peewee.TextField()
    applied_at = peewee.BigIntegerField()

    class Meta:
        table_name = "schema_version"


def schema_versions(db: peewee.Database) -> list[int]:
    """Versions recorded as applied, ascending (empty for a fresh database)."""
    with db.bind_ctx([_SchemaVersion]):
        if not _SchemaVersion.table_exists():
            return []
        return [row.version for row in _SchemaVersion.select().order_by(_SchemaVersion.version)]


def migrate(db: peewee.Database, now: int | None = None) -> list[int]:
    """Apply every missing migration, each in its own transaction; returns the versions applied now.

    Re-running is a no-op returning `[]`. Two processes migrating at once
    serialise on the write lock (SQLite `BEGIN IMMEDIATE`; PostgreSQL an
    advisory lock, then `LOCK TABLE`) and the second finds the work done.
    """
    applied_now: list[int] = []
    with db.bind_ctx([_SchemaVersion]):
        with db.atomic():
            if not is_sqlite(db):
                # CREATE TABLE IF NOT EXISTS is not atomic on PostgreSQL: two processes may both
                # see no table and one fails on pg_type's unique index. The lock ends with the
                # transaction; the steps below are serialised by LOCK TABLE.
                db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
            db.create_tables([_SchemaVersion], safe=True)
        for migration in MIGRATIONS:
            with db.atomic():
                if not is_sqlite(db):
                    db.execute_sql("LOCK TABLE schema_version IN EXCLUSIVE MODE")
                if _SchemaVersion.get_or_none(_SchemaVersion.version == migration.version):
                    continue
                migration.apply(db)
                _SchemaVersion.create(
                    version=migration.version,
                    name=migration.name,
                    applied_at=int(time.time()) if now is None else now,
                )
            applied_now.append(migration.version)
    return applied_now


class _CapturingPostgres(peewee.PostgresqlDatabase):
    """A PostgreSQL database that records statements instead of connecting."""

    def __init__(self) -> None:
        super().__init__("capture", autoconnect=False)
        self.statements: list[str] = []

    def execute_sql(self, sql, params=None):  # type: ignore[no-untyped-def, override]
        self.statements.append(sql if not params else f"{sql} -- params {params!r}")
        return None


def render_postgres_sql() -> list[str]:
    """The DDL every migration step issues on PostgreSQL, in order, without a server."""
    capture = _CapturingPostgres()
    for migration in MIGRATIONS:
        migration.apply(capture)
    return capture.statements
