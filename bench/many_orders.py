"""Benchmark (4), many orders: memory and activation latency with 1,000 / 10,000 pending orders.

For each size the database is seeded with that many pending sell orders (one made through the real
order logic and commit, `OrderProcessor`, then cloned row by row with fresh ids and keys, as the
daemon would have written them), the daemon starts on it (a multiprocess thespian base, the
passivation cap `[actors] live_order_actor_cap`), and takers on a real relay take a random order
every few milliseconds. Figures:

* memory of the daemon's whole process tree (RSS and PSS summed from /proc; PSS splits pages
  shared by forked processes fairly, so it is what the tree really occupies), idle after start
  and after the takes, with the number of order-actor processes and the directory's live count;
* activation latency: take → first reply for an order whose actor is not live (it is created
  and loads the order from the database), in a burst (one take every few ms: activations queue
  behind each other) and one at a time; and for a second take on an order whose actor is still
  live (answered `cant-do` by the live actor), p50/p99;
* the daemon's start-up time (it re-schedules every live order's deadlines) and database size.

It must not assert on speed, and touches the database only to seed it before the daemon starts.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from adapters.nostr.protocol import Action, Message, Transport
from bench import common, harness
from bench import mostro_requests as mr
from bench.crowd import Crowd

BENCHMARK_NAME = "many_orders"
DEFAULT_SIZES = (1_000, 10_000)
DEFAULT_TAKES = 150
DEFAULT_INTERVAL_MS = 20.0
DEFAULT_CAP = 100


# --- seeding ------------------------------------------------------------------------------------


def seed_orders(settings: Any, count: int) -> float:
    """`count` pending sell orders in the database; returns the seconds it took."""
    from actors.messages import RuntimeConfig
    from actors.order_actor import OrderProcessor
    from actors.order_logic.model import ClientRequest
    from storage import migrate, models, open_database

    started = time.perf_counter()
    migrate(open_database(settings.database.url))
    maker = mr.Party.fresh()
    template_id = str(uuid.uuid4())
    message = Message(Action.NEW_ORDER, version=2, request_id=1, trade_index=1, id=template_id,
                      payload=mr.sell_order())
    processor = OrderProcessor(template_id, RuntimeConfig(settings, settings.database.url))
    processor.handle(ClientRequest(message, maker.trade.public_hex,
                                   maker.identity.public_hex), None)
    template = models.Order.get_by_id(template_id).__data__
    rows = []
    for _ in range(count - 1):
        row = dict(template)
        party = mr.Party.fresh()  # real keys: the daemon encrypts to the maker on a take
        trade = party.trade.public_hex
        row.update(id=str(uuid.uuid4()), creator_pubkey=trade, seller_pubkey=trade,
                   master_seller_pubkey=party.identity.public_hex, event_id=os.urandom(32).hex())
        rows.append(row)
    database = models.database_proxy
    with database.atomic():
        for first in range(0, len(rows), 500):
            models.Order.insert_many(rows[first:first + 500]).execute()
    return time.perf_counter() - started


# --- one size ------------------------------------------------------------------------------------


def _tree_memory(bench: harness.Workbench) -> dict[str, Any]:
    labelled = bench.labelled_pids()
    daemon = [pid for pid, label in labelled.items() if label.startswith("daemon:")]
    actors = [pid for pid in daemon if labelled[pid] == "daemon:OrderActor"]
    return {
        "daemon": harness.memory_of(daemon).as_dict(),
        "order_actors": harness.memory_of(actors).as_dict(),
        "everything": harness.memory_of([*labelled, os.getpid()]).as_dict(),
        "by_part": {label: harness.memory_of(
            [pid for pid, other in labelled.items() if other == label]).as_dict()
            for label in sorted(set(labelled.values())) if not label.startswith("daemon:")},
    }


def _live_orders(daemon: Any) -> int | None:
    from actors.messages import DirectoryStatus, StatusRequest

    status = daemon.system.ask(daemon.peers.directory, StatusRequest(), 10.0)
    return len(status.live_orders) if isinstance(status, DirectoryStatus) else None


def _latencies(crowd: Crowd, sent: dict[str, float], timeout: float) -> tuple[list[float], int]:
    """Take → first reply (ns) for every member in `sent`; and how many got none in time."""
    members = [crowd.members[key] for key in sent]
    try:
        crowd.wait(lambda: all(m.inbox for m in members), timeout, "replies to every take")
    except TimeoutError:
        pass
    samples = [(m.inbox[0][0] - sent[m.pubkey]) * 1e9 for m in members if m.inbox]
    return samples, sum(1 for m in members if not m.inbox)


def _stats_ms(samples: list[float]) -> dict[str, float] | None:
    if not samples:
        return None
    stats = common.summarize_ns(samples)
    return {"count": stats.count, "p50": round(stats.p50_us / 1000, 1),
            "p99": round(stats.p99_us / 1000, 1), "max": round(stats.max_us / 1000, 1)}


def run_size(orders: int, base: str, cap: int, takes: int, interval_ms: float, warm_takes: int,
             timeout: float, seed: int, isolated_takes: int = 10) -> dict[str, Any]:
    rng = random.Random(seed)
    with harness.Workbench() as bench:
        nodes = bench.lnsim(1)
        relay = bench.relay()
        settings = harness.bench_settings(bench.root, relay.url, nodes["mostro"], base,
                                          actors={"live_order_actor_cap": cap})
        seeded_s = seed_orders(settings, orders)
        order_ids = list(mr.orders_by_maker().values())
        started = time.perf_counter()
        daemon = bench.daemon(settings)
        start_s = time.perf_counter() - started
        time.sleep(1.0)  # let start-up messages (deadlines) drain before measuring idle memory
        idle = _tree_memory(bench)
        idle["live_order_actors"] = _live_orders(daemon)

        crowd = Crowd(relay.url, settings.nostr.public_key_hex(), Transport.NIP44).start()
        try:
            takers = crowd.add(takes + warm_takes + isolated_takes)
            crowd.listen()
            time.sleep(0.3)  # the relay registers the subscription before the takes arrive
            targets = rng.sample(order_ids, min(takes, len(order_ids)))
            cold_sent: dict[str, float] = {}
            for index, (taker, order_id) in enumerate(zip(takers, targets, strict=False)):
                cold_sent[taker.pubkey] = crowd.send(taker, Message(
                    Action.TAKE_SELL, request_id=index + 1, trade_index=1, id=order_id))
                time.sleep(interval_ms / 1000)  # the arrival rate under test
            cold, cold_missing = _latencies(crowd, cold_sent, timeout)
            # second takes on orders taken last, whose actors are live (cap permitting)
            warm_sent: dict[str, float] = {}
            recent = targets[-min(warm_takes, cap, len(targets)):]
            for index, (taker, order_id) in enumerate(zip(takers[takes:], recent, strict=False)):
                warm_sent[taker.pubkey] = crowd.send(taker, Message(
                    Action.TAKE_SELL, request_id=index + 1, trade_index=1, id=order_id))
                time.sleep(interval_ms / 1000)
            warm, warm_missing = _latencies(crowd, warm_sent, timeout)
            # isolated takes: one activation at a time, nothing queued in front of it
            isolated: list[float] = []
            spare = [o for o in order_ids if o not in set(targets)]
            for index, (taker, order_id) in enumerate(zip(
                    takers[takes + warm_takes:], rng.sample(spare, min(isolated_takes, len(spare))),
                    strict=False)):
                one = {taker.pubkey: crowd.send(taker, Message(
                    Action.TAKE_SELL, request_id=index + 1, trade_index=1, id=order_id))}
                samples, _ = _latencies(crowd, one, timeout)
                isolated.extend(samples)
            time.sleep(1.0)
            loaded = _tree_memory(bench)
            loaded["live_order_actors"] = _live_orders(daemon)
            answered = sum(1 for key in cold_sent
                           if crowd.members[key].first(Action.ADD_INVOICE))
        finally:
            crowd.close()
        database_mb = os.path.getsize(settings.database.url.removeprefix("sqlite:///")) / 2**20
        return {
            "orders": orders, "base": base, "live_order_actor_cap": cap,
            "seed_s": round(seeded_s, 2), "daemon_start_s": round(start_s, 2),
            "database_mb": round(database_mb, 1),
            "idle": idle, "after_takes": loaded,
            "takes": len(cold_sent), "interval_ms": interval_ms,
            "cold_take_ms": _stats_ms(cold), "cold_unanswered": cold_missing,
            "cold_answered_add_invoice": answered,
            "warm_take_ms": _stats_ms(warm), "warm_unanswered": warm_missing,
            "isolated_activation_ms": _stats_ms(isolated),
        }


def measure(sizes: Sequence[int] = DEFAULT_SIZES, bases: Sequence[str] = ("multiprocTCPBase",),
            cap: int = DEFAULT_CAP, takes: int = DEFAULT_TAKES,
            interval_ms: float = DEFAULT_INTERVAL_MS, warm_takes: int = 30,
            timeout: float = 120.0, seed: int = 38383, isolated_takes: int = 10) -> dict[str, Any]:
    machine = common.describe_machine(("thespian", "peewee"))
    results = [run_size(size, base, cap, takes, interval_ms, warm_takes, timeout, seed,
                        isolated_takes)
               for base in bases for size in sizes]
    return {
        "benchmark": BENCHMARK_NAME, "machine": machine.as_dict(),
        "machine_line": machine.line(),
        "params": {"sizes": list(sizes), "bases": list(bases), "cap": cap, "takes": takes,
                   "interval_ms": interval_ms, "warm_takes": warm_takes,
                   "isolated_takes": isolated_takes},
        "results": results,
    }


def format_report(report: dict[str, Any]) -> str:
    params = report["params"]
    lines = [report["machine_line"],
             f"many orders: {params['takes']} takes on random pending orders, one every "
             f"{params['interval_ms']} ms, then second takes on live ones; cap "
             f"{params['cap']} live order actors; memory in MB (PSS / RSS)", ""]
    rows = []
    for r in report["results"]:
        idle, loaded = r["idle"]["daemon"], r["after_takes"]["daemon"]
        actors = r["after_takes"]["order_actors"]
        cold, warm = r["cold_take_ms"] or {}, r["warm_take_ms"] or {}
        alone = r["isolated_activation_ms"] or {}
        rows.append([
            f"{r['orders']:,} {r['base'].replace('multiproc', '')}",
            f"{r['daemon_start_s']:.1f}",
            f"{idle['pss_mb']:.0f} / {idle['rss_mb']:.0f}",
            f"{loaded['pss_mb']:.0f} / {loaded['rss_mb']:.0f}",
            f"{actors['processes']} ({r['after_takes']['live_order_actors']})",
            f"{actors['pss_mb'] / actors['processes']:.1f}" if actors["processes"] else "-",
            f"{cold.get('p50', '-')} / {cold.get('p99', '-')}",
            f"{alone.get('p50', '-')} / {alone.get('p99', '-')}",
            f"{warm.get('p50', '-')} / {warm.get('p99', '-')}",
            f"{r['cold_unanswered']}+{r['warm_unanswered']}",
            f"{r['after_takes']['everything']['pss_mb']:.0f}",
        ])
    lines.append(common.format_table(
        ["orders base", "start s", "daemon idle", "daemon after takes", "order actors (live)",
         "PSS/actor", "burst take p50/p99 ms", "one activation p50/p99 ms",
         "live take p50/p99 ms", "unanswered",
         "whole tree PSS"], rows))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.many_orders",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--bases", nargs="+", choices=("multiprocTCPBase", "multiprocQueueBase"),
                        default=["multiprocTCPBase"])
    parser.add_argument("--cap", type=int, default=DEFAULT_CAP,
                        help="[actors] live_order_actor_cap")
    parser.add_argument("--takes", type=int, default=DEFAULT_TAKES)
    parser.add_argument("--warm-takes", type=int, default=30)
    parser.add_argument("--interval-ms", type=float, default=DEFAULT_INTERVAL_MS)
    parser.add_argument("--isolated-takes", type=int, default=10,
                        help="takes sent one at a time (activation without queueing)")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = measure(args.sizes, args.bases, args.cap, args.takes, args.interval_ms,
                     args.warm_takes, args.timeout, isolated_takes=args.isolated_takes)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
