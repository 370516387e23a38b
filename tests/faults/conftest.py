"""Fault tests' harness: the daemon as a real `mostro-py run` subprocess that can be SIGKILLed.

``fault_stack`` starts a real relay and the LND simulator (the shared fixtures;
the simulator runs in the test process and the daemon reaches it over gRPC),
writes a settings file (multiprocTCPBase on a free admin port, SQLite in
tmp_path) and gives a ``FaultStack``: ``.daemon`` (``DaemonProcess``: start,
kill -9 of every process of the daemon, graceful stop), ``.client(name)``,
``.wallet(i)``, and read-only views of the outcome (``order_row``, ``bonds``,
``held_invoices`` at the simulator).

Killing a multiprocTCPBase daemon: thespian's admin daemonizes (setsid and a
double fork), so the admin and every actor live in a session of their own, not
in the supervisor's process group. ``DaemonProcess.kill`` therefore kills the
supervisor's group *and* the session of whatever listens on the admin port,
then waits until no process is left and the port is closed;
``kill_supervisor_group`` kills the supervisor's group alone (the orphan case).

Waits poll a condition with a timeout (the daemon's log line, the admin port,
a client's inbox); nothing sleeps to synchronise. This module must not reach
into the daemon's actors: it only runs the process, reads its database file
and its log, and talks the public protocol.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from adapters.lnd.sim.wallet import Wallet
from adapters.nostr.client import MostroClient
from adapters.nostr.local_relay import free_port, port_is_open
from adapters.nostr.protocol.enums import Transport
from config.examples import EXAMPLE_NSEC, EXAMPLE_PUBKEY_HEX
from tests.conftest import wait_until as shared_wait_until
from tests.fixtures.lnsim import LnSimHandle
from tests.fixtures.relay import RelayProcess

REPO = Path(__file__).resolve().parents[2]
MOSTRO_PY = REPO / ".venv" / "bin" / "mostro-py"
READY_LINE = "daemon running"  # logged by the supervisor once intake is open
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
STEP_TIMEOUT = 20.0

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float = STEP_TIMEOUT,
               what: str = "condition", interval: float = 0.02) -> T:
    """tests.conftest.wait_until with the fault tests' step timeout."""
    return shared_wait_until(condition, timeout, what, interval=interval)


# ---------------------------------------------------------------- settings file
def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def settings_toml(sections: dict[str, dict[str, Any]]) -> str:
    lines = ["# written by tests/faults/conftest.py"]
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"


def fault_sections(tmp_path: Path, relay_url: str, lnsim: LnSimHandle, admin_port: int,
                   **overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    node = lnsim.mostro
    sections: dict[str, dict[str, Any]] = {
        "mostro": {"fee": 0.006, "fiat_currencies_accepted": ["USD", "EUR"]},
        "lightning": {"lnd_grpc_host": node.address, "lnd_cert_file": str(node.tls_cert_path),
                      "lnd_macaroon_file": str(node.macaroon_path), "network": "regtest"},
        "nostr": {"nsec_privkey": EXAMPLE_NSEC, "relays": [relay_url]},
        "database": {"url": f"sqlite:///{tmp_path / 'mostro.db'}"},
        "price": {"fixed": {"USD": 100_000.0, "EUR": 90_000.0}},
        "actors": {"base": "multiprocTCPBase", "admin_port": admin_port},
        "logging": {"level": "INFO"},
    }
    for name, values in overrides.items():
        sections[name] = {**sections.get(name, {}), **values}
    return sections


# ---------------------------------------------------------------- the daemon process
def listening_pids(port: int) -> set[int]:
    """Processes holding a socket that listens on `port` (thespian's admin and its logger)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    if not inodes:
        return set()
    wanted = {f"socket:[{inode}]" for inode in inodes}
    pids: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (entry / "fd").iterdir()}
        except OSError:
            continue
        if links & wanted:
            pids.add(int(entry.name))
    return pids


def session_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def session_pids(sid: int) -> list[int]:
    """Every live process in session `sid`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields_after_name = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # state ppid pgrp session ...; a zombie is dead for our purpose
        if int(fields_after_name[3]) == sid and fields_after_name[0] != "Z":
            pids.append(int(entry.name))
    return pids


class DaemonProcess:
    """`mostro-py run --config FILE` in its own session, its log collected into a file."""

    def __init__(self, settings_path: Path, admin_port: int, log_path: Path) -> None:
        self.settings_path = settings_path
        self.admin_port = admin_port
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None
        self.starts = 0
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def spawn(self) -> subprocess.Popen[str]:
        """Start the process without waiting for it to be ready."""
        assert self.process is None or self.process.poll() is not None, "already running"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("MOSTRO_NSEC_PRIVKEY", None)
        env.pop("MOSTRO_DATABASE_URL", None)
        with self._changed:
            self._lines.append(f"=== start {self.starts + 1}\n")
        self.process = subprocess.Popen(
            [str(MOSTRO_PY), "run", "--config", str(self.settings_path)],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.starts += 1
        self._reader = threading.Thread(target=self._read, args=(self.process,), daemon=True,
                                        name="daemon-log")
        self._reader.start()
        return self.process

    def start(self, timeout: float = START_TIMEOUT) -> DaemonProcess:
        """Start and wait for the supervisor's "daemon running" line (intake is open then)."""
        mark = self.log_size()
        process = self.spawn()
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(READY_LINE in line for line in self._lines[mark:]):
                if process.poll() is not None and not self._reader_alive():
                    raise RuntimeError(f"the daemon exited with {process.returncode} before it "
                                       f"was ready:\n{self.log_tail()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the daemon was not ready in {timeout} s:\n"
                                       f"{self.log_tail()}")
                self._changed.wait(min(remaining, 0.2))
        return self

    def kill_supervisor_group(self) -> None:
        """SIGKILL the supervisor's process group only (what `kill -9 -PGID` does); thespian's
        admin and actors are in their own session and survive it."""
        process = self.process
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(STOP_TIMEOUT)
        wait_until(lambda: not session_pids(process.pid), STOP_TIMEOUT, "supervisor group gone")

    def kill(self) -> None:
        """SIGKILL the supervisor's group, thespian's admin and every actor of this daemon
        (all at once, as a power cut would); wait until all are gone and the admin port is
        closed."""
        process = self.process
        if process is None:
            return
        # thespian's admin daemonizes (setsid + double fork): the admin and every actor live
        # in a session of their own, found through the admin port it listens on.
        sessions = {process.pid}
        sessions |= {sid for pid in listening_pids(self.admin_port)
                     if (sid := session_of(pid)) is not None}

        def kill_all() -> bool:
            for pid in listening_pids(self.admin_port):
                sid = session_of(pid)
                if sid is not None:
                    sessions.add(sid)
            left = [pid for sid in sessions for pid in session_pids(sid)]
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return not left and not port_is_open(self.admin_port)

        wait_until(kill_all, STOP_TIMEOUT, "every daemon process gone, admin port closed")
        process.wait(STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM (graceful stop); SIGKILL of the session if it takes longer than `timeout`."""
        process = self.process
        if process is None or process.poll() is not None:
            if process is not None:
                self.kill()  # leftovers in its session, if any
            return None if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        code = process.returncode
        self.kill()
        return code

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    # ------------------------------------------------------------ log
    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with open(self.log_path, "a") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def _reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def log_size(self) -> int:
        with self._changed:
            return len(self._lines)

    def log_lines(self, since: int = 0) -> list[str]:
        with self._changed:
            return list(self._lines[since:])

    def log_tail(self, count: int = 40) -> str:
        return "".join(self.log_lines()[-count:])


# ---------------------------------------------------------------- the whole stack
@dataclass
class FaultStack:
    daemon: DaemonProcess
    relay: RelayProcess
    lnsim: LnSimHandle
    database_path: Path
    transport: Transport = Transport.NIP44
    clients: list[MostroClient] = field(default_factory=list)
    wallets: list[Wallet] = field(default_factory=list)

    node_pubkey: str = EXAMPLE_PUBKEY_HEX

    def client(self, name: str) -> MostroClient:
        client = MostroClient(name, (self.relay.url,), self.node_pubkey, self.transport).connect()
        self.clients.append(client)
        return client

    def wallet(self, index: int) -> Wallet:
        wallet = Wallet.of(self.lnsim.wallets[index])
        self.wallets.append(wallet)
        return wallet

    def wallet_name(self, index: int) -> str:
        return self.lnsim.sim.wallet_names[index]

    def balance_sat(self, index: int) -> int:
        return self.lnsim.sim.balance_msat(self.wallet_name(index)) // 1000

    def restart_daemon(self) -> None:
        """Kill -9 the daemon's whole process group and start it again on the same database."""
        self.daemon.kill()
        self.daemon.start()

    # ------------------------------------------------------------ outcome (read-only)
    def query(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        connection = sqlite3.connect(self.database_path, timeout=10.0)
        connection.row_factory = sqlite3.Row
        try:
            return list(connection.execute(sql, args))
        finally:
            connection.close()

    def order_row(self, order_id: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM orders WHERE id = ?", order_id)
        return rows[0] if rows else None

    def order_status(self, order_id: str) -> str | None:
        row = self.order_row(order_id)
        return None if row is None else str(row["status"])

    def bonds(self, order_id: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM bonds WHERE order_id = ? ORDER BY created_at", order_id)

    def undone_effects(self) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM outbox WHERE done_at IS NULL")

    def invoices(self) -> list[dict[str, Any]]:
        """Every invoice the simulated network knows (state, node, hash, held HTLC)."""
        return list(self.lnsim.sim.ledger.to_json()["invoices"])

    def held_invoices(self) -> list[dict[str, Any]]:
        """Invoices whose HTLC is still held (ACCEPTED): money nobody can use."""
        return [i for i in self.invoices() if i["state"] == "ACCEPTED"]

    def invoice_state(self, payment_hash: str) -> str | None:
        for invoice in self.invoices():
            if invoice["r_hash"] == payment_hash:
                return str(invoice["state"])
        return None

    def payments_to(self, payment_hash: str) -> list[dict[str, Any]]:
        return [p for p in self.lnsim.sim.ledger.to_json()["payments"]
                if p["payment_hash"] == payment_hash]


@pytest.fixture
def fault_stack_factory(tmp_path: Path, relay: RelayProcess,
                        lnsim_factory: Callable[..., LnSimHandle]
                        ) -> Iterator[Callable[..., FaultStack]]:
    """``start(wallets=2, start=True, **setting_overrides)``: a FaultStack (daemon started)."""
    stacks: list[FaultStack] = []

    def start(wallets: int = 2, start: bool = True, **overrides: dict[str, Any]) -> FaultStack:
        lnsim = lnsim_factory(wallets=wallets)
        admin_port = free_port()
        sections = fault_sections(tmp_path, relay.url, lnsim, admin_port, **overrides)
        settings_path = tmp_path / "settings.toml"
        settings_path.write_text(settings_toml(sections))
        daemon = DaemonProcess(settings_path, admin_port, tmp_path / "daemon.log")
        stack = FaultStack(daemon, relay, lnsim, tmp_path / "mostro.db",
                           Transport(sections["mostro"].get("transport", "nip44")))
        stacks.append(stack)
        if start:
            daemon.start()
        return stack

    yield start
    for stack in stacks:
        stack.daemon.kill()  # a graceful stop is not under test here, and costs seconds
        for client in stack.clients:
            client.close()
        for wallet in stack.wallets:
            wallet.close()


@pytest.fixture
def fault_stack(fault_stack_factory: Callable[..., FaultStack]) -> FaultStack:
    return fault_stack_factory()
