"""Persistence: the database connection, the schema (models + versioned migrations) and every query.

Use `open_database(url)` once per process, `migrate(db)` on start, and the
functions of `storage.repository` for reads and writes; wrap the writes of
one decision in `write_transaction()`. Nothing outside this package writes
SQL.
"""

from __future__ import annotations

import peewee

from storage.database import (
    BUSY_TIMEOUT_MS,
    DatabaseUrlError,
    connect_database,
    database_proxy,
    open_database,
)
from storage.migrations import MIGRATIONS, migrate, schema_versions


def write_transaction() -> peewee._atomic:
    """One transaction on the bound database; nests as a savepoint.

    SQLite: `BEGIN IMMEDIATE`, so writers queue for the file's lock. PostgreSQL:
    READ COMMITTED, so decisions for different orders commit in parallel; a
    row several orders share is read with `repository.lock_user` (held until
    commit), never read-then-written unlocked.
    """
    return database_proxy.atomic()


__all__ = [
    "BUSY_TIMEOUT_MS",
    "MIGRATIONS",
    "DatabaseUrlError",
    "connect_database",
    "database_proxy",
    "migrate",
    "open_database",
    "schema_versions",
    "write_transaction",
]
