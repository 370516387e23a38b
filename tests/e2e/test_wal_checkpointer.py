"""The running daemon copies SQLite's log back from its own checkpointer thread, and stops it
with the daemon."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from adapters.nostr.protocol import Kind
from tests.conftest import wait_until
from tests.e2e.conftest import Stack
from tests.e2e.helpers import fixed_order, make_order


def _checkpointer_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "sqlite-checkpointer"]


def test_the_daemon_checkpoints_what_its_actors_commit(stack_factory: Callable[..., Stack],
                                                      tmp_path: Path) -> None:
    stack = stack_factory()
    daemon = stack.daemon
    checkpointer = daemon.checkpointer
    assert checkpointer is not None and checkpointer.running
    assert len(_checkpointer_threads()) == 1

    _, order_id = make_order(stack, stack.client("maker"), fixed_order(Kind.SELL, 50_000))
    assert order_id
    database_file = Path(checkpointer.path)

    def in_database_file() -> bool:
        """The order is in the database file itself, not only in its log: a copy of the file
        alone (no -wal beside it) has the row."""
        stack.pump()
        copy = tmp_path / "copy.db"
        shutil.copyfile(database_file, copy)
        try:
            with closing(sqlite3.connect(copy)) as connection:
                return connection.execute('SELECT 1 FROM orders WHERE id = ?',
                                          (order_id,)).fetchone() is not None
        except sqlite3.DatabaseError as error:
            if "malformed" in str(error) or "not a database" in str(error):
                return False  # copied half-way through a checkpoint's writes
            raise

    wait_until(in_database_file, timeout=10, what="the new order copied into the database file")
    daemon.stop()
    assert not checkpointer.running
    assert not _checkpointer_threads()
