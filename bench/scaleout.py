"""Benchmark: the take storm and many orders on one actor system, then on two (leader + worker).

"One system" is the daemon as `bench.take_storm` and `bench.many_orders` start it. "Two
systems" adds a worker (`mostro-py run --join`, its own admin port, in its own process) to
the same benchmark: once it has joined, the leader's directory places every order actor on
it, so the leader keeps the adapters, the outbox, the clock and the directory, and the
worker runs the orders. Both share the SQLite file on this machine (several hosts would
share PostgreSQL). The two benchmarks run unchanged: this module only swaps the workbench
they use for one whose `daemon()` also starts the worker, then prints the figures of both
set-ups side by side. CPU figures include the worker's processes (its admin and its
actors are counted as the daemon's).

It measures nothing by itself and must not change what the benchmarks do.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from adapters.nostr.local_relay import free_port
from bench import common, harness, many_orders, take_storm

BENCHMARK_NAME = "scaleout"
JOIN_TIMEOUT = 60.0
_PlainWorkbench = harness.Workbench


def worker_settings_toml(database_url: str, admin_port: int, leader_port: int) -> str:
    """A worker's whole settings file: the shared database and what this host runs."""
    return (f'[database]\nurl = "{database_url}"\n'
            f'[actors]\nbase = "multiprocTCPBase"\nadmin_port = {admin_port}\n'
            f'convention_leader = "127.0.0.1:{leader_port}"\nnostr = false\nlightning = false\n'
            '[logging]\nlevel = "INFO"\n')


class TwoSystemWorkbench(_PlainWorkbench):
    """A workbench whose daemon comes with a worker actor system that runs its order actors."""

    def daemon(self, settings: Any) -> Any:
        daemon = super().daemon(settings)
        self._start_worker(settings, daemon)
        return daemon

    def _start_worker(self, settings: Any, daemon: Any) -> None:
        from actors.messages import DirectoryStatus, StatusRequest

        admin_port = free_port()
        path = self.root / "worker.toml"
        path.write_text(worker_settings_toml(settings.database.url, admin_port,
                                             settings.actors.admin_port))
        log_path = self.root / "worker.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli", "run", "--config", str(path)], cwd=harness.REPO,
                env=harness.child_env(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        self.labels[process.pid] = "worker-supervisor"

        def joined() -> bool:
            if process.poll() is not None:
                raise harness.BenchSetupError(
                    f"the worker exited with {process.returncode}:\n{log_path.read_text()}")
            return "joined the convention" in log_path.read_text()

        harness.wait_for(joined, JOIN_TIMEOUT, "the worker joining the convention", 0.05)
        admin = harness.find_admin(admin_port)
        if admin is not None:  # its actors are counted (and cleaned up) as the daemon's
            self.admins.append(admin)

        def placed_on_worker() -> bool:
            status = daemon.system.ask(daemon.peers.directory, StatusRequest(), 5.0)
            return isinstance(status, DirectoryStatus) and len(status.hosts) >= 2

        harness.wait_for(placed_on_worker, JOIN_TIMEOUT, "the directory seeing the worker", 0.05)


@contextlib.contextmanager
def actor_systems(count: int) -> Iterator[None]:
    """Run the benchmarks inside on `count` actor systems (1: as they are; 2: with a worker)."""
    if count == 1:
        yield
        return
    harness.Workbench = TwoSystemWorkbench  # type: ignore[misc]
    try:
        yield
    finally:
        harness.Workbench = _PlainWorkbench  # type: ignore[misc]


def measure(storm_sizes: Sequence[int], order_sizes: Sequence[int], takes: int,
            timeout: float) -> dict[str, Any]:
    machine = common.describe_machine(("thespian", "peewee", "grpcio"))
    runs: dict[str, Any] = {}
    for count in (1, 2):
        with actor_systems(count):
            storm = take_storm.measure(storm_sizes, timeout=timeout) if storm_sizes else None
            orders = many_orders.measure(order_sizes, takes=takes, timeout=timeout,
                                         warm_takes=min(30, takes)) if order_sizes else None
        runs[str(count)] = {"take_storm": storm, "many_orders": orders}
    return {"benchmark": BENCHMARK_NAME, "machine": machine.as_dict(),
            "machine_line": machine.line(),
            "params": {"storm_sizes": list(storm_sizes), "order_sizes": list(order_sizes),
                       "takes": takes},
            "systems": runs}


def _num(value: Any, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(stats: dict[str, float] | None, key: str) -> str:
    return "-" if not stats else _num(stats.get(key))


def format_report(report: dict[str, Any]) -> str:
    one, two = report["systems"]["1"], report["systems"]["2"]
    lines = [report["machine_line"],
             "one actor system vs two (leader: adapters + directory; worker: order actors), "
             "times in ms, CPU in s (daemon processes of both systems)", ""]
    if one["take_storm"] and two["take_storm"]:
        rows = []
        for first, second in zip(one["take_storm"]["runs"], two["take_storm"]["runs"], strict=True):
            for label, run in (("1", first), ("2", second)):
                rows.append([
                    f"N={run['takers']}", label,
                    _num(run["take_to_bond_invoice_ms"]["p50"]),
                    _num(run["take_to_bond_invoice_ms"]["p99"]),
                    _num(run["accepted_to_winner_next_ms"]),
                    _num(run["accepted_to_last_cancel_ms"]),
                    _num(run["accepted_to_last_refund_ms"]),
                    _num((run.get("daemon_cpu_run") or {}).get("total_s"), 2),
                    "OK" if run["ok"] else "FAILED"])
        lines.append("take storm (bench.take_storm)")
        lines.append(common.format_table(
            ["run", "systems", "take→bond p50", "p99", "→winner next", "→last canceled",
             "→last refund", "daemon CPU", "outcome"], rows))
        lines.append("")
    if one["many_orders"] and two["many_orders"]:
        rows = []
        for first, second in zip(one["many_orders"]["results"], two["many_orders"]["results"],
                                 strict=True):
            for label, run in (("1", first), ("2", second)):
                rows.append([
                    f"{run['orders']} orders", label, _num(run["daemon_start_s"], 2),
                    _pct(run["cold_take_ms"], "p50"), _pct(run["cold_take_ms"], "p99"),
                    _pct(run["warm_take_ms"], "p50"), _pct(run["isolated_activation_ms"], "p50"),
                    str(run["cold_unanswered"] + run["warm_unanswered"]),
                    _num(run["after_takes"]["daemon"]["pss_mb"]),
                    str((run["after_takes"] or {}).get("live_order_actors"))])
        lines.append("many orders (bench.many_orders)")
        lines.append(common.format_table(
            ["size", "systems", "start s", "cold take p50", "p99", "warm p50",
             "activation p50", "unanswered", "PSS MB", "live actors"], rows))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__.splitlines()[0])
    parser.add_argument("--storm-sizes", type=int, nargs="*", default=[10, 50])
    parser.add_argument("--order-sizes", type=int, nargs="*", default=[1_000])
    parser.add_argument("--takes", type=int, default=many_orders.DEFAULT_TAKES)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = measure(args.storm_sizes, args.order_sizes, args.takes, args.timeout)
    report["wall_s"] = round(time.perf_counter() - started, 1)
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
