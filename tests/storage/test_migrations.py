"""Migrations: from empty, re-applied, raced by several processes, matching the models, and on PostgreSQL."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import peewee
import pytest

import storage
from storage.migrations import MIGRATIONS, Migration, render_postgres_sql
from storage.models import ALL_MODELS

TABLES = {"orders", "users", "disputes", "bonds", "outbox", "journal", "seen_events"}


def test_versions_are_consecutive_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert all(m.name for m in MIGRATIONS)


def test_migrate_from_empty_then_again(database_url: str) -> None:
    database = storage.open_database(database_url)
    assert storage.schema_versions(database) == []
    assert storage.migrate(database) == [m.version for m in MIGRATIONS]
    assert TABLES | {"schema_version"} <= set(database.get_tables())
    assert storage.migrate(database) == []
    assert storage.schema_versions(database) == [m.version for m in MIGRATIONS]
    database.close()
    reopened = storage.open_database(database_url)
    assert storage.migrate(reopened) == []
    reopened.close()


def test_sqlite_connection_settings(sqlite_url: str) -> None:
    db = storage.open_database(sqlite_url)
    assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == storage.BUSY_TIMEOUT_MS
    assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    db.close()


def test_models_match_the_migrated_schema(db: peewee.Database) -> None:
    for model in ALL_MODELS:
        table = model._meta.table_name
        columns = {c.name: c for c in db.get_columns(table)}
        fields = {f.column_name: f for f in model._meta.sorted_fields}
        assert list(columns) == list(fields), table
        for name, field in fields.items():
            assert columns[name].null == field.null, f"{table}.{name} nullability"
            assert columns[name].primary_key == field.primary_key, f"{table}.{name} primary key"


def test_bond_indexes(db: peewee.Database) -> None:
    indexes = {tuple(i.columns): i.unique for i in db.get_indexes("bonds")}
    assert indexes[("hash",)] is True
    assert indexes[("order_id",)] is False
    assert indexes[("state",)] is False
    assert indexes[("parent_bond_id",)] is False
    journal = {tuple(i.columns): i.unique for i in db.get_indexes("journal")}
    assert journal[("order_id", "seq")] is True


def test_foreign_keys_are_enforced(db: peewee.Database, rows: dict) -> None:
    from storage.repository import upsert_bond

    with pytest.raises(peewee.IntegrityError):
        upsert_bond(rows["bond"])  # its order does not exist


_MIGRATE_AND_PRINT = (
    "import sys, storage; db = storage.open_database(sys.argv[1]); print(storage.migrate(db))"
)


def test_concurrent_migrations_apply_each_version_once(database_url: str) -> None:
    """Four processes start at once on an empty database: each version is applied exactly once."""
    url = database_url
    repo_root = Path(storage.__file__).resolve().parents[1]
    children = [
        subprocess.Popen([sys.executable, "-c", _MIGRATE_AND_PRINT, url], cwd=repo_root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    applied: list[int] = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        applied += ast.literal_eval(out.strip())
    assert sorted(applied) == [m.version for m in MIGRATIONS]
    database = storage.open_database(url)
    assert storage.schema_versions(database) == [m.version for m in MIGRATIONS]
    database.close()


def test_migrations_compile_for_postgresql() -> None:
    statements = render_postgres_sql()
    created = {s.split('"')[1] for s in statements if s.startswith("CREATE TABLE")}
    assert created == TABLES
    text = "\n".join(statements)
    assert "AUTOINCREMENT" not in text  # SQLite-only syntax must not leak
    assert '"id" BIGSERIAL' in text or '"id" SERIAL' in text
    assert 'CREATE UNIQUE INDEX "bonds_hash" ON "bonds" ("hash")' in text
    assert '"price_from_api" BOOLEAN NOT NULL DEFAULT FALSE' in text
    assert 'ALTER TABLE "bonds" ADD COLUMN "canceled_notice_sent" BOOLEAN NOT NULL DEFAULT FALSE' in text


def test_migrations_run_on_postgresql(postgres_url: str, rows: dict) -> None:
    from storage import repository

    database = storage.open_database(postgres_url)
    try:
        assert storage.migrate(database) == [m.version for m in MIGRATIONS]
        assert storage.migrate(database) == []
        assert TABLES <= set(database.get_tables())
        with storage.write_transaction():
            repository.upsert_order(rows["order"])
            repository.upsert_bond(rows["bond"])
        assert repository.as_dict(repository.bond_by_hash(rows["bond"]["hash"])) == rows["bond"]
        assert repository.record_seen_event("ab" * 32) is True
        assert repository.record_seen_event("ab" * 32) is False
        assert repository.append_journal(rows["order"]["id"], "{}", "{}", now=1) == 1
    finally:
        database.close()


def _add_note_column(db: peewee.Database) -> None:
    db.execute_sql("ALTER TABLE orders ADD COLUMN note TEXT")


def _half_done_then_fail(db: peewee.Database) -> None:
    db.execute_sql("CREATE TABLE scratch (x INTEGER)")
    raise RuntimeError("step fails halfway")


def test_a_later_version_applies_only_the_new_step(
    db: peewee.Database, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from storage import migrations

    nxt = len(MIGRATIONS) + 1
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, Migration(nxt, "orders.note", _add_note_column)))
    assert storage.migrate(db) == [nxt]
    assert "note" in {c.name for c in db.get_columns("orders")}
    assert storage.migrate(db) == []


def test_a_failed_step_leaves_no_trace_and_is_retried(
    db: peewee.Database, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from storage import migrations

    nxt = len(MIGRATIONS) + 1
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, Migration(nxt, "broken", _half_done_then_fail)))
    with pytest.raises(RuntimeError):
        storage.migrate(db)
    assert "scratch" not in db.get_tables()
    assert storage.schema_versions(db) == [m.version for m in MIGRATIONS]
    monkeypatch.setattr(migrations, "MIGRATIONS", (*MIGRATIONS, Migration(nxt, "fixed", _add_note_column)))
    assert storage.migrate(db) == [nxt]


def test_upgrade_from_version_one_keeps_rows(
    database_url: str, rows: dict, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from storage import migrations, repository

    database = storage.open_database(database_url)
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:1])
        assert storage.migrate(database) == [1]
    repository.upsert_order(rows["order"])
    mark = database.param  # ? on SQLite, %s on PostgreSQL
    database.execute_sql(
        "INSERT INTO bonds (id, order_id, pubkey, role, amount_sats, state, created_at)"
        f" VALUES ({mark}, {mark}, {mark}, 'taker', 1000, 'requested', 5)",
        (rows["bond"]["id"], rows["order"]["id"], rows["bond"]["pubkey"]),
    )
    assert storage.migrate(database) == [m.version for m in MIGRATIONS[1:]]
    bond = repository.find_bond(rows["bond"]["id"])
    assert (bond.amount_sats, bond.expires_at, bond.canceled_notice_sent) == (1000, None, False)
    database.close()


def test_upgrade_to_creation_order_numbers_old_bonds_and_new_ones_follow(
    database_url: str, rows: dict, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """v3 numbers bonds stored before it (SQLite: as inserted; PostgreSQL: by created_at, id);
    bonds inserted after it are numbered by the database, after every older one."""
    from storage import migrations, repository

    database = storage.open_database(database_url)
    with monkeypatch.context() as patch:
        patch.setattr(migrations, "MIGRATIONS", MIGRATIONS[:2])
        assert storage.migrate(database) == [1, 2]
    repository.upsert_order(rows["order"])
    mark = database.param
    old_ids = [f"0000000{n}-0000-4000-8000-000000000000" for n in (2, 1)]  # inserted against uuid order
    for n, bond_id in enumerate(old_ids):
        database.execute_sql(
            "INSERT INTO bonds (id, order_id, pubkey, role, amount_sats, state, created_at, hash)"
            f" VALUES ({mark}, {mark}, {mark}, 'taker', 1000, 'requested', 5, {mark})",
            (bond_id, rows["order"]["id"], rows["bond"]["pubkey"], f"{n:064x}"),
        )
    assert storage.migrate(database) == [m.version for m in MIGRATIONS[2:]]
    new = dict(rows["bond"], id="00000000-0000-4000-8000-000000000000", created_at=5, created_seq=None)
    repository.upsert_bond(new)
    listed = [bond.id for bond in repository.bonds_of_order(rows["order"]["id"])]
    old_order = old_ids if storage.database.is_sqlite(database) else sorted(old_ids)
    assert listed == [*old_order, new["id"]]
    seqs = [bond.created_seq for bond in repository.bonds_of_order(rows["order"]["id"])]
    assert None not in seqs and seqs == sorted(seqs) and len(set(seqs)) == 3
    repository.upsert_bond(dict(new, state="released"))  # overwriting keeps the number
    assert repository.find_bond(new["id"]).created_seq == seqs[-1]
    database.close()


def test_opening_a_fresh_file_waits_for_another_writer_instead_of_failing(sqlite_url: str,
                                                                         tmp_path: Path) -> None:
    """Another connection writes to a new (rollback-journal) file: switching it to WAL meets
    "database is locked" at once, without SQLite's busy handler (waiting could deadlock). The
    daemon's connect retries until the writer is done instead of failing the start."""
    import sqlite3
    import threading

    writer = sqlite3.connect(tmp_path / "mostro.db", isolation_level=None,
                             check_same_thread=False)
    writer.execute("CREATE TABLE early (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO early VALUES (1)")
    # the writer's transaction lasts a moment (what is tested), then commits
    done = threading.Timer(0.3, writer.execute, ("COMMIT",))
    done.start()
    try:
        database = storage.connect_database(sqlite_url)
        assert database.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert database.execute_sql("SELECT x FROM early").fetchall() == [(1,)]
        database.close()
    finally:
        done.join()
        writer.close()


def test_a_pending_take_is_found_by_index_not_by_scanning_a_status(sqlite_url: str) -> None:
    """The check every take makes reads the (identity, status) index of its side."""
    from storage import repository

    database = storage.open_database(sqlite_url)
    try:
        storage.migrate(database)
        for text, index in ((repository._PENDING_TAKE_AS_BUYER, "orders_master_buyer_pubkey_status"),
                            (repository._PENDING_TAKE_AS_SELLER,
                             "orders_master_seller_pubkey_status")):
            plan = " ".join(str(row[-1]) for row in database.execute_sql(
                f"EXPLAIN QUERY PLAN {text}", ("ab" * 32, "waiting-payment")).fetchall())
            assert index in plan, plan
    finally:
        database.close()
