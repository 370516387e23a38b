"""`mostro-py stop`: shut down an actor system whose supervisor is gone.

The orphan is made the way it happens: a process starts a multiprocTCPBase
system and dies without shutting it down; thespian's admin lives on in its own
session and keeps the admin port. `run` then refuses the port and names `stop`;
`stop` frees it; a second `stop` finds nothing and still exits 0.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from actors.inspection import admin_port_in_use
from adapters.nostr.local_relay import free_port
from tests.conftest import wait_until

from .supervisor_kit import REPO, child_env, python, run, stop_leftover_system
from .test_supervisor import settings_toml


@pytest.fixture
def admin_port() -> int:
    port = free_port()
    yield port
    stop_leftover_system(port)  # only does something when a test failed half-way


def leave_orphan_system(admin_port: int) -> None:
    # no pipes: the admin inherits the starter's descriptors and outlives it
    started = subprocess.run(
        python("-c", "from thespian.actors import ActorSystem; "
                     f"ActorSystem('multiprocTCPBase', {{'Admin Port': {admin_port}}})"),
        cwd=REPO, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, timeout=30, check=False)
    assert started.returncode == 0
    wait_until(lambda: admin_port_in_use(admin_port), what="the orphan's admin port open")


@pytest.mark.multiproc
def test_stop_shuts_down_an_orphaned_actor_system(tmp_path: Path, relay, lnsim,
                                                   admin_port: int) -> None:
    config = settings_toml(tmp_path, relay.url, lnsim, admin_port)
    leave_orphan_system(admin_port)

    refused = run(python("-m", "supervisor", "--config", str(config)))
    assert refused.returncode == 1
    assert f"admin port {admin_port} is in use" in refused.stderr
    assert "mostro-py stop" in refused.stderr

    stopped = run(python("-m", "cli", "stop", "--config", str(config)), timeout=60)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"stopped the actor system on admin port {admin_port}" in stopped.stdout
    assert not admin_port_in_use(admin_port)

    again = run(python("-m", "cli", "stop", "--config", str(config)))
    assert again.returncode == 0 and "not running" in again.stdout


def test_stop_refuses_a_base_another_process_cannot_reach(tmp_path: Path, relay, lnsim,
                                                          admin_port: int) -> None:
    config = settings_toml(tmp_path, relay.url, lnsim, admin_port)
    config.write_text(config.read_text().replace('base = "multiprocTCPBase"',
                                                 'base = "simpleSystemBase"'))
    refused = run(python("-m", "cli", "stop", "--config", str(config)))
    assert refused.returncode == 2
    assert "runs inside its supervisor" in refused.stderr
