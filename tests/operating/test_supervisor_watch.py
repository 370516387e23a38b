"""A supervisor killed alone does not leave its actor system behind.

thespian's TCP admin runs in its own session, so SIGKILL to the supervisor process (the OOM
killer, `kill -9`) used to leave every actor serving the node unwatched until someone ran
`mostro-py stop`. The system now stops itself: the real supervisor is started, killed alone,
and its admin port must close; a new supervisor then starts on the same port.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from actors.inspection import admin_port_in_use
from actors.supervisor_watch import process_start_ticks, supervisor_alive
from tests.conftest import wait_until

from .supervisor_kit import REPO, child_env, python, run
from .test_supervisor import STOP_WITHIN, admin_port, settings_toml, start_supervisor  # noqa: F401


def test_a_process_is_known_by_its_pid_and_start_time() -> None:
    me = process_start_ticks(os.getpid())
    assert me is not None and supervisor_alive(os.getpid(), me)
    assert not supervisor_alive(os.getpid(), me + 1)  # the pid was recycled by another process
    child = subprocess.Popen(python("-c", "pass"), cwd=REPO, env=child_env())
    child.wait(30)
    assert process_start_ticks(child.pid) is None
    assert not supervisor_alive(child.pid, None)


@pytest.mark.multiproc
def test_the_actor_system_of_a_killed_supervisor_stops_itself(
        tmp_path: Path, relay, lnsim, admin_port: int) -> None:  # noqa: F811 - the fixture
    config = settings_toml(tmp_path, relay.url, lnsim, admin_port)
    daemon = start_supervisor(config)
    try:
        daemon.wait_line("daemon running")
        os.kill(daemon.process.pid, signal.SIGKILL)  # the supervisor alone, not its group
        daemon.process.wait(10)
        assert admin_port_in_use(admin_port)  # the actors outlived it...
        wait_until(lambda: not admin_port_in_use(admin_port), timeout=30,
                   what="the orphaned system to shut itself down")  # ...until the watch saw it

        again = start_supervisor(config)
        try:
            again.wait_line("daemon running")
            health = run(python("-m", "cli", "health", "--config", str(config)))
            assert health.returncode == 0 and health.stdout.startswith("healthy"), health.stdout
            assert again.terminate(STOP_WITHIN) == 0
        finally:
            again.kill()
    finally:
        daemon.kill()
