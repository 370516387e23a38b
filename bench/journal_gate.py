"""Benchmark (2)'s gate: watches the journal's newest row id from a process of its own.

Benchmark (2) releases a chunk of requests once the decisions of an earlier one are committed,
polling the journal every few milliseconds. On simpleSystemBase the daemon runs in the
benchmark's process, so polling there took the interpreter lock from the actors' thread, which
waits out every millisecond another thread of its process runs. Here the polling runs in a child
(plain sqlite3 on the daemon's SQLite file), and the benchmark's thread blocks on a pipe.

Protocol, one line each way: `?` answers the newest id now; a number N answers the newest id
once it is at least N. Run as `python -m bench.journal_gate DB_PATH`; it prints `ready` first.
"""

from __future__ import annotations

import select
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence

POLL_S = 0.002  # the gate's polling interval (its own process: costs the daemon nothing)
_NEWEST = 'SELECT MAX("id") FROM "journal"'


class JournalGate:
    """The benchmark's side: a child watching `db_path`; `close()` ends it."""

    def __init__(self, db_path: str) -> None:
        self._child = subprocess.Popen(
            [sys.executable, "-m", __name__, db_path], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1)
        if self._answer(30.0) != "ready":
            self.close()
            raise RuntimeError("the journal gate did not start")

    def newest(self) -> int:
        return self._ask("?", 30.0)

    def wait_for(self, at_least: int, timeout: float) -> int:
        """The newest id once it is at least `at_least`; TimeoutError after `timeout` s."""
        return self._ask(str(at_least), timeout)

    def close(self) -> None:
        if self._child.poll() is None:
            self._child.kill()
        self._child.wait()
        for stream in (self._child.stdin, self._child.stdout):
            if stream is not None:
                stream.close()

    def _ask(self, line: str, timeout: float) -> int:
        assert self._child.stdin is not None
        self._child.stdin.write(line + "\n")
        self._child.stdin.flush()
        return int(self._answer(timeout))

    def _answer(self, timeout: float) -> str:
        assert self._child.stdout is not None
        ready, _, _ = select.select([self._child.stdout], [], [], timeout)
        if not ready:
            self.close()  # an unanswered question would garble the next answer
            raise TimeoutError(f"the journal did not advance within {timeout} s")
        return self._child.stdout.readline().strip()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    connection = sqlite3.connect(args[0], isolation_level=None)
    connection.execute("PRAGMA busy_timeout = 5000")
    print("ready", flush=True)
    for line in sys.stdin:
        target = None if line.strip() == "?" else int(line)
        while True:
            newest = connection.execute(_NEWEST).fetchone()[0] or 0
            if target is None or newest >= target:
                break
            time.sleep(POLL_S)
        print(newest, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
