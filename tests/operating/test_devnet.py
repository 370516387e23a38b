"""`mostro-py devnet` and `mostro-py devnet demo`, as a newcomer runs them.

The devnet runs as a real subprocess on a temporary state dir (its own relay,
LND simulator and supervised daemon); the demo runs as another process
against it and must show one winner and one refunded loser; SIGTERM then
stops everything with exit 0. The settings and the node key it generates
are checked in-process.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from actors.devnet import DevnetLayout, node_secret, read_info, settings_text
from actors.inspection import admin_port_in_use
from adapters.nostr import keys
from adapters.nostr.local_relay import port_is_open
from config import load_settings
from tests.conftest import wait_until

from .supervisor_kit import Child, python, run, stop_leftover_system


def test_node_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    layout = DevnetLayout(tmp_path / "devnet")
    first = node_secret(layout)
    assert keys.is_hex(first, 64)
    assert stat.S_IMODE(layout.node_key.stat().st_mode) == 0o600
    assert node_secret(layout) == first


def test_generated_settings_are_valid_and_enable_bonds(tmp_path: Path) -> None:
    layout = DevnetLayout(tmp_path)
    node = {"address": "127.0.0.1:10009", "tls_cert_path": str(tmp_path / "tls.cert"),
            "macaroon_path": str(tmp_path / "admin.macaroon")}
    layout.settings.write_text(settings_text(layout, "ws://127.0.0.1:7777", node, 19999,
                                             node_secret(layout)))
    settings = load_settings(layout.settings)
    assert settings.anti_abuse_bond.enabled is True
    assert tuple(settings.nostr.relays) == ("ws://127.0.0.1:7777",)
    assert settings.actors.base == "multiprocTCPBase" and settings.actors.admin_port == 19999
    assert str(layout.database) in settings.database.url


@pytest.mark.multiproc
def test_devnet_runs_the_demo_race_and_stops_cleanly(tmp_path: Path) -> None:
    state = tmp_path / "devnet"
    devnet = Child(python("-m", "cli", "devnet", "--state-dir", str(state), "--quiet"))
    admin_port = None
    try:
        devnet.wait_line("Try: mostro-py devnet demo", timeout=90)
        info = read_info(DevnetLayout(state))
        assert info is not None and info["running"]
        admin_port = info["admin_port"]
        assert devnet.wait_line("node npub").split()[-1] == info["node_npub"]
        assert info["node_npub"].startswith("npub1")

        demo = run(python("-m", "cli", "devnet", "demo", "--state-dir", str(state)), timeout=120)
        output = demo.stdout
        daemon_log = (state / "daemon.log").read_text()
        assert demo.returncode == 0, output + demo.stderr + "\ndaemon log:\n" + daemon_log[-6000:]
        assert "starting one for the demo" not in output  # it used the running devnet
        won = [line for line in output.splitlines() if "WON the race" in line]
        cancelled = [line for line in output.splitlines() if "was CANCELLED" in line]
        assert len(won) == 1 and len(cancelled) == 1
        winner = won[0].split("] ")[1].split()[0]
        loser = cancelled[0].split("] ")[1].split()[0]
        assert {winner, loser} == {"bob", "carol"}
        assert f"winner: {winner}" in output
        assert f"loser: {loser} (refunded: yes, balance change +0 sats)" in output
        assert f"{loser}'s bond payment ended FAILED: refunded, never settled" in output
        assert "status success" in output
        assert f"bond of {winner} (taker, 1000 sats): released" in output
        assert f"bond of {loser} (taker, 1000 sats): released" in output
        assert "demo OK" in output

        assert devnet.terminate(timeout=30) == 0
        assert "devnet stopped (daemon exit code 0)" in devnet.text()
    finally:
        devnet.kill()
        if admin_port is not None:
            stop_leftover_system(admin_port)
    stopped = json.loads((state / "devnet.json").read_text())
    assert stopped["running"] is False
    wait_until(lambda: not admin_port_in_use(stopped["admin_port"]), timeout=5)
    assert not port_is_open(stopped["relay_port"])
    assert not port_is_open(int(stopped["lnd"]["port"]))
