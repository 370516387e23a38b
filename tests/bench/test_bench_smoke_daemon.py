"""Smoke runs of benchmarks (2)-(4) against a real daemon with tiny sizes.

Each runs the benchmark's own `measure` (real relay or null relay, LND simulator, actor processes)
and checks the report's shape and the benchmark's correctness checks: every request answered,
one winner per take storm, the passivation cap respected. Then no process the run started may be
left. Nothing here asserts on speed.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # bench/ is run from the repository root, not installed
    sys.path.insert(0, str(REPO))

from adapters.nostr.protocol import Transport  # noqa: E402
from bench import harness, intake_throughput, many_orders, take_storm  # noqa: E402

pytestmark = pytest.mark.multiproc


def _live_children() -> set[int]:
    return {pid for pid in harness.descendants(os.getpid()) if not harness._zombie(pid)}


@pytest.fixture(autouse=True)
def _no_process_left() -> Iterator[None]:
    """Every process the benchmark started is gone when it returns. Processes that were already
    there (a session-wide relay or PostgreSQL server of other tests) are not its to end."""
    before = _live_children()
    yield
    assert _live_children() - before == set()


# the process that runs the Nostr adapter (and so the intake) on each base
INTAKE_PROCESS = {
    "multiprocTCPBase": "daemon:NostrAdapter",
    "multiprocQueueBase": "daemon:NostrAdapter",
    "simpleSystemBase": "daemon:simple (all actors, one thread)",
}


@pytest.mark.parametrize("base", list(INTAKE_PROCESS))
def test_intake_throughput_answers_every_injected_request(base: str) -> None:
    report = intake_throughput.measure(
        count=6, transports=(Transport.NIP44,), paths=("inject",), bases=(base,),
        crypto_requests=3, crypto_runs=1, window=4)
    assert report["machine_line"].startswith("machine: ")
    [case] = report["cases"]
    assert case["base"] == base
    assert case["mix"] == {"new-order": 2, "take-sell": 2, "cancel": 2}
    assert case["expected_replies"] == 2 * 1 + 2 * 2 + 2 * 1
    assert case["replies_published"] == case["expected_replies"] == case["replies_committed"]
    assert case["unanswered"] == 0 and case["complete"]
    assert case["requests_per_s"] > 0 and 0 < case["ratio_to_crypto_limit"]
    assert case["crypto_limit_per_s"] > case["requests_per_s"] * case["ratio_to_crypto_limit"]
    assert not math.isnan(case["committed_s"]) and case["committed_s"] <= case["published_s"]
    assert INTAKE_PROCESS[base] in case["cpu"] and "sink-relay" in case["cpu"]
    # a figure for the daemon's processes together, but not a positive one: 6 requests can
    # cost the whole daemon less than the kernel's CPU tick (10 ms) between two samples
    assert case["cpu_ms_per_request"]["daemon"] >= 0
    assert case["bottleneck"]["process"] in case["cpu"]
    label = base.replace("multiproc", "")
    assert f"nip44 inject {label}" in intake_throughput.format_report(report)


def test_take_storm_has_one_winner_and_refunds_the_rest() -> None:
    report = take_storm.measure(sizes=(3,), runs=1, wallets_count=2, timeout=60)
    [run] = report["runs"]
    assert run["takers"] == 3 and run["ok"], run
    assert all(run["checks"].values())
    assert run["losers_held_then_refunded"] + run["losers_refused_unheld"] == 2
    take = run["take_to_bond_invoice_ms"]
    assert 0 < take["p50"] <= take["p99"] <= take["max"]
    assert run["accepted_to_winner_next_ms"] is not None
    assert run["accepted_to_last_cancel_ms"] is not None
    assert "N=3 #1" in take_storm.format_report(report)


def test_many_orders_respects_the_cap_and_answers_every_take() -> None:
    report = many_orders.measure(sizes=(30,), cap=3, takes=5, interval_ms=1, warm_takes=2,
                                 timeout=60, isolated_takes=2)
    [result] = report["results"]
    assert result["orders"] == 30 and result["takes"] == 5
    assert result["cold_unanswered"] == 0 and result["cold_answered_add_invoice"] == 5
    assert result["warm_unanswered"] == 0 and result["warm_take_ms"]["count"] == 2
    assert result["idle"]["live_order_actors"] == 0
    assert 0 < result["after_takes"]["live_order_actors"] <= 3
    assert result["after_takes"]["order_actors"]["processes"] <= 3 + 1  # one may be exiting
    assert result["idle"]["daemon"]["processes"] >= 6  # admin, logger, 5 top-level actors
    assert result["idle"]["daemon"]["pss_mb"] > 0
    assert result["cold_take_ms"]["p50"] <= result["cold_take_ms"]["p99"]
    assert result["isolated_activation_ms"]["count"] == 2
    assert "30 TCPBase" in many_orders.format_report(report)
