"""The supervisor as operators run it: a real `python -m supervisor` process.

It runs against a real relay and the LND simulator started by the fixtures,
on multiprocTCPBase with its own admin port. Checked: it starts and answers
`mostro-py health`; SIGTERM stops it with exit 0 within a few seconds and
takes the actor system with it (the admin port closes); a top-level actor
that exits is brought back; bad settings exit 2 listing every problem, an
unusable database exits 3 with one clear line, neither with a traceback.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from actors.inspection import admin_port_in_use
from adapters.nostr.local_relay import free_port
from supervisor import EXIT_CONFIG, EXIT_STORAGE, Backoff, StructuredFormatter, storage_problem
from tests.conftest import wait_until
from tests.fixtures.lnsim import LnSimHandle
from tests.fixtures.relay import RelayProcess

from .supervisor_kit import Child, python, run, stop_leftover_system

CASES = json.loads((Path(__file__).parent / "data" / "supervisor_cases.json").read_text())
NSEC_HEX = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
STOP_WITHIN = 10.0  # seconds from SIGTERM to exit, generous for a loaded 2-core machine


def settings_toml(tmp_path: Path, relay_url: str, lnsim: LnSimHandle, admin_port: int,
                  database: Path | None = None) -> Path:
    node = lnsim.mostro
    path = tmp_path / "settings.toml"
    path.write_text(
        "[mostro]\nfee = 0.006\nfiat_currencies_accepted = [\"USD\"]\n"
        f"[lightning]\nlnd_grpc_host = \"{node.address}\"\n"
        f"lnd_cert_file = \"{node.tls_cert_path}\"\nlnd_macaroon_file = \"{node.macaroon_path}\"\n"
        "network = \"regtest\"\n"
        f"[nostr]\nnsec_privkey = \"{NSEC_HEX}\"\nrelays = [\"{relay_url}\"]\n"
        f"[database]\nurl = \"sqlite:///{database or tmp_path / 'mostro.db'}\"\n"
        "[anti_abuse_bond]\nenabled = true\n"
        "[price]\nfixed = {USD = 100000.0}\n"
        f"[actors]\nbase = \"multiprocTCPBase\"\nadmin_port = {admin_port}\n"
        "[logging]\nlevel = \"INFO\"\n")
    return path


@pytest.fixture
def admin_port() -> Any:
    port = free_port()
    yield port
    stop_leftover_system(port)  # only does something when a test failed half-way


def start_supervisor(config: Path, *extra: str) -> Child:
    return Child(python("-m", "supervisor", "--config", str(config), "--check-interval", "0.3",
                        *extra))


@pytest.mark.multiproc
def test_starts_answers_health_and_stops_gracefully_on_sigterm(
        tmp_path: Path, relay: RelayProcess, lnsim: LnSimHandle, admin_port: int) -> None:
    config = settings_toml(tmp_path, relay.url, lnsim, admin_port)
    daemon = start_supervisor(config, "--health-log-interval", "0.5")
    try:
        daemon.wait_line("daemon running")
        health = run(python("-m", "cli", "health", "--config", str(config), "--json"))
        assert health.returncode == 0, health.stdout + health.stderr
        report = json.loads(health.stdout)
        assert report["ok"] is True and report["lightning"] == "connected"
        assert set(report["actors"]) == {"outbox", "clock", "directory", "lightning", "nostr"}
        assert all(report["actors"].values())
        line = daemon.wait_line("mostro.supervisor: health")
        assert "ok=True" in line and "lnd=connected" in line and "actor_directory=up" in line

        second = run(python("-m", "supervisor", "--config", str(config)))
        assert second.returncode == 1  # never joins the running system as a second supervisor
        assert f"admin port {admin_port} is in use" in second.stderr

        assert daemon.terminate(STOP_WITHIN) == 0
    finally:
        daemon.kill()
    output = daemon.text()
    steps = ("shutting down gracefully signal=SIGTERM", "intake closed", "order actors quiet",
             "outbox flushed", "stopped")
    positions = [output.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions)  # intake first, then drain, flush, stop
    assert "Traceback" not in output
    wait_until(lambda: not admin_port_in_use(admin_port), timeout=5)
    after = run(python("-m", "cli", "health", "--config", str(config)))
    assert after.returncode == 1 and "not running" in after.stdout


@pytest.mark.multiproc
def test_a_top_level_actor_that_exits_is_restarted(
        tmp_path: Path, relay: RelayProcess, lnsim: LnSimHandle, admin_port: int) -> None:
    config = settings_toml(tmp_path, relay.url, lnsim, admin_port)
    daemon = start_supervisor(config)
    try:
        daemon.wait_line("daemon running")
        stopped = run(python("-c", (
            "from thespian.actors import ActorSystem, ActorExitRequest\n"
            "from thespian.system.messages.status import Thespian_StatusReq\n"
            f"s = ActorSystem('multiprocTCPBase', {{'Admin Port': {admin_port}}}, "
            "transientUnique=True)\n"
            "status = s.ask(s._systemBase.adminAddr, Thespian_StatusReq(), 5)\n"
            "s.tell(status.globalActors['mostro-directory'], ActorExitRequest())\n")))
        assert stopped.returncode == 0, stopped.stderr
        why = daemon.wait_line("restarting the daemon's actors")
        assert "actors=directory" in why and "restart_in_s=" in why
        daemon.wait_line("daemon's actors restarted restarts=1")
        health = run(python("-m", "cli", "health", "--config", str(config)))
        assert health.returncode == 0 and health.stdout.startswith("healthy"), health.stdout
        assert daemon.terminate(STOP_WITHIN) == 0
    finally:
        daemon.kill()


@pytest.mark.multiproc
def test_lnd_unreachable_at_start_is_retried_with_backoff_until_sigterm(
        tmp_path: Path, relay: RelayProcess, lnsim: LnSimHandle, admin_port: int) -> None:
    config = settings_toml(tmp_path, relay.url, lnsim, admin_port)
    config.write_text(config.read_text().replace(lnsim.mostro.address, f"127.0.0.1:{free_port()}"))
    daemon = start_supervisor(config)
    try:
        first = daemon.wait_line("daemon did not start; retrying")
        assert "LND unreachable" in first and "retry_in_s=1.0" in first
        assert "retry_in_s=2.0" in daemon.wait_line("retry_in_s=2.0")
        assert daemon.terminate(STOP_WITHIN) == 0
    finally:
        daemon.kill()
    assert "stopped before the daemon came up" in daemon.text()
    assert "Traceback" not in daemon.text()
    wait_until(lambda: not admin_port_in_use(admin_port), timeout=5)


@pytest.mark.parametrize("case", CASES["invalid_settings"], ids=lambda c: c["name"])
def test_invalid_settings_exit_2_listing_every_problem(tmp_path: Path, case: dict) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(case["toml"])
    result = run(python("-m", "supervisor", "--config", str(config)))
    assert result.returncode == EXIT_CONFIG
    assert "Traceback" not in result.stderr
    assert f"invalid settings in {config}" in result.stderr
    for key in case["problems"]:
        assert key in result.stderr, (key, result.stderr)


@pytest.mark.parametrize("case", CASES["unusable_databases"], ids=lambda c: c["name"])
def test_an_unusable_database_gives_one_clear_line(
        tmp_path: Path, relay: RelayProcess, lnsim: LnSimHandle, admin_port: int,
        case: dict) -> None:
    database = tmp_path / "mostro.db"
    holder = None
    if case["setup"] == "locked":
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("CREATE TABLE held (x)")
    else:
        (tmp_path / "not-a-folder").write_text("")
        database = tmp_path / "not-a-folder" / "mostro.db"
    config = settings_toml(tmp_path, relay.url, lnsim, admin_port, database)
    try:
        result = run(python("-m", "supervisor", "--config", str(config)), timeout=60)
    finally:
        if holder is not None:
            holder.close()
    assert result.returncode == EXIT_STORAGE
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "CRITICAL" in lines[0] and case["reason"] in lines[0] and str(database) in lines[0]
    assert not admin_port_in_use(admin_port)  # it stopped before starting any actor


# ------------------------------------------------------------------ in-process pieces
def test_storage_problems_are_named_for_the_operator() -> None:
    url = "sqlite:///x.db"
    assert "locked" in storage_problem(Exception("database is locked"), url)
    assert "full" in storage_problem(Exception("database or disk is full"), url)
    assert "read-only" in storage_problem(Exception("attempt to write a readonly database"), url)
    assert "cannot open" in storage_problem(Exception("unable to open database file"), url)
    assert storage_problem(Exception("weird"), url).endswith("weird")


def test_backoff_doubles_up_to_its_maximum_and_resets() -> None:
    backoff = Backoff(initial=1.0, maximum=5.0)
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_log_lines_are_one_line_with_order_and_bond_fields() -> None:
    import logging

    record = logging.LogRecord("mostro.order", logging.INFO, __file__, 1, "bond locked\nnext",
                               None, None)
    record.order_id = "o-1"
    record.bond_id = "b-2"
    record.fields = {"reason": "first to lock"}
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = StructuredFormatter().format(record)
    assert "\n" not in line
    assert "mostro.order: bond locked | next" in line
    assert "order_id=o-1 bond_id=b-2" in line and 'reason="first to lock"' in line
    assert 'exc="ValueError: boom"' in line


def test_first_signal_asks_for_a_graceful_stop_and_the_second_forces() -> None:
    import signal

    from supervisor import ForcedExit, ShutdownSignal

    stop = ShutdownSignal()
    stop._handle(signal.SIGTERM, None)
    assert stop.requested.is_set()
    with pytest.raises(ForcedExit):
        stop._handle(signal.SIGINT, None)
