"""PostgreSQL sessions the server ends (restart, failover, an operator's pg_terminate_backend).

A dropped connection must never wedge a process: the failing statement raises
OperationalError (the order actor's "retry later"), a transaction that lost
its session commits nothing, and the next use gets a fresh connection.
"""

from __future__ import annotations

from collections.abc import Iterator

import peewee
import pytest

import storage
from storage import repository
from storage.url import parse_database_url
from tests.fixtures.postgres import PostgresServer


@pytest.fixture
def pg(postgres_server: PostgresServer, postgres_migrated_url: str) -> Iterator[peewee.Database]:
    database = storage.open_database(postgres_migrated_url)
    database.execute_sql("SELECT 1")  # a live session to be ended
    yield database
    database.close()


def _end_sessions(server: PostgresServer, url: str) -> None:
    name = parse_database_url(url).database  # type: ignore[union-attr]
    server.execute_admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


def test_a_transaction_after_the_session_ended_just_works(
    pg: peewee.Database, postgres_server: PostgresServer, postgres_migrated_url: str, rows: dict,
) -> None:
    _end_sessions(postgres_server, postgres_migrated_url)
    with storage.write_transaction():  # BEGIN meets the dead connection, and is retried
        repository.upsert_order(rows["order"])
    assert repository.find_order(rows["order"]["id"]) is not None


def test_a_statement_on_the_dead_session_fails_retryably_then_reconnects(
    pg: peewee.Database, postgres_server: PostgresServer, postgres_migrated_url: str, rows: dict,
) -> None:
    _end_sessions(postgres_server, postgres_migrated_url)
    with pytest.raises(peewee.OperationalError):
        repository.find_order(rows["order"]["id"])
    assert repository.find_order(rows["order"]["id"]) is None  # a new session answers


def test_a_transaction_that_lost_its_session_commits_nothing(
    pg: peewee.Database, postgres_server: PostgresServer, postgres_migrated_url: str, rows: dict,
) -> None:
    with pytest.raises(peewee.OperationalError):  # not InterfaceError: the actor retries it
        with storage.write_transaction():
            repository.upsert_order(rows["order"])
            _end_sessions(postgres_server, postgres_migrated_url)
            repository.upsert_bond(rows["bond"])
    assert repository.find_order(rows["order"]["id"]) is None
    with storage.write_transaction():  # the retry of the whole decision succeeds
        repository.upsert_order(rows["order"])
        repository.upsert_bond(rows["bond"])
    assert repository.find_bond(rows["bond"]["id"]).created_seq == rows["bond"]["created_seq"]
