"""Benchmark (2), intake throughput: requests per second the running daemon answers and commits.

A real daemon (actor processes on a multiprocess thespian base, SQLite, the LND simulator) gets a
mix of new-order, take-sell and cancel requests across many orders, each from a fresh trade key,
and the clock runs until the outbox holds every reply the mix causes and a relay has accepted each
one (`done_at`). Two ways in:

* inject: the requests go straight into the Nostr adapter's receive path (`InjectRelayMessages`:
  the relay pool handles each `["EVENT", sub, event]` text as if read from its socket: parse,
  de-duplicate, verify, then the intake in the adapter's process). Replies leave through a null
  relay (`bench.sink_relay`) that acknowledges everything, so no relay cost is paid either way.
* relay: a real `nostr-relay` between a publishing client and the daemon, for requests and
  replies. The same relay's own rate without the daemon (publish to it, one subscriber reading
  them back) and every process's CPU during the run show which side is the bottleneck.

The figure is divided by benchmark (1)'s crypto limit, measured in a fresh interpreter right
before and right after the timed window of the same case (their mean; both are reported): this
machine's speed drifts by a third within a minute, and a limit measured once at the run's start
compared the two figures at moments up to a minute apart. Every run checks that each request's
sender got its expected first reply (`new-order`, `add-invoice`, `canceled`).

It must not assert on speed or reach into the daemon beyond reading its database.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from adapters.nostr.adapter_messages import InjectRelayMessages
from adapters.nostr.protocol import Transport
from bench import common, crypto_limit, harness
from bench import mostro_requests as mr
from bench.journal_gate import JournalGate
from storage.url import SqliteLocation, parse_database_url

BENCHMARK_NAME = "intake_throughput"
DEFAULT_REQUESTS = 1200  # at 600 a simpleSystemBase case lasted about a second: start and tail weighed
# chunks of `--window` requests unanswered at a time: enough that the daemon never waits for
# the benchmark's 50-ms polls between chunks (with two it sat idle a third of the time)
DEFAULT_IN_FLIGHT = 4
DEFAULT_LEAD_S = 120  # requests are stamped this far ahead so a backlog is not dropped as stale
INBOX_SUB = "mostro-inbox"  # the daemon's inbox subscription id (actors.daemon / nostr.actor)
PATHS = ("inject", "relay")
# how often the journal's newest id is read to release the next chunk (an index lookup: a few
# µs of the bench's process, which shares the daemon's GIL on simpleSystemBase), and how often
# the replies are counted once every request is decided (~1 ms a count: it reads every reply
# row). Polling the replies every 50 ms to release chunks held each chunk back 25 ms on
# average, and the daemon sat idle waiting for the benchmark.
GATE_POLL_S = 0.005
BASES = ("multiprocTCPBase", "multiprocQueueBase", "simpleSystemBase")


# --- getting requests to the daemon -----------------------------------------------------------


class RelayClient:
    """A plain websocket client of a relay: publish many events, count the OKs, or subscribe."""

    def __init__(self, url: str) -> None:
        from websockets.sync.client import connect

        self._ws = connect(url, open_timeout=10, close_timeout=1, max_size=None,
                           compression=None)
        self.oks = 0
        self.events = 0
        self._lock = threading.Lock()
        self._eose = threading.Event()
        self._reader = threading.Thread(target=self._read, name="bench-relay-client",
                                        daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for text in self._ws:
                message = json.loads(text)
                with self._lock:
                    if message[0] == "OK":
                        self.oks += 1
                    elif message[0] == "EVENT":
                        self.events += 1
                    elif message[0] == "EOSE":
                        self._eose.set()
        except Exception:  # noqa: BLE001 - closed at the end of the run
            return

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        for event in events:
            self._ws.send(json.dumps(["EVENT", event], separators=(",", ":")))

    def subscribe(self, filters: dict[str, Any], timeout: float = 10.0) -> None:
        self._ws.send(json.dumps(["REQ", "bench", filters]))
        if not self._eose.wait(timeout):
            raise harness.BenchSetupError("the relay did not answer the subscription")

    def close(self) -> None:
        self._ws.close()


class Injector:
    """Deliver requests by handing them to the Nostr adapter's relay pool (no relay).

    Their relay messages are rendered by `prepare`, before the clock starts: rendering is the
    relays' work, not the daemon's, and on simpleSystemBase the daemon shares this process (and
    its GIL) with the benchmark."""

    def __init__(self, bench: harness.Workbench, daemon: Any, relay_url: str) -> None:
        self._bench, self._daemon, self._relay_url = bench, daemon, relay_url
        self._texts: dict[int, str] = {}

    def prepare(self, requests: list[mr.Request]) -> None:
        self._texts.update((id(request), request.relay_message(INBOX_SUB)) for request in requests)

    def __call__(self, requests: list[mr.Request]) -> None:
        texts = tuple(self._texts.pop(id(request), None) or request.relay_message(INBOX_SUB)
                      for request in requests)
        self._bench.tell(self._daemon, self._daemon.peers.nostr,
                         InjectRelayMessages(self._relay_url, texts))


def publisher(client: RelayClient) -> Callable[[list[mr.Request]], None]:
    def deliver(requests: list[mr.Request]) -> None:
        client.publish([request.event for request in requests])
    return deliver


# --- one case -------------------------------------------------------------------------------------


def _wait_replies(since_id: int, expected: int, timeout: float, gate: JournalGate,
                  decided_since: int, decisions: int) -> dict[str, float | int]:
    """Wait until every request is decided (the journal shows `decisions` more rows than
    `decided_since`; a decision's replies commit with it), then until no reply is left
    unaccepted by a relay; count the replies (`expected` of them) once the clock has stopped.

    The journal is watched by the gate's own process; the outbox's undone rows (the `done_at`
    index), for the short last stretch, every GATE_POLL_S from here: on simpleSystemBase this
    is the daemon's process, and counting every reply row instead (~1 ms a poll) took the GIL
    from the daemon's threads."""
    start = time.perf_counter()
    gate.wait_for(decided_since + decisions, timeout)
    committed_s = time.perf_counter() - start
    while mr.unpublished_replies(since_id) and time.perf_counter() - start <= timeout:
        time.sleep(GATE_POLL_S)  # polling the database (one query), not synchronising a test
    elapsed = time.perf_counter() - start
    committed, done = mr.count_replies(since_id)
    return {"committed": committed, "done": done,
            "committed_s": committed_s if committed >= expected else float("nan"),
            "done_s": elapsed}


def _deliver_windowed(deliver: Callable[[list[mr.Request]], None], requests: list[mr.Request],
                      since_id: int, window: int, timeout: float, gate: JournalGate,
                      in_flight: int = DEFAULT_IN_FLIGHT) -> dict[str, float | int]:
    """Deliver in chunks of `window`, each once the chunk `in_flight` chunks back is answered
    (at most `in_flight` chunks in flight, like clients that wait for their answers), then
    wait for all.

    A bounded backlog keeps the measurement about the daemon's steady rate instead of one
    burst's queueing (and a request never waits long enough to go stale). A chunk counts as
    answered once as many requests as it and the earlier ones hold are decided (the journal:
    each decision commits with its replies; `gate` watches it from a process of its own)."""
    start = time.perf_counter()
    decided_since = gate.newest()
    sent_before: list[int] = []  # requests in the chunks sent so far
    owed = 0
    for first in range(0, len(requests), window):
        chunk = requests[first:first + window]
        if len(sent_before) >= in_flight:
            need = sent_before[-in_flight]
            gate.wait_for(decided_since + need, timeout)
        deliver(chunk)
        owed += sum(mr.REPLY_MESSAGES[r.action] for r in chunk)
        sent_before.append(first + len(chunk))
    rest = timeout - (time.perf_counter() - start)
    waited = _wait_replies(since_id, owed, max(rest, 1.0), gate, decided_since, len(requests))
    total = time.perf_counter() - start
    offset = total - float(waited["done_s"])
    waited["done_s"] = total
    waited["committed_s"] = float(waited["committed_s"]) + offset
    return waited


def _mix(count: int, takes: list[str], cancels: list[tuple[str, mr.Party]], node_pubkey: str,
         transport: Transport, created_at: int) -> list[mr.Request]:
    """new-order, take-sell, cancel in turn (`count` in all)."""
    requests: list[mr.Request] = []
    take_iter, cancel_iter = iter(takes), iter(cancels)
    for index in range(count):
        turn = index % 3
        if turn == 0:
            requests.append(mr.new_order(node_pubkey, transport, created_at, index + 1))
        elif turn == 1:
            requests.append(mr.take_sell(next(take_iter), node_pubkey, transport, created_at,
                                         index + 1))
        else:
            order_id, maker = next(cancel_iter)
            requests.append(mr.cancel(order_id, maker, node_pubkey, transport, created_at,
                                      index + 1))
    return requests


def _setup_orders(count: int, deliver: Callable[[list[mr.Request]], None], node_pubkey: str,
                  transport: Transport, timeout: float,
                  gate: JournalGate) -> list[tuple[str, mr.Party]]:
    """`count` pending sell orders made through the same path, untimed: (order id, maker)."""
    makers = [mr.Party.fresh() for _ in range(count)]
    since = mr.outbox_high_water()
    now = int(time.time())
    _deliver_windowed(deliver, [mr.new_order(node_pubkey, transport, now + 600, i + 1, party)
                                for i, party in enumerate(makers)], since, 50, timeout, gate)
    by_maker = mr.orders_by_maker()
    made = [(by_maker[m.trade.public_hex], m) for m in makers if m.trade.public_hex in by_maker]
    if len(made) != count:
        raise harness.BenchSetupError(f"setup made {len(made)} of {count} orders")
    return made


def measure_relay_only(relay_url: str, requests: list[mr.Request], kind: int,
                       recipient: str, meter: harness.CpuMeter, timeout: float) -> dict[str, Any]:
    """The relay alone: publish the requests from one client, read them back from another."""
    reader, writer = RelayClient(relay_url), RelayClient(relay_url)
    try:
        reader.subscribe({"kinds": [kind], "#p": [recipient], "since": int(time.time()) - 3 * 86400})
        meter.start()
        start = time.perf_counter()
        writer.publish([request.event for request in requests])
        harness.wait_for(lambda: reader.events >= len(requests) and writer.oks >= len(requests),
                         timeout, "relay-only delivery", interval=0.005)
        elapsed = time.perf_counter() - start
        meter.stop()
    finally:
        reader.close()
        writer.close()
    return {"events": len(requests), "seconds": round(elapsed, 3),
            "events_per_s": round(len(requests) / elapsed, 1), "cpu": meter.by_label()}


REPO = Path(__file__).resolve().parents[1]
# the crypto limit's readings before and after a case differing by more than this share: the
# report says the machine's speed changed during the case (seen: up to 51 %)
UNSTEADY = 0.2
LimitProbe = Callable[[], dict[str, float]]


def crypto_limit_now(transport: Transport, requests: int, runs: int) -> dict[str, float]:
    """Benchmark (1) for `transport` now, in an interpreter of its own (nothing of the daemon's
    in it): its cold-cache ceilings in requests/s, by clock ("wall", "cpu")."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.crypto_limit", "--requests", str(requests),
         "--runs", str(runs), "--warmup", "1", "--transport", transport.value,
         "--no-primitives", "--json"],
        cwd=REPO, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    return {clock: crypto_limit.ceiling_requests_per_s(report, transport.value, "cold", clock)
            for clock in ("wall", "cpu")}


def run_case(transport: Transport, path: str, base: str, count: int, lead_s: int,
             cap: int, window: int = 50, in_flight: int = DEFAULT_IN_FLIGHT,
             limit_probe: LimitProbe | None = None) -> dict[str, Any]:
    """One daemon, one way in: setup orders, then the timed mix; the case's report. With a
    `limit_probe`, the crypto limit is measured right before and right after the timed window
    (`crypto_limits`: the two readings)."""
    with harness.Workbench() as bench:
        nodes = bench.lnsim(2)
        relay = bench.relay() if path == "relay" else None
        url = relay.url if relay is not None else bench.sink_relay()
        settings = harness.bench_settings(
            bench.root, url, nodes["mostro"], base,
            mostro={"transport": transport.value}, actors={"live_order_actor_cap": cap})
        node_pubkey = settings.nostr.public_key_hex()
        kind = 14 if transport is Transport.NIP44 else 1059
        timeout = 60.0 + count / 5
        report: dict[str, Any] = {"transport": transport.value, "path": path, "base": base,
                                  "requests": count}
        if relay is not None:
            other = mr.Party.fresh().trade.public_hex  # nobody the daemon listens for
            probe = [mr.new_order(other, transport, int(time.time()) + lead_s, i)
                     for i in range(count)]
            meter = harness.CpuMeter({**bench.labels, **_self_label(bench)})
            report["relay_only"] = measure_relay_only(url, probe, kind, other, meter, timeout)

        daemon = bench.daemon(settings)
        client = RelayClient(url) if relay is not None else None
        location = parse_database_url(settings.database.url)
        assert isinstance(location, SqliteLocation), "benchmark (2) runs on SQLite"
        gate = JournalGate(location.path)
        try:
            deliver = (publisher(client) if client is not None
                       else Injector(bench, daemon, url))
            per_kind = -(-count // 3)
            made = _setup_orders(2 * per_kind, deliver, node_pubkey, transport, timeout, gate)
            takes = [order_id for order_id, _ in made[:per_kind]]
            cancels = made[per_kind:]
            created_at = int(time.time()) + lead_s
            requests = _mix(count, takes, cancels, node_pubkey, transport, created_at)
            if isinstance(deliver, Injector):
                deliver.prepare(requests)
            expected = sum(mr.REPLY_MESSAGES[r.action] for r in requests)
            since = mr.outbox_high_water()
            meter = harness.CpuMeter(lambda: {**_self_label(bench), **bench.labelled_pids()},
                                     interval=0.5)
            limits = [limit_probe()] if limit_probe is not None else []
            meter.start()
            waited = _deliver_windowed(deliver, requests, since, window, timeout, gate, in_flight)
            meter.stop()
            if limit_probe is not None:
                limits.append(limit_probe())
            missing = mr.unanswered(requests, mr.replies_since(since))
        finally:
            gate.close()
            if client is not None:
                client.close()
        report.update({
            "mix": {action.value: sum(1 for r in requests if r.action is action)
                    for action in mr.FIRST_REPLY},
            "expected_replies": expected,
            "replies_committed": waited["committed"],
            "replies_published": waited["done"],
            "committed_s": round(waited["committed_s"], 3),
            "published_s": round(waited["done_s"], 3),
            "requests_per_s": round(count / waited["done_s"], 1),
            "committed_requests_per_s": round(count / waited["committed_s"], 1)
            if waited["committed_s"] == waited["committed_s"] else None,
            "unanswered": len(missing),
            "complete": waited["done"] >= expected and not missing,
            "cpu": meter.by_label(),
            "wall_s": round(meter.wall_s, 3),
            "live_order_actor_cap": cap,
            "window": window,
            "crypto_limits": limits,
        })
        report["bottleneck"] = bottleneck(report["cpu"])
        report["cpu_ms_per_request"] = cpu_ms_per_request(report["cpu"], count)
        return report


def _self_label(bench: harness.Workbench) -> dict[Any, str]:
    """The benchmark's own process; on simpleSystemBase the daemon shares it, and
    `Workbench.own_threads` splits it by thread instead."""
    import os

    return {} if bench.pumps else {os.getpid(): "bench (clients, polling)"}


def cpu_ms_per_request(cpu: dict[str, dict[str, float]], count: int) -> dict[str, float]:
    """CPU ms per timed request by process label, and `daemon` for all the daemon's together."""
    per = {label: round(1000 * entry["cpu_s"] / count, 2) for label, entry in cpu.items()}
    per["daemon"] = round(sum(v for label, v in per.items() if label.startswith("daemon:")), 2)
    return per


def bottleneck(cpu: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The single process closest to a full core (a Python process cannot use more than one)."""
    label, entry = max(cpu.items(), key=lambda item: item[1]["max_core_share"])
    return {"process": label, "core_share": entry["max_core_share"]}


# --- the whole benchmark ------------------------------------------------------------------------


def measure(count: int = DEFAULT_REQUESTS, transports: Sequence[Transport] = (Transport.NIP44,),
            paths: Sequence[str] = PATHS, bases: Sequence[str] = ("multiprocTCPBase",),
            lead_s: int = DEFAULT_LEAD_S, cap: int = 1000, crypto_requests: int = 300,
            crypto_runs: int = 3, window: int = 50,
            in_flight: int = DEFAULT_IN_FLIGHT) -> dict[str, Any]:
    machine = common.describe_machine(("coincurve", "cryptography", "thespian", "peewee"))
    cases = []
    for transport in transports:
        probe = partial(crypto_limit_now, transport, crypto_requests, crypto_runs)
        for base in bases:
            for path in paths:
                case = run_case(transport, path, base, count, lead_s, cap, window, in_flight,
                                limit_probe=probe)
                limits = case.pop("crypto_limits")
                ceiling = sum(limit["wall"] for limit in limits) / len(limits)
                case["crypto_limit_per_s"] = round(ceiling, 1)
                case["crypto_limit_before_after_per_s"] = [round(limit["wall"], 1)
                                                           for limit in limits]
                case["crypto_limit_cpu_per_s"] = round(
                    sum(limit["cpu"] for limit in limits) / len(limits), 1)
                case["ratio_to_crypto_limit"] = round(case["requests_per_s"] / ceiling, 4)
                cases.append(case)
    return {
        "benchmark": BENCHMARK_NAME,
        "machine": machine.as_dict(),
        "machine_line": machine.line(),
        "params": {"requests": count, "lead_s": lead_s, "live_order_actor_cap": cap,
                   "window": window, "in_flight": in_flight,
                   "crypto_requests": crypto_requests, "crypto_runs": crypto_runs},
        "cases": cases,
    }


def format_report(report: dict[str, Any]) -> str:
    lines = [report["machine_line"],
             f"intake throughput: {report['params']['requests']} requests per case "
             "(new-order / take-sell / cancel in turn), until every reply is committed and "
             "accepted by a relay", ""]
    rows = []
    for case in report["cases"]:
        rows.append([
            f"{case['transport']} {case['path']} {case['base'].replace('multiproc', '')}",
            f"{case['requests_per_s']:,.1f}",
            f"{case['committed_requests_per_s'] or float('nan'):,.1f}",
            "{:,.0f} ({:,.0f} / {:,.0f})".format(case["crypto_limit_per_s"],
                                                 *case["crypto_limit_before_after_per_s"]),
            f"{100 * case['ratio_to_crypto_limit']:.1f} %",
            f"{case['replies_published']}/{case['expected_replies']}",
            str(case["unanswered"]),
            f"{case['cpu_ms_per_request']['daemon']:.1f}",
            f"{case['bottleneck']['process']} {100 * case['bottleneck']['core_share']:.0f} %",
        ])
    lines.append(common.format_table(
        ["case", "req/s", "req/s committed", "crypto limit (before / after)", "ratio", "replies", "unanswered",
         "daemon CPU ms/req", "busiest process (core)"], rows))
    for case in report["cases"]:
        before, after = case["crypto_limit_before_after_per_s"]
        if abs(before - after) > UNSTEADY * min(before, after):
            lines.append(f"note: the crypto limit moved {100 * abs(before - after) / min(before, after):.0f} % "
                         f"during {case['transport']} {case['path']}: the machine's speed changed "
                         "within the case; its ratio is a poor figure, compare several runs")
    for case in report["cases"]:
        lines += ["", f"CPU during {case['transport']} {case['path']} {case['base']} "
                      f"({case['wall_s']} s):"]
        lines.append(_cpu_table(case["cpu"], case["requests"]))
        if "relay_only" in case:
            only = case["relay_only"]
            lines += [f"relay alone: {only['events']} events published and read back in "
                      f"{only['seconds']} s = {only['events_per_s']:,.1f} events/s"]
            lines.append(_cpu_table(only["cpu"]))
    return "\n".join(lines)


def _cpu_table(cpu: dict[str, dict[str, float]], requests: int | None = None) -> str:
    rows = [[label, f"{entry['cpu_s']:.2f}",
             f"{1000 * entry['cpu_s'] / requests:.2f}" if requests else "-",
             f"{100 * entry['max_core_share']:.0f} %", str(int(entry["processes"]))]
            for label, entry in sorted(cpu.items(), key=lambda item: -item[1]["cpu_s"])]
    return common.format_table(["process", "CPU s", "ms/req", "busiest (core)", "processes"],
                               rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.intake_throughput",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS)
    parser.add_argument("--transports", nargs="+", choices=("nip44", "gift-wrap"),
                        default=["nip44", "gift-wrap"])
    parser.add_argument("--paths", nargs="+", choices=PATHS, default=list(PATHS))
    parser.add_argument("--bases", nargs="+", choices=BASES, default=["multiprocTCPBase"])
    parser.add_argument("--cap", type=int, default=1000, help="[actors] live_order_actor_cap")
    parser.add_argument("--lead", type=int, default=DEFAULT_LEAD_S,
                        help="stamp requests this many seconds ahead (freshness rule)")
    parser.add_argument("--window", type=int, default=50,
                        help="requests per chunk")
    parser.add_argument("--in-flight", type=int, default=DEFAULT_IN_FLIGHT,
                        help="chunks sent and not yet answered, at most")
    parser.add_argument("--crypto-requests", type=int, default=300)
    parser.add_argument("--crypto-runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.requests < 3:
        parser.error("need --requests >= 3 (one of each kind)")
    report = measure(args.requests, [Transport(t) for t in args.transports], args.paths,
                     args.bases, args.lead, args.cap, args.crypto_requests, args.crypto_runs,
                     args.window, args.in_flight)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
