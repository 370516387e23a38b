"""Every process of the multiprocess daemon talks to SQLite through its own connection.

Thespian's multiprocess bases fork each actor from its parent (the test
process → admin → directory → order actors), and the parent has usually
used the database already. SQLite forbids carrying an open connection
across ``fork()``; the storage layer drops the inherited one in the child,
so the child's first query opens a fresh connection. Checked with a real
fork and a real database file.
"""

from __future__ import annotations

import os
from pathlib import Path

from storage import database_proxy, migrate, open_database


def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'fork.db'}")
    migrate(database)
    parent_connection = database.connection()
    database.execute_sql("select 1")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running pytest's teardown
        verdict = b"?"
        try:
            inherited = database_proxy.obj._state.conn
            own = database.connection()
            own.execute("select count(*) from sqlite_master").fetchone()
            verdict = b"ok" if inherited is None and own is not parent_connection else b"shared"
        except BaseException:  # any failure is the verdict
            verdict = b"error"
        finally:
            os.write(write_fd, verdict)
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        verdict = pipe.read()
    os.waitpid(pid, 0)
    assert verdict == b"ok"
    assert database.connection() is parent_connection  # the parent keeps its own
    database.execute_sql("select 1")
