"""Opens the database named by a URL and binds it to the proxy every model uses.

SQLite (the default) is opened in WAL mode with a busy timeout and foreign
keys on, and every transaction starts `BEGIN IMMEDIATE`: several actor
processes write to the same file, and taking the write lock up front turns
a would-be deadlock between two upgrading readers into a short wait.
PostgreSQL is opened by URL for multi-host setups.

This module knows no tables; models and migrations do.
"""

from __future__ import annotations

import peewee

from storage.url import PostgresLocation, SqliteLocation, parse_database_url

# How long a SQLite writer waits for another process's lock before failing.
BUSY_TIMEOUT_MS = 5000

database_proxy = peewee.DatabaseProxy()


class DatabaseUrlError(ValueError):
    """The URL cannot name a database (settings validation should have caught it)."""


def connect_database(url: str) -> peewee.Database:
    """A peewee database for `url`, not bound to the models' proxy."""
    location = parse_database_url(url)
    if isinstance(location, str):
        raise DatabaseUrlError(location)
    if isinstance(location, SqliteLocation):
        return peewee.SqliteDatabase(
            location.path,
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": BUSY_TIMEOUT_MS,
                "foreign_keys": 1,
                "synchronous": "normal",
            },
            lock_type="IMMEDIATE",
        )
    assert isinstance(location, PostgresLocation)
    return peewee.PostgresqlDatabase(
        location.database,
        user=location.user,
        password=location.password,
        host=location.host,
        port=location.port,
    )


def open_database(url: str) -> peewee.Database:
    """Open `url` and make it the database of every model (`database_proxy`)."""
    database = connect_database(url)
    database_proxy.initialize(database)
    return database


def is_sqlite(database: peewee.Database) -> bool:
    return isinstance(database, peewee.SqliteDatabase)
