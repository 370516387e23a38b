"""Two actor systems as an operator runs them: `mostro-py run` (leader) and `mostro-py run --join`.

``two_systems`` starts a real relay and the LND simulator (shared fixtures), a throw-away
PostgreSQL database (tests/fixtures/postgres.py), writes one settings file per host and
starts the leader, then the worker, each as its own `mostro-py` process in its own
session (tests/faults/conftest.py's ``DaemonProcess``: kill -9 of every process of a
host, found through its admin port). The outcome is read from PostgreSQL and from the
simulator, the placement of order actors from the processes of each host's session
(thespian names each actor process after its class).

Waits poll a log line or a condition with a timeout; nothing sleeps to synchronise.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.nostr.local_relay import free_port
from adapters.nostr.protocol.enums import Transport
from tests.faults.conftest import (
    MOSTRO_PY,
    REPO,
    DaemonProcess,
    FaultStack,
    fault_sections,
    listening_pids,
    session_of,
    session_pids,
    settings_toml,
    wait_until,
)
from tests.fixtures.lnsim import LnSimHandle
from tests.fixtures.postgres import postgres_migrated_url, postgres_server  # noqa: F401
from tests.fixtures.relay import RelayProcess

DATA = json.loads((Path(__file__).resolve().parent / "data" / "two_systems.json").read_text())
JOINED_LINE = "joined the convention"  # the worker, once the leader registered it
MEMBER_LINE = "convention member"  # the leader's directory, on a member joining or leaving


class WorkerProcess(DaemonProcess):
    """`mostro-py run --config FILE --join LEADER`: ready when it logs that it joined."""

    def __init__(self, settings_path: Path, admin_port: int, log_path: Path, leader: str) -> None:
        super().__init__(settings_path, admin_port, log_path)
        self.leader = leader

    def spawn(self) -> subprocess.Popen[str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [str(MOSTRO_PY), "run", "--config", str(self.settings_path), "--join", self.leader],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.starts += 1
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True,
                                        name="worker-log")
        self._reader.start()
        return self.process

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        mark = self.log_size()
        process = self.spawn()

        def joined() -> bool:
            if process.poll() is not None and not self._reader_alive():
                raise RuntimeError(f"the worker exited with {process.returncode}:\n{self.log_tail()}")
            return any(JOINED_LINE in line for line in self.log_lines(mark))

        wait_until(joined, timeout, "the worker joined the convention")
        return self


def actor_processes(admin_port: int, kind: str) -> list[int]:
    """Pids of `kind` actor processes in the session of the system on `admin_port`."""
    sessions = {sid for pid in listening_pids(admin_port) if (sid := session_of(pid)) is not None}
    found = []
    for sid in sessions:
        for pid in session_pids(sid):
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            except OSError:
                continue
            if title.split(" ")[0] == kind:
                found.append(pid)
    return found


@dataclass
class PostgresStack(FaultStack):
    """FaultStack reading the outcome from the shared PostgreSQL database instead of SQLite."""

    database_url: str = ""
    worker: WorkerProcess | None = None
    _connection: Any = field(default=None, repr=False)

    def query(self, sql: str, *args: Any) -> list[Any]:
        import psycopg2
        import psycopg2.extras

        if self._connection is None:
            self._connection = psycopg2.connect(self.database_url)
            self._connection.autocommit = True
        with self._connection.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cursor:
            cursor.execute(sql.replace("?", "%s"), args)
            return list(cursor.fetchall())

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@pytest.fixture
def two_systems(tmp_path: Path, relay: RelayProcess, lnsim_factory: Callable[..., LnSimHandle],
                postgres_migrated_url: str,  # noqa: F811 - the fixture imported above
                ) -> Iterator[PostgresStack]:
    lnsim = lnsim_factory(wallets=DATA["takers"] + 1)
    leader_port, worker_port = free_port(), free_port()
    checkin = DATA["member_checkin_seconds"]
    leader_sections = fault_sections(
        tmp_path, relay.url, lnsim, leader_port, **DATA["settings"],
        database={"url": postgres_migrated_url},
        actors={"member_checkin_seconds": checkin})
    # a worker's whole file: no LND credentials, no node key, no relays
    worker_sections: dict[str, dict[str, Any]] = {
        "database": {"url": postgres_migrated_url},
        "actors": {"base": "multiprocTCPBase", "admin_port": worker_port,
                   "member_checkin_seconds": checkin, "nostr": False, "lightning": False},
        "logging": {"level": "INFO"},
    }
    leader_path, worker_path = tmp_path / "leader.toml", tmp_path / "worker.toml"
    leader_path.write_text(settings_toml(leader_sections))
    worker_path.write_text(settings_toml(worker_sections))
    leader = DaemonProcess(leader_path, leader_port, tmp_path / "leader.log")
    worker = WorkerProcess(worker_path, worker_port, tmp_path / "worker.log",
                           f"127.0.0.1:{leader_port}")
    stack = PostgresStack(leader, relay, lnsim, tmp_path / "unused.db",
                          Transport(leader_sections["mostro"].get("transport", "nip44")),
                          database_url=postgres_migrated_url, worker=worker)
    try:
        leader.start()
        worker.start()
        # the directory places order actors on the worker once it has heard of it
        wait_until(lambda: any(MEMBER_LINE in line and "joined" in line
                               for line in leader.log_lines()), what="the leader saw the worker")
        yield stack
    finally:
        worker.kill()
        leader.kill()
        stack.close()
        for client in stack.clients:
            client.close()
        for wallet in stack.wallets:
            wallet.close()
