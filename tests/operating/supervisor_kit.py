"""Helpers for the supervisor and devnet tests: real subprocesses and their output.

A `Child` runs a command in its own process group, collects its stdout and
stderr lines on threads, and can wait for a line; teardown kills the group.
`stop_leftover_system(port)` shuts down a thespian system a crashed
supervisor may have left on its admin port (never used on success paths).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from actors.inspection import admin_port_in_use

REPO = Path(__file__).resolve().parents[2]


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSTRO_")}
    env["PYTHONPATH"] = str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Child:
    args: list[str]
    process: subprocess.Popen[str] = field(init=False)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _readers: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.process = subprocess.Popen(
            self.args, cwd=REPO, env=child_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            reader = threading.Thread(target=self._collect, args=(stream, lines), daemon=True)
            reader.start()
            self._readers.append(reader)

    def _collect(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return "\n".join(self.stdout + self.stderr)

    def wait_line(self, fragment: str, timeout: float = 30.0) -> str:
        """The first output line containing `fragment`; fail the test if it does not come."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.stdout + self.stderr:
                    if fragment in line:
                        return line
                remaining = deadline - time.monotonic()
                finished = not any(reader.is_alive() for reader in self._readers)
                if remaining <= 0 or finished:
                    output = "\n".join(self.stdout + self.stderr)
                    pytest.fail(f"no line with {fragment!r} within {timeout} s "
                                f"(exit {self.process.poll()}):\n{output}")
                self._changed.wait(min(remaining, 0.2))

    def terminate(self, timeout: float) -> int:
        """SIGTERM and wait; the exit code (the test fails if it takes longer than `timeout`)."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.args[:4]} did not stop within {timeout} s:\n{self.text()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(5)


def run(args: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=REPO, env=child_env(), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def stop_leftover_system(admin_port: int) -> None:
    """Shut down a thespian system left on `admin_port` by a supervisor that did not stop."""
    if not admin_port_in_use(admin_port):
        return
    run(python("-c", "from thespian.actors import ActorSystem; "
                     f"ActorSystem('multiprocTCPBase', {{'Admin Port': {admin_port}}}).shutdown()"),
        timeout=30)
