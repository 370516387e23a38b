"""`inspect actors` against a real actor system running the order directory.

simpleSystemBase (in process): the tree walk from the directory, its live
order actors and the per-order liveness. multiprocTCPBase: the real command
in another process joins the running system through the admin port, lists
the directory, and leaves the system running. Systems are always shut down.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from thespian.actors import ActorSystem

from actors import inspection
from actors.directory import OrderDirectoryActor
from actors.messages import RouteToOrder, RuntimeConfig
from actors.order_logic.model import Deadline, DeadlineKind, DeadlineReached
from actors.tools_cli import inspect_main, render_actors
from tests.conftest import wait_until

from .conftest import free_port, load_data, write_settings
from .journal_kit import run_script

REPO = Path(__file__).resolve().parents[2]


DIRECTORY_NAME = inspection.DIRECTORY_NAME


def test_directory_name_matches_the_daemon():
    from actors.daemon import (
        DIRECTORY_NAME as daemon_name,  # the daemon module pulls in every adapter
    )

    assert daemon_name == DIRECTORY_NAME



def test_simple_base_lists_the_directory_and_its_live_order(db, settings, simple_system):
    script = load_data("sell_trade.json")
    script["steps"] = script["steps"][:4]  # still waiting for the buyer's invoice: not passivated
    order_id = run_script(script, settings)[0]
    directory = simple_system.createActor(OrderDirectoryActor, globalName=DIRECTORY_NAME)
    assert simple_system.ask(directory, RuntimeConfig(settings, settings.database.url), 5)
    # a no-op clock event wakes the order's actor (a child of the directory)
    stale = DeadlineReached(Deadline(DeadlineKind.PENDING_EXPIRY, 0))
    simple_system.tell(directory, RouteToOrder(order_id, stale, now=script["start"]))

    view = inspection.describe_actor_system(
        simple_system, roots=[directory], global_names={DIRECTORY_NAME: directory}, timeout=5)
    assert view.running
    kinds = [a.kind.rsplit(".", 1)[-1] for a in view.actors]
    assert kinds[0] == "OrderDirectoryActor"
    assert view.actors[0].global_name == DIRECTORY_NAME
    assert "OrderActor" in kinds[1:]
    assert view.actors[0].children == kinds.count("OrderActor") >= 1
    assert view.directory is not None and order_id in view.directory.live_orders
    liveness = view.liveness_of(order_id)
    assert liveness.live is True and liveness.buffered == 0
    assert view.liveness_of("another").live is False
    text = render_actors(view)
    assert "OrderDirectoryActor" in text and DIRECTORY_NAME in text and f"live {order_id}" in text


def test_actors_when_nothing_runs(config_path, tmp_path):
    out = io.StringIO()
    assert inspect_main(["actors", "--config", str(config_path)], out) == 0
    assert "actor system not running" in out.getvalue()
    simple = write_settings(tmp_path / "simple.toml", tmp_path / "m.db", free_port(), "simpleSystemBase")
    out = io.StringIO()
    assert inspect_main(["actors", "--config", str(simple), "--json"], out) == 0
    view = json.loads(out.getvalue())
    assert view["running"] is False and "simpleSystemBase" in view["note"]


@pytest.mark.multiproc
def test_tcp_base_inspect_actors_from_another_process(db, settings, config_path):
    port = settings.actors.admin_port
    system = ActorSystem("multiprocTCPBase", {"Admin Port": port}, transientUnique=True)
    script = load_data("sell_trade.json")
    script["steps"] = script["steps"][:4]
    order_id = run_script(script, settings)[0]
    try:
        directory = system.createActor(OrderDirectoryActor, globalName=DIRECTORY_NAME)
        assert system.ask(directory, RuntimeConfig(settings, settings.database.url), 10)
        stale = DeadlineReached(Deadline(DeadlineKind.PENDING_EXPIRY, 0))
        system.tell(directory, RouteToOrder(order_id, stale, now=script["start"]))
        wait_until(lambda: system.ask(directory, inspection.StatusRequest(), 10).handled == 1)

        view = json.loads(run_inspect("actors", "--config", str(config_path), "--json"))
        assert view["running"] is True
        listed = [a for a in view["actors"] if a["global_name"] == DIRECTORY_NAME]
        assert len(listed) == 1
        assert listed[0]["kind"].endswith("OrderDirectoryActor") and listed[0]["responsive"]
        children = [a for a in view["actors"] if a["parent"] == listed[0]["address"]]
        assert [a["kind"].rsplit(".", 1)[-1] for a in children] == ["OrderActor"]
        directory_view = {k: view["directory"][k] for k in ("live_orders", "buffered", "handled")}
        assert directory_view == {"live_orders": [order_id], "buffered": {}, "handled": 1}
        assert view["directory"]["placement"] == {order_id: next(iter(view["directory"]["hosts"]))}

        report = json.loads(run_inspect("order", order_id, "--config", str(config_path), "--json"))
        assert report["actor"] == {"system_running": True, "live": True, "buffered": 0, "note": ""}
        # inspecting left the daemon's system running
        assert system.ask(directory, inspection.StatusRequest(), 10) is not None
    finally:
        system.shutdown()


def run_inspect(*argv: str) -> str:
    """The real command in its own process (as an operator runs it next to the daemon)."""
    command = [sys.executable, "-c",
               "import sys; from actors.tools_cli import inspect_main; "
               "sys.exit(inspect_main(sys.argv[1:]))", *argv]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_admin_port_held_by_something_else_is_reported_not_raised(settings, tmp_path):
    """thespian gives up after its own retry window (~15 s here): slow, so opt-in."""
    import socket

    with socket.socket() as squatter:
        squatter.bind(("", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        config = write_settings(tmp_path / "squat.toml", tmp_path / "m.db", port)
        out = io.StringIO()
        assert inspect_main(["actors", "--config", str(config)], out) == 0
    assert f"actor system on admin port {port} not reachable" in out.getvalue()
