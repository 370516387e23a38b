"""The order actor's storage path on both backends: same decisions, same rows; parallel writers lose nothing.

The decisions are real (`decide` + `order_store.commit_decision`, driven by
decision_driver.py from data/decision_runs.json). Entropy is derived from the
run, so SQLite and PostgreSQL must end with byte-identical orders, bonds,
users, journal and outbox. Then several processes commit decisions for
different orders of the same users at once: every order completes, every
rating counts, and no lock or deadlock error escapes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import storage
from actors.order_logic.rating import RatingTotals, fold_rating
from storage import models
from tests.fixtures.postgres import PostgresServer

from .decision_driver import DecisionRun, load_runs

REPO = Path(__file__).resolve().parents[2]
RUNS = load_runs()
RUN_NAMES = [run["name"] for run in RUNS["runs"]]


def _dump() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, by primary key."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for model in models.ALL_MODELS:
        rows = model.select().order_by(model._meta.primary_key).dicts()
        tables[model._meta.table_name] = list(rows)
    return tables


def _play_on(url: str, index: int) -> tuple[list[str], dict[str, list[dict[str, Any]]]]:
    database = storage.open_database(url)
    try:
        result = DecisionRun(RUNS, index).play()
        return result.statuses, _dump()
    finally:
        database.close()


@pytest.mark.parametrize("index", range(len(RUN_NAMES)), ids=RUN_NAMES)
def test_the_same_decisions_store_the_same_rows_on_both_backends(
    index: int, sqlite_url: str, postgres_migrated_url: str,
) -> None:
    database = storage.connect_database(sqlite_url)
    storage.migrate(database)
    database.close()
    sqlite_statuses, on_sqlite = _play_on(sqlite_url, index)
    postgres_statuses, on_postgres = _play_on(postgres_migrated_url, index)

    assert sqlite_statuses == postgres_statuses == [s["expect"] for s in RUNS["runs"][index]["steps"]]
    # something real was written: a journal entry per decision, effects, rated users
    assert len(on_sqlite["journal"]) >= len(RUNS["runs"][index]["steps"])
    assert on_sqlite["outbox"] and on_sqlite["users"]
    assert any(user["total_reviews"] for user in on_sqlite["users"])
    for table in on_sqlite:
        assert on_postgres[table] == on_sqlite[table], table


def test_bonds_come_back_in_creation_order_on_both_backends(
    sqlite_url: str, postgres_migrated_url: str,
) -> None:
    """Four bonds made in one second: a re-loaded order lists them as they were made, not by uuid."""
    from actors import order_store

    race = RUN_NAMES.index("four takers race for the bond in one second, the last one pays first")
    database = storage.connect_database(sqlite_url)
    storage.migrate(database)
    database.close()
    takers = [RUNS["parties"][f"T{n}"]["trade"] for n in range(1, 5)]
    for url in (sqlite_url, postgres_migrated_url):
        database = storage.open_database(url)
        try:
            run = DecisionRun(RUNS, race)
            run.play()
            state = order_store.load_state(run.order_id)
            assert state is not None
            assert [bond.pubkey for bond in state.bonds] == takers, url.split(":")[0]
            assert len({bond.created_at for bond in state.bonds}) == 1  # a tie on created_at
            assert sorted(b.id for b in state.bonds) != [b.id for b in state.bonds]  # uuid order differs
        finally:
            database.close()


COPIES_PER_WRITER = 4
WRITERS = 3


def _assert_parallel_runs_complete(database_url: str) -> None:
    run = RUNS["runs"][0]
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.storage.decision_driver", database_url, "0",
             str(COPIES_PER_WRITER), f"writer{w}"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for w in range(WRITERS)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=90)
        assert writer.returncode == 0, err
        assert "deadlock" not in err.lower() and "locked" not in err.lower(), err
    orders = WRITERS * COPIES_PER_WRITER
    database = storage.open_database(database_url)
    try:
        statuses = [row.status for row in models.Order.select()]
        assert statuses == ["success"] * orders
        per_order_journal = {
            row.order_id: [] for row in models.JournalEntry.select(models.JournalEntry.order_id)
        }
        for entry in models.JournalEntry.select().order_by(models.JournalEntry.seq):
            per_order_journal[entry.order_id].append(entry.seq)
        assert len(per_order_journal) == orders
        lengths = {len(seqs) for seqs in per_order_journal.values()}
        assert len(lengths) == 1  # identical runs: identical journals
        assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in per_order_journal.values())
        per_order_outbox = {}
        for effect in models.OutboxEffect.select():
            per_order_outbox[effect.order_id] = per_order_outbox.get(effect.order_id, 0) + 1
        assert len(per_order_outbox) == orders and len(set(per_order_outbox.values())) == 1
        # every order's two ratings landed on the shared user rows: no update was lost
        users = {user.pubkey: user for user in models.User.select()}
        seller = users[RUNS["parties"]["seller"]["identity"]]
        buyer = users[RUNS["parties"]["buyer2"]["identity"]]
        ratings = {s["from"]: s["rating"] for s in run["steps"] if s.get("request") == "rate-user"}
        assert (seller.total_reviews, seller.last_rating) == (orders, ratings["buyer2"])
        assert (buyer.total_reviews, buyer.last_rating) == (orders, ratings["seller"])
        expected = RatingTotals(0, 0.0, 0, 0, 0)
        for _ in range(orders):
            expected = fold_rating(expected, ratings["buyer2"])
        assert seller.total_rating == pytest.approx(expected.total_rating)
        assert (seller.last_trade_index, buyer.last_trade_index) == (1, 3)
    finally:
        database.close()


def test_parallel_processes_commit_decisions_without_losing_any(migrated_url: str) -> None:
    _assert_parallel_runs_complete(migrated_url)


def test_fixture_gives_each_test_its_own_postgres_database(
    postgres_server: PostgresServer, postgres_migrated_url: str,
) -> None:
    other = postgres_server.migrated_database()
    try:
        assert postgres_server.url(other) != postgres_migrated_url
        database = storage.open_database(postgres_server.url(other))
        assert storage.migrate(database) == [] and models.Order.select().count() == 0
        database.close()
    finally:
        postgres_server.drop_database(other)
