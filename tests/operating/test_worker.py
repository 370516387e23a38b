"""`mostro-py run --join LEADER`: a worker actor system as operators run it (issue #10).

A bare thespian leader (an actor system on its own admin port, in a subprocess)
stands in for the leader's daemon: what the worker does is join its convention,
say so in its log and in `mostro-py health`, and leave on SIGTERM with exit 0,
its actor system gone (admin port closed). The worker needs no LND and no node
key: its settings file holds only `[database]` and `[actors]`. A bad `--join`
exits 2 naming the key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from actors.inspection import admin_port_in_use
from adapters.nostr.local_relay import free_port
from supervisor import EXIT_CONFIG
from tests.conftest import wait_until

from .supervisor_kit import Child, python, run, stop_leftover_system

STOP_WITHIN = 10.0

LEADER_SCRIPT = """
import signal, sys, threading
from thespian.actors import ActorSystem
system = ActorSystem("multiprocTCPBase", {"Admin Port": %d, "mostro-orders": False})
print("leader up", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
system.shutdown()
"""


@pytest.fixture
def ports() -> Any:
    leader, worker = free_port(), free_port()
    yield leader, worker
    stop_leftover_system(worker)  # only does something when a test failed half-way
    stop_leftover_system(leader)


def worker_settings(tmp_path: Path, worker_port: int, leader: str = "") -> Path:
    """A worker's whole settings file: the shared database and what this host runs."""
    path = tmp_path / "worker.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "mostro.db"}"\n'
        f'[actors]\nadmin_port = {worker_port}\nnostr = false\nlightning = false\n'
        + (f'convention_leader = "{leader}"\n' if leader else ""))
    return path


@pytest.mark.multiproc
def test_a_worker_joins_the_leader_reports_membership_and_leaves_on_sigterm(
        tmp_path: Path, ports: tuple[int, int]) -> None:
    leader_port, worker_port = ports
    leader = Child(python("-c", LEADER_SCRIPT % leader_port))
    worker = None
    try:
        leader.wait_line("leader up")
        config = worker_settings(tmp_path, worker_port)
        assert "lnd" not in config.read_text() and "nsec" not in config.read_text()
        worker = Child(python("-m", "cli", "run", "--config", str(config),
                              "--join", f"127.0.0.1:{leader_port}"))
        line = worker.wait_line("joined the convention")
        assert "joined=True" in line and f":{leader_port})" in line
        # the leader can also be named in the file (then `run` alone starts a worker)
        joined_config = worker_settings(tmp_path, worker_port, f"127.0.0.1:{leader_port}")
        health = run(python("-m", "cli", "health", "--config", str(joined_config), "--json"))
        assert health.returncode == 0, health.stdout + health.stderr
        report = json.loads(health.stdout)
        assert report["joined"] is True and report["order_actors"] == 0
        assert worker.terminate(STOP_WITHIN) == 0
        output = worker.text()
        assert "leaving the convention" in output and "stopped" in output
        assert "Traceback" not in output
        wait_until(lambda: not admin_port_in_use(worker_port), timeout=5)
    finally:
        if worker is not None:
            worker.kill()
        leader.terminate(STOP_WITHIN)
        leader.kill()


@pytest.mark.parametrize("leader", ["nonsense", "127.0.0.1:0", "http://10.0.0.5:1900"])
def test_a_bad_join_address_exits_2_with_one_line(tmp_path: Path, leader: str) -> None:
    config = worker_settings(tmp_path, free_port())
    result = run(python("-m", "cli", "run", "--config", str(config), "--join", leader))
    assert result.returncode == EXIT_CONFIG
    assert "actors.convention_leader" in result.stderr and "Traceback" not in result.stderr
