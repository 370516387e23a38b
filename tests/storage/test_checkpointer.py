"""The WAL checkpointer: the daemon's connections leave the log to it, and it copies the log back
without holding anyone up."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

import pytest

import storage
from storage.checkpointer import WalCheckpointer, checkpointer_for
from storage.database import BACKSTOP_PAGES
from tests.conftest import wait_until

PAGE = 4096


def _write_pages(database, pages: int) -> None:
    """Commit about `pages` pages of new rows through a daemon-style connection."""
    database.execute_sql("CREATE TABLE IF NOT EXISTS filler (blob BLOB)")
    with database.atomic():
        for _ in range(pages):
            database.execute_sql("INSERT INTO filler VALUES (zeroblob(?))", (PAGE - 100,))


@pytest.fixture
def daemon_db(tmp_path: Path):
    database = storage.connect_database(f"sqlite:///{tmp_path / 'mostro.db'}")
    database.connect()
    yield database, tmp_path / "mostro.db"
    database.close()


def test_the_daemons_connections_leave_the_log_to_the_checkpointer(daemon_db) -> None:
    database, path = daemon_db
    (autocheckpoint,) = database.execute_sql("PRAGMA wal_autocheckpoint").fetchone()
    assert autocheckpoint == BACKSTOP_PAGES
    _write_pages(database, 1500)  # past SQLite's default of 1,000 pages
    assert path.stat().st_size < 100 * PAGE, "the commit checkpointed the log itself"

    checkpointer = WalCheckpointer(str(path), interval=0.01)
    checkpointer.start()
    try:
        wait_until(lambda: path.stat().st_size >= 1500 * PAGE, what="the log copied back")
        result = wait_until(lambda: checkpointer.last, what="a checkpoint's answer")
        assert result.busy == 0
        assert result.checkpointed_pages == result.log_pages > 0
    finally:
        checkpointer.stop()
    assert not checkpointer.running
    assert not [t for t in threading.enumerate() if t.name == "sqlite-checkpointer"]
    (count,) = database.execute_sql("SELECT count(*) FROM filler").fetchone()
    assert count == 1500


def test_a_checkpoint_copies_what_is_committed_while_a_writer_holds_its_lock(daemon_db) -> None:
    database, path = daemon_db
    _write_pages(database, 50)
    checkpointer = WalCheckpointer(str(path))
    with database.atomic():  # BEGIN IMMEDIATE: the write lock is held until the block ends
        database.execute_sql("INSERT INTO filler VALUES (zeroblob(?))", (PAGE - 100,))
        result = checkpointer.checkpoint()
        assert result is not None and result.busy == 0
        assert result.checkpointed_pages == result.log_pages > 0
    checkpointer.stop()
    (count,) = database.execute_sql("SELECT count(*) FROM filler").fetchone()
    assert count == 51


def test_a_missing_database_is_reported_once_and_never_created(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "nowhere" / "mostro.db"
    checkpointer = WalCheckpointer(str(path))
    with caplog.at_level(logging.WARNING, logger="storage.checkpointer"):
        assert checkpointer.checkpoint() is None
        assert checkpointer.checkpoint() is None
    assert not path.exists() and not path.parent.exists()
    warnings = [r for r in caplog.records if "checkpoint" in r.getMessage()]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()


def test_it_works_again_once_the_file_is_there(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "mostro.db"
    checkpointer = WalCheckpointer(str(path))
    assert checkpointer.checkpoint() is None
    database = storage.connect_database(f"sqlite:///{path}")
    _write_pages(database, 10)
    with caplog.at_level(logging.INFO, logger="storage.checkpointer"):
        result = checkpointer.checkpoint()
    assert result is not None and result.checkpointed_pages == result.log_pages > 0
    assert any("works again" in r.getMessage() for r in caplog.records)
    checkpointer.stop()
    database.close()


def test_a_path_with_a_leading_double_slash_is_the_same_file(tmp_path: Path) -> None:
    """`sqlite:////abs/path` parses to "//abs/path"; as a URI "//" would start an authority."""
    path = tmp_path / "mostro.db"
    database = storage.connect_database(f"sqlite:///{path}")
    _write_pages(database, 10)
    checkpointer = checkpointer_for(f"sqlite:///{path}")
    assert checkpointer is not None and checkpointer.path.startswith("//")
    result = checkpointer.checkpoint()
    assert result is not None and result.checkpointed_pages == result.log_pages > 0
    checkpointer.stop()
    database.close()


def test_a_forked_child_neither_uses_nor_closes_the_parents_connection(daemon_db) -> None:
    database, path = daemon_db
    _write_pages(database, 10)
    checkpointer = WalCheckpointer(str(path), interval=0.01)
    checkpointer.start()
    wait_until(lambda: checkpointer.last, what="a first checkpoint")
    pid = os.fork()
    if pid == 0:  # the child: nothing of the parent's checkpointer is left to run or close
        os._exit(0 if checkpointer._connection is None and not checkpointer.running else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert checkpointer.running
    _write_pages(database, 10)
    result = checkpointer.checkpoint()
    assert result is not None and result.checkpointed_pages == result.log_pages > 0
    checkpointer.stop()


def test_start_twice_runs_one_thread(tmp_path: Path) -> None:
    path = tmp_path / "mostro.db"
    sqlite3.connect(path).close()
    checkpointer = WalCheckpointer(str(path), interval=0.01)
    checkpointer.start()
    checkpointer.start()
    try:
        assert len([t for t in threading.enumerate() if t.name == "sqlite-checkpointer"]) == 1
    finally:
        checkpointer.stop()
    assert not checkpointer.running


@pytest.mark.parametrize(("url", "path"), [
    ("sqlite:///var/lib/mostro/mostro.db", "/var/lib/mostro/mostro.db"),
    ("sqlite://mostro.db", "mostro.db"),
    ("sqlite://:memory:", None),
    ("postgresql://mostro@db.example/mostro", None),
])
def test_only_a_sqlite_file_gets_a_checkpointer(url: str, path: str | None) -> None:
    checkpointer = checkpointer_for(url)
    assert (checkpointer.path if checkpointer else None) == path
