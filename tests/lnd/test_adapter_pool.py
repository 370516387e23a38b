"""The LightningAdapter's unary calls run several at once (workers.LoopPool), over real gRPC
against the simulator: a slow LND no longer makes N cancels take N call times, calls for one
hash still run in the order asked (a settle never overtakes a cancel), and the answers to a
`reply_together` batch come back grouped in `Answers`."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.lnd import workers
from adapters.lnd.actor import UNARY_IN_FLIGHT, LightningAdapter
from adapters.lnd.client import AioLndClient
from adapters.lnd.errors import ErrorKind, LndError
from adapters.lnd.messages import (
    AddHoldInvoice,
    Answers,
    Batch,
    CancelHoldInvoice,
    Configure,
    EffectDone,
    EffectFailed,
    InvoiceState,
    LightningStatus,
    NodeInfo,
    Outcome,
    SettleHoldInvoice,
)
from tests.conftest import wait_until
from tests.lnd.adapter_kit import (
    Inbox,
    add_invoice,
    effect,
    lnd_client,
    new_preimage,
    state_is,
)

DELAY_MS = 400
CONCURRENT = min(UNARY_IN_FLIGHT, 8)  # cancels made at once in the test
CERT = Path(__file__).resolve()  # any readable file: the link fails before TLS matters


def answered(inbox: Inbox) -> list[Any]:
    """Every EffectDone/EffectFailed received, alone or inside Answers, in arrival order."""
    found: list[Any] = []
    for message in inbox.got:
        if isinstance(message, Answers):
            found.extend(message.messages)
        elif isinstance(message, EffectDone | EffectFailed):
            found.append(message)
    return found


def held_invoice(asys, adapter, inbox, lnsim) -> tuple[str, str]:
    """A hold invoice a wallet paid (ACCEPTED): (preimage, hash)."""
    preimage, payment_hash, bolt11 = add_invoice(asys, adapter, inbox)
    lnsim.sim.ledger.send_payment(lnsim.wallets[0].name, payment_request=bolt11)
    inbox.wait_for(state_is(payment_hash, InvoiceState.ACCEPTED))
    return preimage, payment_hash


def test_cancels_run_concurrently_on_a_slow_node(asys, adapter, inbox, lnsim):
    hashes = [add_invoice(asys, adapter, inbox)[1] for _ in range(CONCURRENT)]
    lnsim.sim.delay("CancelInvoice", DELAY_MS)
    started = time.monotonic()
    asys.tell(adapter, Batch(tuple(CancelHoldInvoice(h, f"c{i}") for i, h in enumerate(hashes))))
    wanted = {f"c{i}" for i in range(len(hashes))}

    def cancels() -> list[Any]:
        return [a for a in answered(inbox) if a.effect_id in wanted]

    inbox.until(lambda: len(cancels()) == len(hashes), timeout=CONCURRENT * DELAY_MS / 1000 + 5)
    elapsed = time.monotonic() - started
    assert all(isinstance(a, EffectDone) and a.outcome is Outcome.CANCELED for a in cancels())
    # one after another they would take CONCURRENT × DELAY_MS = 3.2 s
    assert elapsed < CONCURRENT * DELAY_MS / 1000 / 2, elapsed
    for payment_hash in hashes:
        inbox.wait_for(state_is(payment_hash, InvoiceState.CANCELED))


def test_a_settle_never_overtakes_a_slow_cancel_of_the_same_hash(asys, adapter, inbox, lnsim):
    preimage, payment_hash = held_invoice(asys, adapter, inbox, lnsim)
    other_preimage, other_hash = held_invoice(asys, adapter, inbox, lnsim)
    lnsim.sim.delay("CancelInvoice", DELAY_MS)
    asys.tell(adapter, CancelHoldInvoice(payment_hash, "cancel"))
    asys.tell(adapter, SettleHoldInvoice(preimage, "settle"))          # same hash: waits
    asys.tell(adapter, SettleHoldInvoice(other_preimage, "settle-other"))  # another: does not
    inbox.wait_for(effect("settle"), timeout=10)
    order = [a.effect_id for a in answered(inbox) if a.effect_id in ("cancel", "settle",
                                                                     "settle-other")]
    assert order == ["settle-other", "cancel", "settle"]
    by_id = {a.effect_id: a for a in answered(inbox)}
    assert isinstance(by_id["cancel"], EffectDone) and by_id["cancel"].outcome is Outcome.CANCELED
    refused = by_id["settle"]  # the invoice was cancelled first: the settle cannot happen
    assert isinstance(refused, EffectFailed) and not refused.retryable, refused
    inbox.wait_for(state_is(payment_hash, InvoiceState.CANCELED))
    inbox.wait_for(state_is(other_hash, InvoiceState.SETTLED))
    assert InvoiceState.SETTLED not in inbox.states(payment_hash)


def test_repeated_cancels_of_one_hash_are_outcomes_in_order(asys, adapter, inbox, lnsim):
    _, payment_hash = held_invoice(asys, adapter, inbox, lnsim)
    asys.tell(adapter, Batch(tuple(CancelHoldInvoice(payment_hash, f"again{i}") for i in range(4))))
    inbox.until(lambda: len([a for a in answered(inbox) if a.effect_id.startswith("again")]) == 4)
    again = [a for a in answered(inbox) if a.effect_id.startswith("again")]
    assert [a.effect_id for a in again] == [f"again{i}" for i in range(4)]  # in the order asked
    assert all(isinstance(a, EffectDone) and a.outcome in (
        Outcome.CANCELED, Outcome.ALREADY_CANCELED) for a in again), again


def test_a_cancelled_hash_is_not_cancelled_again(asys, adapter, inbox, lnsim):
    """Cancelling is final: after a cancel of H succeeded, another cancel of H is answered
    ALREADY_CANCELED without a call (LND now refuses every cancel, and this one still works)."""
    _, payment_hash = held_invoice(asys, adapter, inbox, lnsim)
    _, other_hash, _ = add_invoice(asys, adapter, inbox)
    asys.tell(adapter, CancelHoldInvoice(payment_hash, "first"))
    first = inbox.wait_for(effect("first"))
    assert isinstance(first, EffectDone) and first.outcome is Outcome.CANCELED
    lnsim.sim.refuse("CancelInvoice")
    asys.tell(adapter, CancelHoldInvoice(payment_hash.upper(), "again"))
    again = inbox.wait_for(effect("again"))
    assert again == EffectDone("again", Outcome.ALREADY_CANCELED, payment_hash)
    asys.tell(adapter, CancelHoldInvoice(other_hash, "other"))  # a real call: refused
    refused = inbox.wait_for(effect("other"))
    assert isinstance(refused, EffectFailed) and refused.retryable


def test_cancels_of_a_hash_in_flight_share_its_call(asys, adapter, inbox, lnsim):
    """A cancel that arrives while one of the same hash runs gets that call's answer: LND
    refuses the one call made, so both fail (and are retried by the owner) and the next
    cancel, after the refusal, makes a call of its own."""
    _, payment_hash = held_invoice(asys, adapter, inbox, lnsim)
    lnsim.sim.refuse("CancelInvoice", count=1)
    lnsim.sim.delay("CancelInvoice", DELAY_MS)
    asys.tell(adapter, CancelHoldInvoice(payment_hash, "running"))
    asys.tell(adapter, CancelHoldInvoice(payment_hash, "joined"))
    inbox.wait_for(effect("joined"), timeout=5)
    first_two = [a for a in answered(inbox) if a.effect_id in ("running", "joined")]
    assert [a.effect_id for a in first_two] == ["running", "joined"]
    assert all(isinstance(a, EffectFailed) and a.retryable for a in first_two), first_two
    asys.tell(adapter, CancelHoldInvoice(payment_hash, "retry"))
    retried = inbox.wait_for(effect("retry"), timeout=5)
    assert isinstance(retried, EffectDone) and retried.outcome is Outcome.CANCELED
    inbox.wait_for(state_is(payment_hash, InvoiceState.CANCELED))


def test_reply_together_batch_answers_in_answers_messages(asys, adapter, inbox, lnsim):
    hashes = [new_preimage()[1] for _ in range(6)]
    adds = tuple(AddHoldInvoice(h, 1000 + i, "b", 3600, 144, i) for i, h in enumerate(hashes))
    asys.tell(adapter, Batch(adds + (CancelHoldInvoice(hashes[0], "cancel-0"),),
                             reply_together=True))
    inbox.until(lambda: len(answered(inbox)) == 7)
    # answers ready at the same wake-up travel together (a lone one travels alone)
    grouped = [m for m in inbox.got if isinstance(m, Answers)]
    assert grouped and max(len(g.messages) for g in grouped) > 1
    ids = [a.effect_id for a in answered(inbox)]
    assert sorted(ids, key=str) == sorted([*range(6), "cancel-0"], key=str)  # each once
    assert ids.index("cancel-0") > ids.index(0)  # the cancel of hash 0 waited for its add
    assert all(a.payment_request for a in answered(inbox) if a.effect_id in range(6))
    inbox.wait_for(state_is(hashes[0], InvoiceState.CANCELED))
    # a batch without reply_together still answers one message per effect
    plain = new_preimage()[1]
    asys.tell(adapter, Batch((AddHoldInvoice(plain, 1000, "p", 3600, 144, "plain"),)))
    assert isinstance(inbox.wait_for(effect("plain")), EffectDone)


def test_not_ready_adapter_answers_a_batch_at_once(asys):
    """While LND cannot be reached, every effect of a batch fails (retryable), in one Answers."""
    inbox = Inbox(asys)
    address = asys.createActor(LightningAdapter)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status = asys.ask(address, Configure(f"127.0.0.1:{port}", str(CERT), str(CERT), "regtest",
                                         rpc_timeout_seconds=0.5), timedelta(seconds=10))
    assert isinstance(status, LightningStatus) and not status.connected, status
    hashes = [new_preimage()[1] for _ in range(3)]
    asys.tell(address, Batch(tuple(CancelHoldInvoice(h, f"n{i}") for i, h in enumerate(hashes)),
                             reply_together=True))
    got = inbox.wait_for(lambda m: isinstance(m, Answers | EffectFailed), timeout=5)
    assert isinstance(got, Answers), got
    assert [a.effect_id for a in got.messages] == ["n0", "n1", "n2"]
    assert all(isinstance(a, EffectFailed) and a.retryable for a in got.messages)


# ------------------------------------------------------------------ the pool itself
@pytest.fixture
def loop_thread():
    thread = workers.LoopThread("test-lnd-loop")
    yield thread
    thread.close()


def test_pool_keeps_one_keys_calls_in_order_and_runs_other_keys_alongside(lnsim, loop_thread):
    """Real gRPC calls on the pool: GetInfo calls on one key never overlap (each sees the
    previous one's end), while another key's call runs meanwhile."""
    client = lnd_client(lnsim.mostro)
    aio = AioLndClient(client)
    lnsim.sim.delay("GetInfo", 200)
    results: list[Any] = []
    running: dict[str, int] = {"a": 0}
    overlap: list[str] = []

    def call(key: str, label: str) -> Any:
        async def run() -> Any:  # every step on the loop's one thread: no lock needed
            if key == "a" and running["a"]:
                overlap.append(label)
            running[key] = running.get(key, 0) + 1
            try:
                return label, await aio.get_info()
            finally:
                running[key] -= 1
        return run

    pool = workers.LoopPool(loop_thread.loop, results.append, limit=4)
    try:
        started = time.monotonic()
        for index in range(3):
            pool.submit("a", f"a{index}", None, call("a", f"a{index}"))
        pool.submit("b", "b0", None, call("b", "b0"))
        wait_until(lambda: len(results) == 4 and not pool.busy, timeout=10)
        elapsed = time.monotonic() - started
    finally:
        client.close()
    assert overlap == []
    labels = [r.request for r in results]
    assert [label for label in labels if label.startswith("a")] == ["a0", "a1", "a2"]
    assert labels.index("b0") < labels.index("a1")  # b did not wait behind a's queue
    assert all(isinstance(r.result[1], NodeInfo) and r.result[1].alias for r in results)
    assert elapsed < 3 * 0.2 + 0.5 + 0.5  # a's three in a row; b alongside


def test_pool_runs_no_more_than_its_limit_at_once(loop_thread):
    results: list[Any] = []
    state = {"running": 0, "most": 0}
    three_running = asyncio.Event()  # a pool running fewer than 3 at once never sets it

    async def slow() -> str:
        state["running"] += 1
        state["most"] = max(state["most"], state["running"])
        if state["running"] == 3:
            three_running.set()
        await three_running.wait()
        state["running"] -= 1
        return "done"

    pool = workers.LoopPool(loop_thread.loop, results.append, limit=3)
    for index in range(10):
        pool.submit(f"k{index}", index, None, slow)
    wait_until(lambda: len(results) == 10 and not pool.busy, timeout=5)
    assert state["most"] == 3
    assert sorted(r.request for r in results) == list(range(10))


def test_pool_turns_a_crashing_call_into_an_error_and_goes_on(loop_thread):
    results: list[Any] = []
    pool = workers.LoopPool(loop_thread.loop, results.append, limit=2)

    async def boom() -> Any:
        raise RuntimeError("bug")

    def broken() -> Any:
        raise RuntimeError("bug before any await")

    pool.submit("k", "first", None, boom)
    pool.submit("k", "second", None, broken)
    pool.submit("k", "third", None, lambda: "fine")  # a plain value needs no await
    wait_until(lambda: len(results) == 3, timeout=5)
    assert [r.request for r in results] == ["first", "second", "third"]
    assert all(isinstance(r.result, LndError) and r.result.kind is ErrorKind.OTHER
               for r in results[:2])
    assert results[2].result == "fine"
