"""Fixtures for the storage tests: a migrated database per test on each backend, and sample rows.

`db` (and `database_url`) are parametrized over SQLite and PostgreSQL, so every test that takes
them runs on both; the PostgreSQL half comes from tests/fixtures/postgres.py (one throw-away
server per session, a fresh database per test) and is skipped, with the reason, where the server
binaries are missing. `sqlite_url` stays for the tests that are about SQLite itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

import storage
from tests.fixtures.postgres import (  # noqa: F401 (fixtures)
    postgres_migrated_url,
    postgres_server,
    postgres_url,
)

DATA = Path(__file__).resolve().parent / "data"
ROWS = json.loads((DATA / "rows.json").read_text())
BACKENDS = ("sqlite", "postgres")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mostro.db'}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """URL of an empty database of this test's own, on each backend in turn."""
    if request.param == "sqlite":
        return sqlite_url
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=BACKENDS)
def migrated_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """URL of a database of this test's own at the current schema, on each backend in turn."""
    if request.param == "sqlite":
        database = storage.connect_database(sqlite_url)
        storage.migrate(database)
        database.close()
        return sqlite_url
    return request.getfixturevalue("postgres_migrated_url")


@pytest.fixture
def db(migrated_url: str) -> Iterator[peewee.Database]:
    """The migrated database of this test, bound to the models (both backends)."""
    database = storage.open_database(migrated_url)
    yield database
    database.close()


@pytest.fixture
def rows() -> dict:
    """Fresh copies of the sample rows (tests may edit them)."""
    return json.loads(json.dumps(ROWS))
