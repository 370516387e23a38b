"""The Nostr adapter's check worker (`adapters.nostr.check_worker.CheckWorker`) with a real
worker process running the intake's pure checks (`actors.intake_precheck.IntakePrecheck`).

It must start only at the first batch, give one result per event in submission order across
batches, fall back to None results (logged once, nothing lost, nothing hanging) when the worker
dies, and never outlive its parent, even one killed with SIGKILL.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.intake_precheck import IntakePrecheck, Precheck
from adapters.nostr import transport
from adapters.nostr.check_worker import CheckWorker
from adapters.nostr.keys import generate_keypair
from adapters.nostr.protocol.content import build_content
from adapters.nostr.protocol.enums import Action, Transport
from adapters.nostr.protocol.payloads import Message
from config.examples import EXAMPLE_PUBKEY_HEX, example_settings
from tests.conftest import wait_until
from tests.fixtures.processes import gone

REPO = Path(__file__).resolve().parents[2]
WAIT = 20.0


def request(now: int) -> dict[str, Any]:
    """A conforming v2 take-sell addressed to the example node."""
    trade, identity = generate_keypair(), generate_keypair()
    message = Message(action=Action.TAKE_SELL, version=2, request_id=1, trade_index=1,
                      id=str(uuid.uuid4()))
    plaintext = build_content(message, Transport.NIP44, trade.secret_hex, identity.secret_hex)
    return transport.wrap_client_message(plaintext, trade.secret_hex, identity.secret_hex,
                                         EXAMPLE_PUBKEY_HEX, "nip44", now)


def factory() -> IntakePrecheck:
    return IntakePrecheck.from_settings(example_settings(mostro={"transport": "nip44"}))


class Collector:
    """What the link thread delivers, in delivery order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pairs: list[tuple[Any, Any]] = []

    def __call__(self, pairs: list[tuple[Any, Any]]) -> None:
        with self.lock:
            self.pairs.extend(pairs)

    def count(self) -> int:
        with self.lock:
            return len(self.pairs)


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def worker(collector: Collector) -> Iterator[CheckWorker]:
    checker = CheckWorker(factory(), collector)
    yield checker
    pid = checker.pid
    checker.stop()
    if pid is not None:
        wait_until(lambda: gone(pid), WAIT, "the worker to exit on stop")


def test_starts_at_the_first_batch_and_keeps_order_across_batches(worker, collector) -> None:
    assert worker.pid is None  # nothing spawned before an event arrives
    now = int(time.time())
    events = [request(now) for _ in range(12)]
    for first in range(0, 12, 4):  # three batches, submitted back to back
        worker.submit([(event["id"], event) for event in events[first:first + 4]])
    wait_until(lambda: collector.count() == 12, WAIT, "12 results")
    assert worker.pid is not None and not worker.failed
    assert [key for key, _ in collector.pairs] == [event["id"] for event in events]
    for (key, result), event in zip(collector.pairs, events, strict=True):
        assert isinstance(result, Precheck)
        assert result.event_id == key == event["id"]
        assert result.dropped is None and result.refused is None
        assert result.content is None  # left out across processes
        assert result.sender == event["pubkey"] and result.created_at == now


def test_a_burst_comes_back_in_pieces_in_order(worker, collector, monkeypatch) -> None:
    """More events than one round trip takes reach the consumer in pieces of at most
    MAX_BATCH, the first before the rest are checked, all in submission order."""
    from adapters.nostr import check_worker

    monkeypatch.setattr(check_worker, "MAX_BATCH", 4)
    deliveries: list[int] = []
    real_deliver = worker._deliver
    worker._deliver = lambda pairs: (deliveries.append(len(pairs)), real_deliver(pairs))
    now = int(time.time())
    events = [request(now) for _ in range(10)]
    worker.submit([(event["id"], event) for event in events])
    wait_until(lambda: collector.count() == 10, WAIT, "10 results")
    assert deliveries == [4, 4, 2]
    assert [key for key, _ in collector.pairs] == [event["id"] for event in events]
    assert all(result.event_id == key for key, result in collector.pairs)


def test_a_bad_event_gets_its_verdict_not_an_error(worker, collector, make_event) -> None:
    now = int(time.time())
    good, foreign = request(now), make_event(kind=1)
    worker.submit([("good", good), ("foreign", foreign), ("junk", {"id": 5})])
    wait_until(lambda: collector.count() == 3, WAIT)
    verdicts = dict(collector.pairs)
    assert verdicts["good"].dropped is None
    assert verdicts["foreign"].dropped == "transport:wrong_kind"
    assert verdicts["junk"].dropped == "malformed-event"


def test_a_killed_worker_falls_back_to_none_logged_once(worker, collector, caplog) -> None:
    now = int(time.time())
    worker.submit([("first", request(now))])
    wait_until(lambda: collector.count() == 1, WAIT)
    pid = worker.pid
    assert pid is not None and isinstance(collector.pairs[0][1], Precheck)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: gone(pid), WAIT, "the worker to die")
    with caplog.at_level(logging.ERROR, logger="adapters.nostr.check_worker"):
        worker.submit([("second", request(now)), ("third", request(now))])
        wait_until(lambda: collector.count() == 3, WAIT, "the batch after the kill")
        worker.submit([("fourth", request(now))])
        wait_until(lambda: collector.count() == 4, WAIT, "a later batch")
    assert [key for key, _ in collector.pairs] == ["first", "second", "third", "fourth"]
    assert [result for _, result in collector.pairs[1:]] == [None, None, None]
    assert worker.failed and worker.pid is None
    errors = [r for r in caplog.records if r.name == "adapters.nostr.check_worker"]
    assert len(errors) == 1 and "inline" in errors[0].getMessage()


def test_stop_delivers_what_was_submitted(collector) -> None:
    checker = CheckWorker(factory(), collector)
    now = int(time.time())
    checker.submit([(i, request(now)) for i in range(5)])
    checker.stop()
    assert [key for key, _ in collector.pairs] == [0, 1, 2, 3, 4]
    with pytest.raises(RuntimeError):
        checker.submit([(5, request(now))])


def test_stop_without_events_spawns_nothing(collector) -> None:
    checker = CheckWorker(factory(), collector)
    checker.stop()
    assert checker.pid is None and collector.count() == 0


PARENT = """
import sys, threading
from adapters.nostr.check_worker import CheckWorker
from actors.intake_precheck import IntakePrecheck
from config.examples import example_settings
done = threading.Event()
worker = CheckWorker(IntakePrecheck.from_settings(example_settings()), lambda pairs: done.set())
worker.submit([(1, {"id": "x"})])
done.wait(60)
print(worker.pid, flush=True)
sys.stdin.read()  # until killed
"""


def test_the_worker_does_not_outlive_a_parent_killed_with_sigkill() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], cwd=REPO, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        worker_pid = int(line)
        assert not gone(worker_pid)
        parent.kill()  # SIGKILL: no stop(), no atexit, only the socket's EOF
        parent.wait(WAIT)
        wait_until(lambda: gone(worker_pid), WAIT, "the orphaned worker to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
