"""Benchmark (3), take storm: N takers take one sell order with bonds on and pay them at once.

A real daemon, a real relay and the LND simulator. A maker publishes a sell order; N takers
(each a fresh identity and trade key, all in one `bench.crowd.Crowd`) send `take-sell` together
and each gets a bond hold invoice (`pay-bond-invoice`); then all N pay from a few simulated
wallets at the same instant (`bench.payers.Payers`: one asyncio loop starts every payment's
stream in the same iteration). The first bond the node's
LND holds wins; every other bond is cancelled and its taker told `canceled`.

Figures per run: take → `pay-bond-invoice` latency (p50/p99), and from the first ACCEPTED (the
first payer's stream reporting its HTLC held) to the winner's next message (`add-invoice`), to the
last loser's `canceled`, to the last loser's refund (its payment stream `FAILED`), and to the last
HTLC held (how long the simulator took to take every payment: no refund of a held HTLC can come
before it), with the daemon's reaction after it (last held → last refund). With a workbench, the
daemon's CPU seconds (by actor, with the simulator, relay and this process alongside) for the
payment phase and for the whole run, until the daemon is quiet again. Every run
checks the outcome: exactly one taker asked for a payout invoice, N−1 told `canceled`, exactly one
bond payment still held and N−1 failed (refunded or refused, never settled), and the wallets'
total down by exactly one bond.

It must not assert on speed or reach into the daemon's actors; the database is read only to show
the bonds' final states.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from adapters.lnd.protos import lightning_pb2
from adapters.lnd.sim.wallet import Wallet
from adapters.nostr.protocol import Action, Message, PaymentRequest, Transport
from bench import common, harness
from bench import mostro_requests as mr
from bench.crowd import Crowd, TimedPayment
from bench.payers import Payers

BENCHMARK_NAME = "take_storm"
DEFAULT_SIZES = (10, 50, 200)
DEFAULT_WALLETS = 8
BOND_SETTINGS = {"enabled": True, "apply_to": "take", "amount_pct": 0.01,
                 "base_amount_sats": 1000}


def _balance(wallet: Wallet) -> int:
    reply = wallet.client.lightning.ChannelBalance(lightning_pb2.ChannelBalanceRequest(),
                                                   timeout=10)
    return int(reply.local_balance.msat) if reply.local_balance.msat else int(
        reply.local_balance.sat) * 1000


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _daemon_cpu(meter: harness.CpuMeter) -> dict[str, Any]:
    """CPU seconds the daemon's processes used while `meter` ran: total and by actor."""
    labels = meter.by_label()
    by_label = {label.removeprefix("daemon:"): entry["cpu_s"]
                for label, entry in labels.items() if label.startswith("daemon:")}
    others = {label: entry["cpu_s"] for label, entry in labels.items()
              if not label.startswith("daemon:")}
    return {"total_s": round(sum(by_label.values()), 3), "by_actor_s": by_label,
            "others_s": others, "wall_s": round(meter.wall_s, 3)}


def _wait_until_quiet(bench: harness.Workbench, timeout: float, window: float = 0.5,
                     idle_share: float = 0.05) -> float | None:
    """Seconds until the daemon's processes used less than `idle_share` of a core over a
    `window` twice in a row (the order actor may still be working through the losers' late
    events after every refund: its CPU belongs to the run), or None on timeout."""
    start = time.monotonic()

    def used() -> float:
        return sum(harness.cpu_seconds(pid) for pid in bench.daemon_pids())

    quiet, last = 0, used()
    while time.monotonic() - start < timeout:
        time.sleep(window)
        now = used()
        quiet = quiet + 1 if now - last < idle_share * window else 0
        last = now
        if quiet >= 2:
            return round(time.monotonic() - start - 2 * window, 2)
    return None


def run_storm(crowd: Crowd, wallets: list[Wallet], payers: Payers, takers_count: int,
              timeout: float, bench: harness.Workbench | None = None) -> dict[str, Any]:
    """One order, `takers_count` takers; the run's figures and outcome checks. With `bench`,
    the daemon's CPU time is measured for the whole run (until the daemon is quiet again) and
    for the payment phase (from starting the payments to every loser's payment ended)."""
    run_meter = pay_meter = None
    if bench is not None:
        run_meter = harness.CpuMeter(lambda: {**bench.labelled_pids(), os.getpid(): "bench"})
        run_meter.start()
    maker = crowd.add(1)[0]
    takers = crowd.add(takers_count)
    crowd.listen()
    time.sleep(0.2)  # let the relay register the subscription before anyone writes
    crowd.send(maker, Message(Action.NEW_ORDER, request_id=1, trade_index=1,
                              payload=mr.sell_order()))
    stamp, created = crowd.wait(lambda: maker.first(Action.NEW_ORDER), timeout, "new-order ack")
    order_id = created.id
    assert order_id is not None

    # all takes at once
    sent: dict[str, float] = {}
    for index, taker in enumerate(takers):
        sent[taker.pubkey] = crowd.send(taker, Message(
            Action.TAKE_SELL, request_id=index + 1, trade_index=1, id=order_id))
    crowd.wait(lambda: all(t.first(Action.PAY_BOND_INVOICE, PaymentRequest) for t in takers),
               timeout, f"{takers_count} bond invoices")
    invoices: dict[str, str] = {}
    take_to_invoice: list[float] = []
    for taker in takers:
        arrived, message = taker.first(Action.PAY_BOND_INVOICE, PaymentRequest)  # type: ignore[misc]
        invoices[taker.pubkey] = message.payload.invoice
        take_to_invoice.append((arrived - sent[taker.pubkey]) * 1e9)
    before = sum(_balance(w) for w in wallets)

    # all pay at once, from a few wallets (taker i from wallet i mod W), as coroutines on one
    # loop: payer threads would spend this process's CPU on wake-ups and blur the timestamps
    payments: dict[str, TimedPayment] = {
        taker.pubkey: TimedPayment(invoices[taker.pubkey]) for taker in takers}
    if bench is not None:
        pay_meter = harness.CpuMeter(lambda: {**bench.labelled_pids(), os.getpid(): "bench"})
        pay_meter.start()
    payers.pay_all([payments[taker.pubkey] for taker in takers])

    def settled() -> bool:
        asked = [t for t in takers if t.first(Action.ADD_INVOICE)]
        cancelled = [t for t in takers if t.first(Action.CANCELED)]
        return len(asked) + len(cancelled) >= takers_count

    outcome_error = None
    try:
        crowd.wait(settled, timeout, "every taker answered")
    except TimeoutError as error:
        outcome_error = str(error)
    winners = [t for t in takers if t.first(Action.ADD_INVOICE)]
    losers = [t for t in takers if t.first(Action.CANCELED)]

    # the losers' payments end (refunded or refused); the winner's stays held
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ended = [p for key, p in list(payments.items()) if p.final is not None]
        if len(ended) >= takers_count - 1:
            break
        time.sleep(0.01)  # payment streams are read on the payers' loop
    if pay_meter is not None:
        pay_meter.stop()
    time.sleep(0.2)  # a second ending (a wrong settle or refund) would show up by now
    held = [key for key, p in payments.items() if p.final is None and "IN_FLIGHT" in p.statuses]
    failed = [key for key, p in payments.items() if p.final == "FAILED"]
    succeeded = [key for key, p in payments.items() if p.final == "SUCCEEDED"]
    after = sum(_balance(w) for w in wallets)
    accepted = [p.statuses["IN_FLIGHT"] for p in payments.values() if "IN_FLIGHT" in p.statuses]
    first_accepted = min(accepted) if accepted else None
    winner_next = winners[0].first(Action.ADD_INVOICE)[0] if len(winners) == 1 else None  # type: ignore[index]
    cancel_times = [t.first(Action.CANCELED)[0] for t in losers]  # type: ignore[index]
    refund_times = [p.statuses["FAILED"] for key, p in payments.items()
                    if p.final == "FAILED" and "IN_FLIGHT" in p.statuses]
    # How long each loser's HTLC stayed held after it could have been refunded: from the later
    # of the winner's HTLC held (the lock cannot come before it) and its own, to its refund.
    # The simulator takes seconds to hold 200 HTLCs; this leaves that out, the daemon's part in.
    winner_payment = payments.get(winners[0].pubkey) if len(winners) == 1 else None
    winner_held = winner_payment.statuses.get("IN_FLIGHT") if winner_payment else None
    stuck_ms = sorted((p.statuses["FAILED"] - max(p.statuses["IN_FLIGHT"], winner_held)) * 1000
                      for p in payments.values()
                      if winner_held is not None and p.final == "FAILED" and "IN_FLIGHT" in p.statuses)
    bond_msat = _bond_msat(invoices)
    checks = {
        "one_winner": len(winners) == 1,
        "losers_cancelled": len(losers) == takers_count - 1
        and not set(map(id, winners)) & set(map(id, losers)),
        "one_bond_held": len(held) == 1 and len(winners) == 1 and held[0] == winners[0].pubkey,
        "losers_refunded": len(failed) == takers_count - 1 and not succeeded,
        "wallets_down_one_bond": before - after == bond_msat,
    }
    stats = common.summarize_ns(take_to_invoice)

    def since_first(stamp: float | None) -> float | None:
        return None if stamp is None or first_accepted is None else stamp - first_accepted

    quiet_after = None
    if run_meter is not None and bench is not None:
        quiet_after = _wait_until_quiet(bench, timeout)
        run_meter.stop()
    return {
        "takers": takers_count,
        "daemon_cpu_run": _daemon_cpu(run_meter) if run_meter is not None else None,
        "daemon_cpu_payments": _daemon_cpu(pay_meter) if pay_meter is not None else None,
        "daemon_quiet_after_s": quiet_after,
        "order_id": order_id,
        "take_to_bond_invoice_ms": {"p50": round(stats.p50_us / 1000, 1),
                                    "p99": round(stats.p99_us / 1000, 1),
                                    "max": round(stats.max_us / 1000, 1)},
        "accepted_to_winner_next_ms": _ms(since_first(winner_next)),
        "accepted_to_last_cancel_ms": _ms(since_first(max(cancel_times) if cancel_times else None)),
        "accepted_to_last_refund_ms": _ms(since_first(max(refund_times) if refund_times else None)),
        # the simulator's side: when the last HTLC was held (all payers' HTLCs arriving), and
        # the daemon's reaction after it: last HTLC held → last loser refunded
        "accepted_to_last_held_ms": _ms(since_first(max(accepted) if accepted else None)),
        "last_held_to_last_refund_ms": _ms(max(refund_times) - max(accepted)
                                           if refund_times and accepted else None),
        "loser_held_after_lock_ms": {
            "p50": round(stuck_ms[len(stuck_ms) // 2], 1) if stuck_ms else None,
            "max": round(stuck_ms[-1], 1) if stuck_ms else None},
        "losers_held_then_refunded": len(refund_times),
        "losers_refused_unheld": len(failed) - len(refund_times),
        "checks": checks,
        "ok": all(checks.values()) and outcome_error is None,
        "error": outcome_error,
    }


def _bond_msat(invoices: dict[str, str]) -> int:
    """The bond amount from one of the bolt11 strings (all bonds of one order are equal)."""
    from adapters.lnd.sim.payreq import decode_payreq

    decoded = decode_payreq(next(iter(invoices.values())))
    return int(decoded.amount_msat)


def measure(sizes: Sequence[int] = DEFAULT_SIZES, runs: int = 1, wallets_count: int = DEFAULT_WALLETS,
            base: str = "multiprocTCPBase", transport: Transport = Transport.NIP44,
            timeout: float = 120.0) -> dict[str, Any]:
    machine = common.describe_machine(("coincurve", "cryptography", "thespian", "grpcio"))
    results: list[dict[str, Any]] = []
    with harness.Workbench() as bench:
        nodes = bench.lnsim(wallets_count)
        relay = bench.relay()
        settings = harness.bench_settings(
            bench.root, relay.url, nodes["mostro"], base, mostro={"transport": transport.value},
            anti_abuse_bond=BOND_SETTINGS)
        bench.daemon(settings)
        wallet_nodes = [n for name, n in sorted(nodes.items()) if name != "mostro"]
        wallets = [Wallet(n.address, n.tls_cert_path, n.macaroon_path) for n in wallet_nodes]
        payers = Payers(wallet_nodes)
        crowd = Crowd(relay.url, settings.nostr.public_key_hex(), transport).start()
        try:
            for size in sizes:
                for run in range(runs):
                    result = run_storm(crowd, wallets, payers, size, timeout, bench)
                    result["run"] = run + 1
                    results.append(result)
        finally:
            crowd.close()
            payers.close()
            for wallet in wallets:
                wallet.close()
    return {
        "benchmark": BENCHMARK_NAME,
        "machine": machine.as_dict(),
        "machine_line": machine.line(),
        "params": {"sizes": list(sizes), "runs": runs, "wallets": wallets_count, "base": base,
                   "transport": transport.value, "bond": BOND_SETTINGS},
        "runs": results,
    }


def format_report(report: dict[str, Any]) -> str:
    params = report["params"]
    lines = [report["machine_line"],
             f"take storm: one sell order, N takers with bonds paying at once from "
             f"{params['wallets']} wallets ({params['base']}, {params['transport']}); "
             "times in ms from the first ACCEPTED", ""]
    rows = []
    for run in report["runs"]:
        take = run["take_to_bond_invoice_ms"]
        rows.append([
            f"N={run['takers']} #{run['run']}", f"{take['p50']:.0f}", f"{take['p99']:.0f}",
            _cell(run["accepted_to_winner_next_ms"]), _cell(run["accepted_to_last_cancel_ms"]),
            _cell(run["accepted_to_last_refund_ms"]), _cell(run.get("accepted_to_last_held_ms")),
            _cell(run.get("last_held_to_last_refund_ms")),
            _cell((run.get("loser_held_after_lock_ms") or {}).get("p50")),
            _cell((run.get("loser_held_after_lock_ms") or {}).get("max")),
            f"{run['losers_held_then_refunded']}+{run['losers_refused_unheld']}",
            _cpu_cell(run.get("daemon_cpu_payments")), _cpu_cell(run.get("daemon_cpu_run")),
            "OK" if run["ok"] else "FAILED " + ",".join(
                name for name, good in run["checks"].items() if not good),
        ])
    lines.append(common.format_table(
        ["run", "take→bond p50", "p99", "→winner next", "→last canceled", "→last refund",
         "→last held", "last held→last refund", "loser held after lock p50", "max",
         "losers held+refused", "daemon CPU s (payments)", "(whole run)", "outcome"], rows))
    for run in report["runs"]:
        cpu = run.get("daemon_cpu_payments")
        if cpu:
            busiest = sorted(cpu["by_actor_s"].items(), key=lambda kv: -kv[1])[:5]
            lines.append(f"N={run['takers']} #{run['run']} payment phase CPU by actor: " + ", ".join(
                f"{name} {seconds:.2f}" for name, seconds in busiest) + "; others: " + ", ".join(
                f"{name} {seconds:.2f}" for name, seconds in cpu.get("others_s", {}).items())
                + f"; daemon quiet {run.get('daemon_quiet_after_s')} s after the last refund")
    return "\n".join(lines)


def _cpu_cell(cpu: dict[str, Any] | None) -> str:
    return "-" if not cpu else f"{cpu['total_s']:.2f}"


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.take_storm",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--runs", type=int, default=1, help="runs per size")
    parser.add_argument("--wallets", type=int, default=DEFAULT_WALLETS,
                        help="simulated wallets the takers pay from (in turn)")
    parser.add_argument("--base", choices=("multiprocTCPBase", "multiprocQueueBase"),
                        default="multiprocTCPBase")
    parser.add_argument("--transport", choices=("nip44", "gift-wrap"), default="nip44")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report = measure(args.sizes, args.runs, args.wallets, args.base, Transport(args.transport),
                     args.timeout)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
