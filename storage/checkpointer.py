"""Copies SQLite's write-ahead log into the database file from a thread of its own.

By default the connection whose COMMIT takes the log past 1,000 pages copies it back then and
there (an automatic checkpoint: every page written again, two fsyncs). On simpleSystemBase that
connection is the actors' thread's: in benchmark (2) one group commit in six checkpointed, 5–7 ms
each, half of all the thread's COMMIT time, and the actors waited out the fsyncs. The daemon
instead runs this checkpointer (`Daemon.start`): every `interval` seconds it checkpoints PASSIVE
on a connection of its own (never waiting for a writer or a reader, so it holds nobody up), and
SQLite does the copying and the fsyncs without the interpreter lock.

The daemon's connections keep an automatic checkpoint, far later (`BACKSTOP_PAGES`,
`storage.database`), for when no checkpointer runs: a tool writing while the daemon is down, or
this thread failing. A checkpoint that fails is logged once (until one succeeds again) and tried
again at the next interval; nothing is lost by a late checkpoint, the log only grows meanwhile.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import weakref
from typing import NamedTuple
from urllib.parse import quote

from storage.url import SqliteLocation, parse_database_url

log = logging.getLogger(__name__)

# A checkpoint writes each page the log holds once, however often it changed since the last one:
# at 0.5 s the thread used half the CPU it did at 0.1 s in benchmark (2) (35-40 against 74-80 ms
# per 3,000 requests), and the log stays under ~6,000 pages at that write rate (the backstop,
# `storage.database.BACKSTOP_PAGES`, is 10,000)
DEFAULT_INTERVAL = 0.5


# Checkpointers with an open connection, and the connections a forked child inherited: never used,
# never closed (closed in a child, SQLite could take it for the file's last connection and
# checkpoint or delete the log under the parent), only kept from the GC.
_connected: weakref.WeakSet[WalCheckpointer] = weakref.WeakSet()
_inherited_connections: list[sqlite3.Connection] = []


def _forget_in_child() -> None:
    for checkpointer in list(_connected):
        connection, checkpointer._connection = checkpointer._connection, None
        if connection is not None:
            _inherited_connections.append(connection)
        checkpointer._thread = None  # its thread stayed in the parent


os.register_at_fork(after_in_child=_forget_in_child)


class CheckpointResult(NamedTuple):
    """`PRAGMA wal_checkpoint`'s answer: busy is 1 when a lock stopped it part way."""

    busy: int
    log_pages: int
    checkpointed_pages: int


class WalCheckpointer:
    """See the module docstring. `start` and `stop` are for one owner's thread."""

    def __init__(self, path: str, interval: float = DEFAULT_INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None
        self._failing = False
        self.last: CheckpointResult | None = None  # the latest successful checkpoint's answer

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread unless it runs (a daemon restart calls it again)."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpointer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """End the thread after a last checkpoint of what is committed."""
        thread, self._thread = self._thread, None
        if thread is None:
            self._close()  # only `checkpoint()` was called: its connection is ours to close
            return
        self._stop.set()
        thread.join(timeout)

    def checkpoint(self) -> CheckpointResult | None:
        """One PASSIVE checkpoint now; None when it failed (logged)."""
        try:
            if self._connection is None:
                # a URI with mode=rw: a wrong path must not leave an empty database behind (one
                # leading "/": "//" would start the URI's authority, and POSIX keeps a "//");
                # autocommit, and no lock waits (PASSIVE does not use the busy handler)
                absolute = "/" + os.path.abspath(self.path).lstrip("/")
                uri = f"file:{quote(absolute)}?mode=rw"
                self._connection = sqlite3.connect(
                    uri, uri=True, isolation_level=None, check_same_thread=False)
                _connected.add(self)
            row = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as error:
            if not self._failing:
                log.warning("WAL checkpoint of %s failed (%s); trying again every %.1f s",
                            self.path, error, self.interval)
            self._failing = True
            self._close()
            return None
        if self._failing:
            log.info("WAL checkpoint of %s works again", self.path)
        self._failing = False
        self.last = CheckpointResult(*row)
        return self.last

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.checkpoint()
            self.checkpoint()
        finally:
            self._close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def checkpointer_for(url: str, interval: float = DEFAULT_INTERVAL) -> WalCheckpointer | None:
    """The checkpointer of a SQLite database file; None for PostgreSQL and in-memory SQLite."""
    location = parse_database_url(url)
    if not isinstance(location, SqliteLocation) or location.path == ":memory:":
        return None
    return WalCheckpointer(location.path, interval)
