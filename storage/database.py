"""Opens the database named by a URL and binds it to the proxy every model uses.

SQLite (the default) is opened in WAL mode with a busy timeout and foreign
keys on, and every transaction starts `BEGIN IMMEDIATE`: several actor
processes write to the same file, and taking the write lock up front turns
a would-be deadlock between two upgrading readers into a short wait.
PostgreSQL is opened by URL for multi-host setups: autocommit outside
transactions, READ COMMITTED inside them (rows several orders share are
locked by `storage.repository.lock_user`), and a connection the server
dropped is replaced on the next statement.

This module knows no tables; models and migrations do.
"""

from __future__ import annotations

import os
import sqlite3
import time

import peewee

from storage.url import PostgresLocation, SqliteLocation, parse_database_url

# How long a SQLite writer waits for another process's lock before failing.
BUSY_TIMEOUT_MS = 5000
# A connection's COMMIT checkpoints the WAL itself only past this many pages (~40 MB; SQLite's
# default is 1,000): the running daemon's `storage.checkpointer` copies it back long before,
# off the writers' threads. This is the backstop for when none runs.
BACKSTOP_PAGES = 10_000

database_proxy = peewee.DatabaseProxy()

# Connections a forked child inherited: never used, never closed (closing one from the
# child could release or checkpoint what belongs to the parent), only kept from the GC.
_inherited_connections: list[object] = []


def _forget_connection_in_child() -> None:
    """A forked process (every thespian multiprocess actor) opens its own connection.

    SQLite forbids carrying an open connection across ``fork()``: the parent's lock
    and WAL state would be shared by two processes. Peewee reconnects lazily, so
    dropping the inherited state is enough; the database stays bound to the proxy.
    """
    database = database_proxy.obj
    if database is None:
        return
    state = database._state
    if state.conn is not None:
        _inherited_connections.append(state.conn)
    state.reset()


os.register_at_fork(after_in_child=_forget_connection_in_child)


class ReconnectingPostgresqlDatabase(peewee.PostgresqlDatabase):
    """PostgreSQL that replaces a connection the server dropped (restart, failover, idle kill).

    The statement that meets the dead connection fails as usual (an
    OperationalError, which the order actor retries); nothing is retried
    behind the caller's back except `BEGIN`, which has done nothing yet.
    After that, the next statement outside a transaction gets a new
    connection instead of failing forever on the old one. The rollback of a
    transaction whose session died runs on the new connection, where it is a
    no-op: the server already rolled the dead session back.
    """

    def _connection_lost(self) -> bool:
        state = self._state
        return not state.closed and bool(getattr(state.conn, "closed", 0))

    def cursor(self, named_cursor=None):  # type: ignore[no-untyped-def]
        if self._connection_lost() and not self.in_transaction():
            self._state.reset()  # libpq already closed it; peewee reconnects lazily
        return super().cursor(named_cursor)

    def begin(self, isolation_level=None):  # type: ignore[no-untyped-def]
        try:
            super().begin(isolation_level)
        except (peewee.OperationalError, peewee.InterfaceError):
            if not self._connection_lost():
                raise
            self._state.reset()
            super().begin(isolation_level)


class WalSqliteDatabase(peewee.SqliteDatabase):
    """SQLite whose connect waits out a lock met while applying the pragmas.

    Switching a fresh file to WAL needs the file to itself, and SQLite answers "database is
    locked" at once, without its busy handler, when waiting could deadlock: two processes
    opening a new database together (the supervisor and a tool at first start, the concurrent
    migrations test) then failed. The pragmas are retried for up to the busy timeout.
    """

    def _connect(self) -> sqlite3.Connection:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        delay = 0.005
        while True:
            try:
                return super()._connect()  # closes its connection if a pragma fails
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)  # another process holds the file for a moment: retry
            delay = min(delay * 2, 0.1)


class DatabaseUrlError(ValueError):
    """The URL cannot name a database (settings validation should have caught it)."""


def connect_database(url: str) -> peewee.Database:
    """A peewee database for `url`, not bound to the models' proxy."""
    location = parse_database_url(url)
    if isinstance(location, str):
        raise DatabaseUrlError(location)
    if isinstance(location, SqliteLocation):
        return WalSqliteDatabase(
            location.path,
            pragmas={
                "journal_mode": "wal",
                "busy_timeout": BUSY_TIMEOUT_MS,
                "foreign_keys": 1,
                "synchronous": "normal",
                "wal_autocheckpoint": BACKSTOP_PAGES,
            },
            lock_type="IMMEDIATE",
        )
    assert isinstance(location, PostgresLocation)
    return ReconnectingPostgresqlDatabase(
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
