"""Benchmark (2)'s journal gate (bench/journal_gate.py): a child process that answers the
journal's newest id, now or once it reaches a target, and gives up with a TimeoutError."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from bench.journal_gate import JournalGate


def _journal(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = wal")
    connection.execute('CREATE TABLE "journal" ("id" INTEGER PRIMARY KEY, "decision" TEXT)')
    return connection


def test_newest_now_and_once_reached(tmp_path: Path) -> None:
    connection = _journal(tmp_path / "db.sqlite")
    gate = JournalGate(str(tmp_path / "db.sqlite"))
    try:
        assert gate.newest() == 0
        connection.execute('INSERT INTO "journal" ("decision") VALUES (?)', ("a",))
        assert gate.newest() == 1

        def commit_more() -> None:
            for n in range(5):
                connection.execute('INSERT INTO "journal" ("decision") VALUES (?)', (str(n),))

        writer = threading.Thread(target=commit_more)
        writer.start()
        assert gate.wait_for(6, timeout=10) == 6  # answered only once the sixth row committed
        writer.join()
        assert gate.wait_for(3, timeout=10) == 6  # a target already passed: at once
    finally:
        gate.close()
        connection.close()


def test_a_target_never_reached_times_out(tmp_path: Path) -> None:
    connection = _journal(tmp_path / "db.sqlite")
    gate = JournalGate(str(tmp_path / "db.sqlite"))
    try:
        with pytest.raises(TimeoutError):
            gate.wait_for(1, timeout=0.2)
    finally:
        gate.close()
        connection.close()
