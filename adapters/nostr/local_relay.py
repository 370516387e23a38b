"""A local Nostr relay process for devnet and tests: the `nostr-relay` package from PyPI.

It writes the relay's configuration (relaxed for Mostro's traffic: back-dated
gift wraps, large NIP-44 payloads, no rate limits, no authentication), starts
`nostr-relay -c relay.yaml serve --use-uvicorn` in its own process group,
waits until it answers a REQ, and stops it (SIGTERM, then SIGKILL).

It must not know about Mostro's protocol or the daemon; it only runs relays.
The `nostr-relay` package is a test/devnet dependency, imported by no one here:
the relay is always a separate process found next to the running interpreter.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

RELAY_BINARY = Path(sys.executable).with_name("nostr-relay")
START_TIMEOUT = 20.0  # seconds; a cold start (imports + migrations) takes 1-2 s
STOP_TIMEOUT = 5.0
WEEK = 7 * 24 * 3600


class LocalRelayError(RuntimeError):
    """The relay could not be started or did not answer."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def relay_config(port: int, database: Path, name: str = "mostro-py local relay") -> str:
    """The YAML configuration of a local relay (JSON is valid YAML)."""
    config: dict[str, Any] = {
        "DEBUG": False,
        "relay_name": name,
        "storage": {
            "sqlalchemy.url": f"sqlite+aiosqlite:///{database}",
            # every validator of the defaults except the "hellthread" p-tag limit
            "validators": [
                "nostr_relay.validators.is_not_too_large",
                "nostr_relay.validators.is_signed",
                "nostr_relay.validators.is_recent",
            ],
        },
        "gunicorn": {"bind": f"127.0.0.1:{port}", "workers": 1, "loglevel": "warning"},
        "purple": {"host": "127.0.0.1", "port": port, "workers": 1, "disable_compression": True},
        "authentication": {"enabled": False},
        "verification": {"nip05_verification": "disabled"},
        # NIP-59 wraps are back-dated up to 2 days; NIP-44 payloads run to ~87 KB of base64
        "oldest_event": WEEK,
        "max_event_size": 512 * 1024,
        "message_timeout": 3600,
        "subscription_limit": 256,
        "max_limit": 100_000,
        "hellthread_limit": 0,
        "logging": {
            "version": 1,
            "formatters": {"simple": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
            "handlers": {
                "console": {
                    "class": "logging.StreamHandler",
                    "formatter": "simple",
                    "stream": "ext://sys.stdout",
                }
            },
            "root": {"level": "WARNING", "handlers": ["console"]},
        },
    }
    return json.dumps(config, indent=1)


def launch_relay(config_path: Path, workdir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start `nostr-relay serve` on `config_path` in its own process group, logging to a file.

    uvicorn runs the relay in one process: it starts as fast as gunicorn and stops in a
    fraction of gunicorn's seconds-long master/worker shutdown.
    """
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [str(RELAY_BINARY), "-c", str(config_path), "serve", "--use-uvicorn"],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping kills every child
        )


def answers_req(url: str, timeout: float = 2.0) -> bool:
    """Whether the relay at `url` answers a REQ with EOSE (it is serving, migrations done)."""
    from websockets.sync.client import connect

    sub_id = uuid.uuid4().hex[:16]
    deadline = time.monotonic() + timeout
    try:
        with connect(url, open_timeout=timeout, close_timeout=1, max_size=None) as ws:
            ws.send(json.dumps(["REQ", sub_id, {"limit": 1}]))
            while (remaining := deadline - time.monotonic()) > 0:
                message = json.loads(ws.recv(timeout=remaining))
                if message[:2] == ["EOSE", sub_id]:
                    return True
    except (OSError, TimeoutError, ValueError):
        return False
    except Exception:  # noqa: BLE001 - websockets' own errors (closed, handshake) mean "not yet"
        return False
    return False


def signal_group(pid: int, signum: int) -> None:
    """Signal the process group `pid` leads, or the lone process if it has no group yet."""
    try:
        os.killpg(pid, signum)
        return
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class LocalRelay:
    """One relay process with its database and log in `workdir` (kept across restarts)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.port = port or free_port()
        self.database = self.workdir / "db.sqlite3"
        self.config_path = self.workdir / "relay.yaml"
        self.log_path = self.workdir / "relay.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self, timeout: float = START_TIMEOUT) -> LocalRelay:
        """Start the relay and return once it answers a REQ; raise LocalRelayError if it cannot."""
        if self.running:
            return self
        if not RELAY_BINARY.exists():
            raise LocalRelayError(
                f"{RELAY_BINARY} not found: install the test extras (pip install -e '.[test]')")
        if port_is_open(self.port):
            raise LocalRelayError(f"port {self.port} is taken; cannot start the relay there")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(relay_config(self.port, self.database))
        self._process = launch_relay(self.config_path, self.workdir, self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                self._process = None
                raise LocalRelayError(f"relay exited during start-up:\n{self.log_tail()}")
            if port_is_open(self.port) and answers_req(self.url):
                return self
            time.sleep(0.05)  # start-up poll
        self.stop()
        raise LocalRelayError(f"relay on port {self.port} not ready after {timeout} s:\n"
                              f"{self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the relay's process group; SIGKILL whatever is left after `timeout`."""
        process, self._process = self._process, None
        if process is None:
            return
        signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            signal_group(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT)
        signal_group(process.pid, signal.SIGKILL)  # anything left in its process group
