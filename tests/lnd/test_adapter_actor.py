"""The LightningAdapter actor against the LND-protocol simulator over real gRPC.

Most tests run on thespian's simpleSystemBase: actors run inside the test's own
`tell`/`listen` calls, so the `Inbox` helper pumps the system with `listen` (which
also fires the adapter's poll `wakeupAfter`) until the expected message arrives.
The test itself is the adapter's owner (it configures it with `ask`). One test runs
the same path on both multiprocess bases (TCP: woken through ThespianWatch; Queue: polling).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from datetime import timedelta

import pytest
from thespian.actors import ActorExitRequest, ActorSystem

from adapters.bridge import ThreadBridge
from adapters.lnd.actor import LightningAdapter
from adapters.lnd.client import LndClient, Stream
from adapters.lnd.errors import ErrorKind
from adapters.lnd.messages import (
    AddHoldInvoice,
    Batch,
    CancelHoldInvoice,
    DecodedInvoice,
    DecodeInvoice,
    EffectDone,
    EffectFailed,
    GetLightningStatus,
    InvoiceState,
    InvoiceStateChanged,
    InvoiceUnknown,
    LightningStatus,
    Outcome,
    PaymentResult,
    PaymentSnapshot,
    PaymentStatus,
    SendPayment,
    SettleHoldInvoice,
    TrackPayment,
    UnwatchInvoice,
    WatchInvoice,
)
from adapters.lnd.protos import lightning_pb2
from tests.lnd.adapter_kit import (
    Inbox,
    add_invoice,
    configure_for,
    effect,
    lnd_client,
    new_preimage,
    state_is,
)


class Payer:
    """A wallet paying a bolt11 in a background thread (hold invoices stay in flight)."""

    def __init__(self, client: LndClient, payment_request: str) -> None:
        self.updates: list[PaymentSnapshot] = []
        self.stream: Stream[PaymentSnapshot] = client.send_payment(payment_request, 0, 1000, 30)
        threading.Thread(target=lambda: self.updates.extend(self.stream), daemon=True).start()


# ---------------------------------------------------------------- connecting


def test_configure_reports_node(asys, lnsim):
    address = asys.createActor(LightningAdapter)
    status = asys.ask(address, configure_for(lnsim.mostro), timedelta(seconds=10))
    assert status.connected and status.error == ""
    assert status.info.network == "regtest" and status.info.identity_pubkey == lnsim.mostro.pubkey
    assert asys.ask(address, GetLightningStatus(), timedelta(seconds=5)) == status


@pytest.mark.parametrize(
    "overrides, kind, words",
    [
        ({"expected_network": "mainnet"}, ErrorKind.WRONG_NETWORK, "expect mainnet"),
        ({"host": "127.0.0.1:PORT"}, ErrorKind.UNREACHABLE, "unreachable"),
        ({"macaroon_path": "FORGED"}, ErrorKind.AUTH, "macaroon"),
        ({"tls_cert_path": "MISSING"}, ErrorKind.CONFIG, "certificate"),
    ],
    ids=["wrong-network", "unreachable", "wrong-macaroon", "missing-cert"],
)
def test_configure_errors_are_clear(asys, lnsim, tmp_path, overrides, kind, words):
    if overrides.get("host") == "127.0.0.1:PORT":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            overrides = {"host": f"127.0.0.1:{sock.getsockname()[1]}"}
    if overrides.get("macaroon_path") == "FORGED":
        (tmp_path / "forged").write_bytes(os.urandom(64))
        overrides = {"macaroon_path": str(tmp_path / "forged")}
    if overrides.get("tls_cert_path") == "MISSING":
        overrides = {"tls_cert_path": str(tmp_path / "missing.cert")}
    address = asys.createActor(LightningAdapter)
    status = asys.ask(address, configure_for(lnsim.mostro, **overrides), timedelta(seconds=10))
    assert isinstance(status, LightningStatus) and not status.connected
    assert status.error_kind == kind.value and words in status.error, status
    assert "Traceback" not in status.error
    inbox = Inbox(asys)
    asys.tell(address, CancelHoldInvoice("ab" * 32, "e1"))
    failed = inbox.wait_for(effect("e1"))
    assert isinstance(failed, EffectFailed) and failed.retryable


def test_connects_once_lnd_answers(asys, lnsim, inbox):
    lnsim.sim.refuse("GetInfo", count=3, node="mostro")
    address = asys.createActor(LightningAdapter)
    asys.tell(address, configure_for(lnsim.mostro))
    first = inbox.wait_for(lambda m: isinstance(m, LightningStatus))
    assert not first.connected and first.error_kind == ErrorKind.UNREACHABLE.value
    up = inbox.wait_for(lambda m: isinstance(m, LightningStatus) and m.connected)
    assert up.info.network == "regtest"


# ---------------------------------------------------------------- hold invoices


def test_hold_invoice_flow_and_idempotent_effects(asys, adapter, inbox, wallet):
    preimage, payment_hash, bolt11 = add_invoice(asys, adapter, inbox, effect_id="add-1")
    assert bolt11.startswith("lnbcrt")
    asys.tell(adapter, AddHoldInvoice(payment_hash, 5000, "escrow", 3600, 144, "add-2"))
    again = inbox.wait_for(effect("add-2"))
    assert again == EffectDone("add-2", Outcome.ALREADY_EXISTS, payment_hash, bolt11)

    Payer(wallet, bolt11)
    accepted = inbox.wait_for(state_is(payment_hash, InvoiceState.ACCEPTED))
    assert accepted.amt_paid_sat == 5000 and accepted.htlc_expiry_height == 200 + 144

    asys.tell(adapter, SettleHoldInvoice(preimage, "settle-1"))
    assert inbox.wait_for(effect("settle-1")) == EffectDone(
        "settle-1", Outcome.SETTLED, payment_hash
    )
    inbox.wait_for(state_is(payment_hash, InvoiceState.SETTLED))
    asys.tell(adapter, SettleHoldInvoice(preimage, "settle-2"))
    assert isinstance(inbox.wait_for(effect("settle-2")), EffectDone)
    asys.tell(adapter, CancelHoldInvoice(payment_hash, "cancel-late"))
    late = inbox.wait_for(effect("cancel-late"))
    assert isinstance(late, EffectFailed) and not late.retryable
    assert late.error_kind == ErrorKind.ALREADY_SETTLED.value
    asys.tell(adapter, WatchInvoice(payment_hash))  # a final invoice: nothing more to deliver
    assert inbox.states(payment_hash) == [
        InvoiceState.OPEN,
        InvoiceState.ACCEPTED,
        InvoiceState.SETTLED,
    ]


def test_cancel_of_accepted_invoice_refunds_payer(asys, adapter, inbox, wallet, lnsim):
    _, payment_hash, bolt11 = add_invoice(asys, adapter, inbox, value_sat=7000)
    payer_name = lnsim.wallets[0].name
    before = lnsim.sim.balance_msat(payer_name)
    payer = Payer(wallet, bolt11)
    inbox.wait_for(state_is(payment_hash, InvoiceState.ACCEPTED))
    assert lnsim.sim.balance_msat(payer_name) == before - 7_000_000

    asys.tell(adapter, CancelHoldInvoice(payment_hash, "c1"))
    assert inbox.wait_for(effect("c1")).outcome is Outcome.CANCELED
    inbox.wait_for(state_is(payment_hash, InvoiceState.CANCELED))
    asys.tell(adapter, CancelHoldInvoice(payment_hash, "c2"))
    assert inbox.wait_for(effect("c2")).outcome in (Outcome.CANCELED, Outcome.ALREADY_CANCELED)
    inbox.until(lambda: payer.updates and payer.updates[-1].status is PaymentStatus.FAILED)
    assert lnsim.sim.balance_msat(payer_name) == before


def test_two_accepted_invoices_arrive_in_order(asys, adapter, inbox, lnsim):
    _, first, first_bolt11 = add_invoice(asys, adapter, inbox)
    _, second, second_bolt11 = add_invoice(asys, adapter, inbox)
    # Pay the second-created first: delivery follows payment order, not creation order.
    # "Happened before" = the first payer saw its HTLC held before the second one paid
    # (two streams have no common order finer than that, in LND either).
    payers = [lnd_client(lnsim.wallets[0]), lnd_client(lnsim.wallets[1])]
    early = Payer(payers[0], second_bolt11)
    inbox.until(lambda: early.updates)
    Payer(payers[1], first_bolt11)
    inbox.wait_for(state_is(first, InvoiceState.ACCEPTED))
    inbox.wait_for(state_is(second, InvoiceState.ACCEPTED))
    accepted = [
        m.hash_hex for m in inbox.of_type(InvoiceStateChanged) if m.state is InvoiceState.ACCEPTED
    ]
    assert accepted == [second, first]
    for client in payers:
        client.close()


def test_invoice_expiry_is_delivered(asys, adapter, inbox, lnsim):
    _, payment_hash, _ = add_invoice(asys, adapter, inbox, expiry=60)
    lnsim.sim.advance_clock(61)
    inbox.wait_for(state_is(payment_hash, InvoiceState.CANCELED))
    assert inbox.states(payment_hash) == [InvoiceState.OPEN, InvoiceState.CANCELED]


def test_watch_of_unknown_hash(asys, adapter, inbox):
    asys.tell(adapter, WatchInvoice("ef" * 32))
    assert inbox.wait_for(lambda m: isinstance(m, InvoiceUnknown)) == InvoiceUnknown("ef" * 32)


def test_watch_with_known_state_does_not_redeliver(asys, adapter, inbox, lnsim):
    _, payment_hash, bolt11 = add_invoice(asys, adapter, inbox)
    lnsim.sim.ledger.send_payment(lnsim.wallets[0].name, payment_request=bolt11)
    inbox.wait_for(state_is(payment_hash, InvoiceState.ACCEPTED))
    # A second adapter (as after a daemon restart) told what the database already handled.
    other = asys.createActor(LightningAdapter)
    asys.ask(other, configure_for(lnsim.mostro), timedelta(seconds=10))
    asys.tell(other, WatchInvoice(payment_hash, InvoiceState.ACCEPTED))
    asys.tell(adapter, CancelHoldInvoice(payment_hash, "c"))
    inbox.wait_for(effect("c"))
    inbox.wait_for(state_is(payment_hash, InvoiceState.CANCELED))
    inbox.wait_for(lambda m: inbox.states(payment_hash).count(InvoiceState.CANCELED) == 2)
    states = inbox.states(payment_hash)
    assert states.count(InvoiceState.ACCEPTED) == 1 and states.count(InvoiceState.OPEN) == 1


def test_refused_effect_is_retryable_then_succeeds(asys, adapter, inbox, lnsim):
    _, payment_hash = new_preimage()
    lnsim.sim.refuse("AddHoldInvoice", count=1)
    asys.tell(adapter, AddHoldInvoice(payment_hash, 1000, "m", 3600, 144, "try-1"))
    failed = inbox.wait_for(effect("try-1"))
    assert isinstance(failed, EffectFailed) and failed.retryable
    asys.tell(adapter, AddHoldInvoice(payment_hash, 1000, "m", 3600, 144, "try-2"))
    assert inbox.wait_for(effect("try-2")).outcome is Outcome.CREATED


# ---------------------------------------------------------------- reconnect and reconcile


def test_stream_drop_with_accept_in_between_delivers_once(asys, adapter, inbox, lnsim, wallet):
    preimage, payment_hash, bolt11 = add_invoice(asys, adapter, inbox)
    # Keep the adapter from re-subscribing until the payment happened.
    lnsim.sim.refuse("SubscribeSingleInvoice", node="mostro")
    lnsim.sim.refuse("LookupInvoiceV2", node="mostro")
    assert lnsim.sim.drop_streams() >= 1
    down = inbox.wait_for(lambda m: isinstance(m, LightningStatus) and not m.connected)
    assert down.error_kind == ErrorKind.UNREACHABLE.value
    Payer(wallet, bolt11)
    lnsim.sim.clear_faults()
    inbox.wait_for(state_is(payment_hash, InvoiceState.ACCEPTED))
    inbox.wait_for(lambda m: isinstance(m, LightningStatus) and m.connected)
    # Another break: the reconcile sees ACCEPTED again and must not deliver it twice.
    lnsim.sim.drop_streams()
    asys.tell(adapter, SettleHoldInvoice(preimage, "s"))
    inbox.wait_for(state_is(payment_hash, InvoiceState.SETTLED))
    assert inbox.states(payment_hash) == [
        InvoiceState.OPEN,
        InvoiceState.ACCEPTED,
        InvoiceState.SETTLED,
    ]


def test_lnd_restart_with_accept_in_between_delivers_once(asys, adapter, inbox, lnsim):
    _, first, first_bolt11 = add_invoice(asys, adapter, inbox)
    _, second, _ = add_invoice(asys, adapter, inbox)
    lnsim.sim.stop_servers()
    inbox.wait_for(lambda m: isinstance(m, LightningStatus) and not m.connected)
    # While LND is down, a payer's HTLC arrives (straight into the simulated network).
    lnsim.sim.ledger.send_payment(lnsim.wallets[0].name, payment_request=first_bolt11)
    lnsim.sim.start_servers()
    inbox.wait_for(state_is(first, InvoiceState.ACCEPTED), timeout=10)
    inbox.wait_for(lambda m: isinstance(m, LightningStatus) and m.connected)
    asys.tell(adapter, CancelHoldInvoice(second, "c2"))
    inbox.wait_for(state_is(second, InvoiceState.CANCELED))
    assert inbox.states(first) == [InvoiceState.OPEN, InvoiceState.ACCEPTED]
    assert inbox.states(second) == [InvoiceState.OPEN, InvoiceState.CANCELED]


# ---------------------------------------------------------------- payments


def wallet_invoice(
    lnsim, value_sat: int, wallet_index: int = 0
) -> lightning_pb2.AddInvoiceResponse:
    stubs = lnsim.client(lnsim.wallets[wallet_index])
    return stubs.lightning.AddInvoice(lightning_pb2.Invoice(value=value_sat, memo="payout"))


def test_payout_succeeds_and_repeat_is_an_outcome(asys, adapter, inbox, lnsim):
    invoice = wallet_invoice(lnsim, 3000)
    asys.tell(adapter, SendPayment(invoice.payment_request, 0, 30, 60, "pay-1"))
    result = inbox.wait_for(lambda m: isinstance(m, PaymentResult))
    assert result.status is PaymentStatus.SUCCEEDED and result.effect_id == "pay-1"
    assert result.hash_hex == invoice.r_hash.hex()
    assert hashlib.sha256(bytes.fromhex(result.preimage_hex)).digest() == invoice.r_hash
    assert inbox.wait_for(effect("pay-1")) == EffectDone(
        "pay-1", Outcome.SUCCEEDED, result.hash_hex
    )

    asys.tell(adapter, SendPayment(invoice.payment_request, 0, 30, 60, "pay-2"))
    assert inbox.wait_for(effect("pay-2")) == EffectDone(
        "pay-2", Outcome.SUCCEEDED, result.hash_hex
    )
    assert [m.status for m in inbox.of_type(PaymentResult)] == [PaymentStatus.SUCCEEDED] * 2

    asys.tell(adapter, TrackPayment(result.hash_hex))
    inbox.wait_for(lambda m: len(inbox.of_type(PaymentResult)) == 3)
    asys.tell(adapter, TrackPayment("cd" * 32))
    unknown = inbox.wait_for(lambda m: isinstance(m, PaymentResult) and m.hash_hex == "cd" * 32)
    assert unknown.status is PaymentStatus.UNKNOWN


def test_payout_failure_and_bad_invoice(asys, adapter, inbox, lnsim):
    lnsim.sim.set_balance("mostro", 1_000)
    invoice = wallet_invoice(lnsim, 3000)
    asys.tell(adapter, SendPayment(invoice.payment_request, 0, 30, 60, "poor"))
    result = inbox.wait_for(lambda m: isinstance(m, PaymentResult))
    assert result.status is PaymentStatus.FAILED
    assert result.failure_reason == "FAILURE_REASON_INSUFFICIENT_BALANCE"
    assert inbox.wait_for(effect("poor")).outcome is Outcome.PAYMENT_FAILED

    # A refused payout is a failed attempt (§6.2), not an effect to retry as it is.
    asys.tell(adapter, SendPayment("lnbcrt1garbage", 0, 30, 60, "bad"))
    assert inbox.wait_for(effect("bad")) == EffectDone("bad", Outcome.PAYMENT_FAILED, "")
    refused = inbox.of_type(PaymentResult)[-1]
    assert refused.effect_id == "bad" and refused.status is PaymentStatus.FAILED
    assert refused.failure_reason.startswith("refused: ")

    expired = wallet_invoice(lnsim, 3000)
    lnsim.sim.advance_clock(7 * 86400)
    asys.tell(adapter, SendPayment(expired.payment_request, 0, 30, 60, "late"))
    assert inbox.wait_for(effect("late")).outcome is Outcome.PAYMENT_FAILED
    late = inbox.of_type(PaymentResult)[-1]
    assert late.hash_hex == expired.r_hash.hex() and "expired" in late.failure_reason


def test_payment_survives_stream_drop(asys, adapter, inbox, lnsim):
    # The buyer's wallet gives a hold invoice, so the payout stays in flight until it settles.
    buyer = lnd_client(lnsim.wallets[1])
    preimage, payment_hash = new_preimage()
    bolt11 = buyer.add_hold_invoice(payment_hash, 4000, "payout", 3600, 40).payment_request
    asys.tell(adapter, SendPayment(bolt11, 0, 40, 60, "p"))
    inbox.until(lambda: buyer.lookup_invoice(payment_hash).state is InvoiceState.ACCEPTED)
    lnsim.sim.drop_streams()
    inbox.wait_for(lambda m: isinstance(m, LightningStatus) and not m.connected)
    assert buyer.settle_invoice(preimage) is Outcome.SETTLED
    result = inbox.wait_for(lambda m: isinstance(m, PaymentResult))
    assert result.status is PaymentStatus.SUCCEEDED and result.preimage_hex == preimage
    inbox.wait_for(effect("p"))
    assert len(inbox.of_type(PaymentResult)) == 1
    buyer.close()


def test_decode_invoice_replies_to_sender(asys, adapter, lnsim):
    invoice = wallet_invoice(lnsim, 1234)
    decoded = asys.ask(adapter, DecodeInvoice(invoice.payment_request), timedelta(seconds=5))
    assert isinstance(decoded, DecodedInvoice) and decoded.ok
    assert decoded.amount_sat == 1234 and decoded.hash_hex == invoice.r_hash.hex()
    bad = asys.ask(adapter, DecodeInvoice("nonsense"), timedelta(seconds=5))
    assert isinstance(bad, DecodedInvoice) and not bad.ok


# ---------------------------------------------------------------- multiprocess bases


@pytest.mark.multiproc
@pytest.mark.parametrize("base", ["multiprocTCPBase", "multiprocQueueBase"])
def test_hold_invoice_on_multiproc_bases(lnsim, wallet, monkeypatch, base):
    if base == "multiprocTCPBase":
        # Actor processes are forked from here: with polling this slow, only the
        # ThespianWatch wake-up can deliver the events within the test's timeouts.
        monkeypatch.setattr(ThreadBridge, "poll_interval", timedelta(seconds=60))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        admin_port = sock.getsockname()[1]
    system = ActorSystem(base, {"Admin Port": admin_port}, transientUnique=True)
    try:
        address = system.createActor(LightningAdapter)
        status = system.ask(address, configure_for(lnsim.mostro), timedelta(seconds=10))
        assert isinstance(status, LightningStatus) and status.connected, status
        inbox = Inbox(system)
        preimage, payment_hash, bolt11 = add_invoice(system, address, inbox)
        Payer(wallet, bolt11)
        inbox.wait_for(state_is(payment_hash, InvoiceState.ACCEPTED), timeout=10)
        system.tell(address, SettleHoldInvoice(preimage, "s"))
        inbox.wait_for(state_is(payment_hash, InvoiceState.SETTLED), timeout=10)
        assert inbox.states(payment_hash) == [
            InvoiceState.OPEN,
            InvoiceState.ACCEPTED,
            InvoiceState.SETTLED,
        ]
    finally:
        system.shutdown()


def test_new_adapter_resumes_in_flight_payout(asys, adapter, inbox, lnsim):
    """A daemon restart mid-payout: the next adapter tracks by hash, and a re-sent
    effect for the same invoice is not paid twice."""
    buyer = lnd_client(lnsim.wallets[1])
    preimage, payment_hash = new_preimage()
    bolt11 = buyer.add_hold_invoice(payment_hash, 4000, "payout", 3600, 40).payment_request
    asys.tell(adapter, SendPayment(bolt11, 0, 40, 60, "first-try"))
    inbox.until(lambda: buyer.lookup_invoice(payment_hash).state is InvoiceState.ACCEPTED)
    asys.tell(adapter, ActorExitRequest())

    successor = asys.createActor(LightningAdapter)
    assert asys.ask(successor, configure_for(lnsim.mostro), timedelta(seconds=10)).connected
    asys.tell(successor, TrackPayment(payment_hash))
    asys.tell(successor, SendPayment(bolt11, 0, 40, 60, "outbox-resend"))
    balance = lnsim.sim.balance_msat("mostro")
    assert buyer.settle_invoice(preimage) is Outcome.SETTLED
    resend = inbox.wait_for(effect("outbox-resend"))
    assert resend == EffectDone("outbox-resend", Outcome.SUCCEEDED, payment_hash)
    results = inbox.of_type(PaymentResult)
    assert [r.status for r in results] == [PaymentStatus.SUCCEEDED]
    assert results[0].preimage_hex == preimage
    assert lnsim.sim.balance_msat("mostro") == balance  # paid once, before the restart
    buyer.close()


def test_track_waits_for_lnd_instead_of_answering_unknown(asys, lnsim, inbox):
    invoice = wallet_invoice(lnsim, 2000)
    payer = lnd_client(lnsim.mostro)
    assert [u.status for u in payer.send_payment(invoice.payment_request, 0, 20, 30)][-1] is (
        PaymentStatus.SUCCEEDED
    )
    payer.close()
    lnsim.sim.refuse("GetInfo", count=2, node="mostro")
    address = asys.createActor(LightningAdapter)
    asys.tell(address, configure_for(lnsim.mostro))
    asys.tell(address, TrackPayment(invoice.r_hash.hex()))
    result = inbox.wait_for(lambda m: isinstance(m, PaymentResult))
    assert result.status is PaymentStatus.SUCCEEDED
    assert inbox.of_type(LightningStatus)[-1].connected


def test_unwatch_stops_delivery(asys, adapter, inbox, lnsim):
    _, watched, _ = add_invoice(asys, adapter, inbox)
    _, dropped, dropped_bolt11 = add_invoice(asys, adapter, inbox)
    asys.tell(adapter, UnwatchInvoice(dropped))
    lnsim.sim.ledger.send_payment(lnsim.wallets[0].name, payment_request=dropped_bolt11)
    asys.tell(adapter, CancelHoldInvoice(watched, "c"))
    inbox.wait_for(state_is(watched, InvoiceState.CANCELED))
    asys.tell(adapter, CancelHoldInvoice(dropped, "c2"))
    inbox.wait_for(effect("c2"))
    assert inbox.states(dropped) == [InvoiceState.OPEN]


def test_configure_again_keeps_watches(asys, adapter, inbox, lnsim):
    _, payment_hash, bolt11 = add_invoice(asys, adapter, inbox)
    again = asys.ask(adapter, configure_for(lnsim.mostro), timedelta(seconds=10))
    assert isinstance(again, LightningStatus) and again.connected
    lnsim.sim.ledger.send_payment(lnsim.wallets[0].name, payment_request=bolt11)
    inbox.wait_for(state_is(payment_hash, InvoiceState.ACCEPTED))
    asys.tell(adapter, CancelHoldInvoice(payment_hash, "c"))
    inbox.wait_for(state_is(payment_hash, InvoiceState.CANCELED))
    assert inbox.states(payment_hash) == [
        InvoiceState.OPEN,
        InvoiceState.ACCEPTED,
        InvoiceState.CANCELED,
    ]


def test_batch_is_handled_in_order(asys, adapter, inbox):
    hashes = [new_preimage()[1] for _ in range(3)]
    adds = tuple(AddHoldInvoice(h, 1000 + i, "b", 3600, 144, f"b{i}") for i, h in enumerate(hashes))
    asys.tell(adapter, Batch(adds + (CancelHoldInvoice(hashes[0], "b-cancel"),)))
    inbox.until(lambda: len(inbox.of_type(EffectDone)) == 4)
    done = [m.effect_id for m in inbox.of_type(EffectDone)]
    # calls for different hashes run side by side; the cancel of hash 0 waits for its add
    assert sorted(done) == ["b-cancel", "b0", "b1", "b2"]
    assert done.index("b0") < done.index("b-cancel")
    inbox.wait_for(state_is(hashes[0], InvoiceState.CANCELED))
