"""Invoices and payments on the simulator over real gRPC/TLS: BOLT11, hold
invoice settle and cancel as seen by both sides, ordinary invoices, balances
and LND's error semantics."""

from __future__ import annotations

import hashlib
import os
import queue
import threading

import bolt11
import grpc
import pytest

from adapters.lnd.protos import invoices_pb2, lightning_pb2, router_pb2
from adapters.lnd.sim.client import StreamEnded, StreamReader

Invoice = lightning_pb2.Invoice
Payment = lightning_pb2.Payment
SAT = 1000


def new_preimage() -> tuple[bytes, bytes]:
    preimage = os.urandom(32)
    return preimage, hashlib.sha256(preimage).digest()


def add_hold(client, r_hash: bytes, sats: int = 50_000, **fields):
    return client.invoices.AddHoldInvoice(
        invoices_pb2.AddHoldInvoiceRequest(hash=r_hash, value=sats, **fields)
    )


def pay(client, payment_request: str, **fields) -> StreamReader:
    return StreamReader(
        client.router.SendPaymentV2(
            router_pb2.SendPaymentRequest(
                payment_request=payment_request, timeout_seconds=30, **fields
            )
        )
    )


def final_update(payment: StreamReader):
    """The payment's final update; LND streams IN_FLIGHT (its default for "initiated") first."""
    update = payment.next()
    while update.status == Payment.IN_FLIGHT:
        update = payment.next()
    return update


def subscribe(client, r_hash: bytes) -> StreamReader:
    return StreamReader(
        client.invoices.SubscribeSingleInvoice(
            invoices_pb2.SubscribeSingleInvoiceRequest(r_hash=r_hash)
        )
    )


def lookup(client, r_hash: bytes):
    return client.invoices.LookupInvoiceV2(invoices_pb2.LookupInvoiceMsg(payment_hash=r_hash))


def test_get_info(lnsim):
    info = lnsim.client("mostro").lightning.GetInfo(lightning_pb2.GetInfoRequest())
    assert info.identity_pubkey == lnsim.mostro.pubkey
    assert info.alias == "mostro"
    assert info.synced_to_chain
    assert info.block_height == 200
    assert [(c.chain, c.network) for c in info.chains] == [("bitcoin", "regtest")]
    assert info.version
    assert info.uris[0].startswith(lnsim.mostro.pubkey + "@")


def test_hold_invoice_is_real_bolt11(lnsim):
    _, r_hash = new_preimage()
    response = add_hold(lnsim.client("mostro"), r_hash, 12_345, memo="bond", expiry=900)
    decoded = bolt11.decode(response.payment_request)
    assert response.payment_request.startswith("lnbcrt")
    assert decoded.payee == lnsim.mostro.pubkey  # recovered from the node's signature
    assert decoded.payment_hash == r_hash.hex()
    assert decoded.amount_msat == 12_345 * SAT
    assert decoded.description == "bond"
    assert decoded.expiry == 900
    assert decoded.payment_secret == response.payment_addr.hex()


def test_decode_pay_req_of_another_nodes_invoice(lnsim):
    wallet = lnsim.wallets[0]
    added = lnsim.client(wallet).lightning.AddInvoice(
        lightning_pb2.Invoice(value=777, memo="payout")
    )
    decoded = lnsim.client("mostro").lightning.DecodePayReq(
        lightning_pb2.PayReqString(pay_req=added.payment_request)
    )
    assert decoded.destination == wallet.pubkey
    assert decoded.payment_hash == added.r_hash.hex()
    assert decoded.num_satoshis == 777
    assert decoded.description == "payout"
    assert decoded.cltv_expiry == 80
    with pytest.raises(grpc.RpcError) as error:
        lnsim.client("mostro").lightning.DecodePayReq(lightning_pb2.PayReqString(pay_req="lnbc1x"))
    assert error.value.code() == grpc.StatusCode.UNKNOWN


def test_hold_invoice_accepted_then_settled(lnsim):
    mostro, wallet = lnsim.client("mostro"), lnsim.client(lnsim.wallets[0])
    preimage, r_hash = new_preimage()
    request = add_hold(mostro, r_hash, 50_000).payment_request
    events = subscribe(mostro, r_hash)
    assert events.next().state == Invoice.OPEN  # current state first

    payment = pay(wallet, request)
    in_flight = payment.next()
    assert in_flight.status == Payment.IN_FLIGHT
    assert in_flight.payment_hash == r_hash.hex()
    accepted = events.next()
    assert accepted.state == Invoice.ACCEPTED
    assert accepted.amt_paid_sat == 50_000
    assert accepted.htlcs[0].state == lightning_pb2.InvoiceHTLCState.Value("ACCEPTED")
    assert lnsim.sim.balance_msat("wallet1") == (10_000_000 - 50_000) * SAT

    mostro.invoices.SettleInvoice(invoices_pb2.SettleInvoiceMsg(preimage=preimage))
    succeeded = payment.next()
    assert succeeded.status == Payment.SUCCEEDED
    assert succeeded.payment_preimage == preimage.hex()
    assert succeeded.value_sat == 50_000
    assert isinstance(payment.next(), StreamEnded)  # LND ends the stream when final
    settled = events.next()
    assert settled.state == Invoice.SETTLED
    assert settled.r_preimage == preimage
    assert isinstance(events.next(), StreamEnded)
    assert lnsim.sim.balance_msat("mostro") == (10_000_000 + 50_000) * SAT
    # settling again is a success, as in LND
    mostro.invoices.SettleInvoice(invoices_pb2.SettleInvoiceMsg(preimage=preimage))
    assert lookup(mostro, r_hash).state == Invoice.SETTLED


def test_hold_invoice_canceled_refunds_the_payer(lnsim):
    mostro, wallet = lnsim.client("mostro"), lnsim.client(lnsim.wallets[0])
    _, r_hash = new_preimage()
    payment = pay(wallet, add_hold(mostro, r_hash, 40_000).payment_request)
    assert payment.next().status == Payment.IN_FLIGHT
    assert lookup(mostro, r_hash).state == Invoice.ACCEPTED

    mostro.invoices.CancelInvoice(invoices_pb2.CancelInvoiceMsg(payment_hash=r_hash))
    failed = payment.next()
    assert failed.status == Payment.FAILED
    assert failed.failure_reason == lightning_pb2.FAILURE_REASON_INCORRECT_PAYMENT_DETAILS
    assert lookup(mostro, r_hash).state == Invoice.CANCELED
    assert lnsim.sim.balance_msat("wallet1") == 10_000_000 * SAT
    assert lnsim.sim.balance_msat("mostro") == 10_000_000 * SAT
    balance = wallet.lightning.ChannelBalance(lightning_pb2.ChannelBalanceRequest())
    assert balance.local_balance.sat == 10_000_000


def test_two_hold_invoices_accepted_in_order_are_reported_in_order(lnsim):
    mostro = lnsim.client("mostro")
    payers = [lnsim.client(endpoint) for endpoint in lnsim.wallets]
    hashes = [new_preimage()[1], new_preimage()[1]]
    requests = [add_hold(mostro, h, 10_000).payment_request for h in hashes]
    arrivals: queue.Queue = queue.Queue()  # (which invoice, state) in the order they arrive

    def forward(index: int, stream) -> None:
        try:
            for invoice in stream:
                arrivals.put((index, invoice.state))
        except grpc.RpcError:  # cancelled at the end of the test
            pass

    streams = [
        mostro.invoices.SubscribeSingleInvoice(invoices_pb2.SubscribeSingleInvoiceRequest(r_hash=h))
        for h in hashes
    ]
    for index, stream in enumerate(streams):
        threading.Thread(target=forward, args=(index, stream), daemon=True).start()
    assert sorted(arrivals.get(timeout=5) for _ in streams) == [
        (0, Invoice.OPEN),
        (1, Invoice.OPEN),
    ]

    for payer, request in zip(payers, requests, strict=True):
        assert pay(payer, request).next().status == Payment.IN_FLIGHT
        lnsim.sim.advance_clock(1)

    reported = [arrivals.get(timeout=5) for _ in streams]
    assert reported == [(0, Invoice.ACCEPTED), (1, Invoice.ACCEPTED)]
    first, second = (lookup(mostro, h) for h in hashes)
    assert first.htlcs[0].accept_time < second.htlcs[0].accept_time
    for stream in streams:
        stream.cancel()


def test_ordinary_invoice_settles_when_paid(lnsim):
    wallet = lnsim.client(lnsim.wallets[1])
    added = wallet.lightning.AddInvoice(lightning_pb2.Invoice(value=2_000, memo="payout"))
    payment = pay(lnsim.client("mostro"), added.payment_request)
    statuses = [payment.next().status, payment.next().status]
    assert statuses == [Payment.IN_FLIGHT, Payment.SUCCEEDED]
    invoice = wallet.lightning.LookupInvoice(lightning_pb2.PaymentHash(r_hash=added.r_hash))
    assert invoice.state == Invoice.SETTLED
    assert invoice.amt_paid_sat == 2_000
    assert lnsim.sim.balance_msat("wallet2") == (10_000_000 + 2_000) * SAT
    assert lnsim.sim.balance_msat("mostro") == (10_000_000 - 2_000) * SAT


def test_duplicate_hold_invoice_is_lnds_error(lnsim):
    mostro = lnsim.client("mostro")
    _, r_hash = new_preimage()
    add_hold(mostro, r_hash)
    with pytest.raises(grpc.RpcError) as error:
        add_hold(mostro, r_hash)
    assert error.value.code() == grpc.StatusCode.UNKNOWN
    assert "invoice with payment hash already exists" in error.value.details()


def test_cancel_twice_is_ok_and_settle_after_cancel_fails(lnsim):
    mostro = lnsim.client("mostro")
    preimage, r_hash = new_preimage()
    add_hold(mostro, r_hash)
    for _ in range(2):
        mostro.invoices.CancelInvoice(invoices_pb2.CancelInvoiceMsg(payment_hash=r_hash))
    assert lookup(mostro, r_hash).state == Invoice.CANCELED
    with pytest.raises(grpc.RpcError) as error:
        mostro.invoices.SettleInvoice(invoices_pb2.SettleInvoiceMsg(preimage=preimage))
    assert "invoice already canceled" in error.value.details()


def test_settle_of_an_open_invoice_fails(lnsim):
    mostro = lnsim.client("mostro")
    preimage, r_hash = new_preimage()
    add_hold(mostro, r_hash)
    with pytest.raises(grpc.RpcError) as error:
        mostro.invoices.SettleInvoice(invoices_pb2.SettleInvoiceMsg(preimage=preimage))
    assert "invoice still open" in error.value.details()


def test_unknown_invoice_and_unknown_payment(lnsim):
    mostro = lnsim.client("mostro")
    _, r_hash = new_preimage()
    with pytest.raises(grpc.RpcError) as error:
        lookup(mostro, r_hash)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "unable to locate invoice" in error.value.details()
    with pytest.raises(grpc.RpcError) as error:
        mostro.invoices.CancelInvoice(invoices_pb2.CancelInvoiceMsg(payment_hash=r_hash))
    assert "unable to locate invoice" in error.value.details()
    track = StreamReader(
        mostro.router.TrackPaymentV2(router_pb2.TrackPaymentRequest(payment_hash=r_hash))
    )
    ended = track.next()
    assert isinstance(ended, StreamEnded)
    assert ended.code == grpc.StatusCode.NOT_FOUND


def test_paying_again_is_rejected_like_lnd(lnsim):
    mostro, wallet = lnsim.client("mostro"), lnsim.client(lnsim.wallets[0])
    preimage, r_hash = new_preimage()
    request = add_hold(mostro, r_hash).payment_request
    assert pay(wallet, request).next().status == Payment.IN_FLIGHT
    again = pay(wallet, request).next()
    assert isinstance(again, StreamEnded)
    assert again.code == grpc.StatusCode.ALREADY_EXISTS
    assert "payment is in transition" in again.details

    mostro.invoices.SettleInvoice(invoices_pb2.SettleInvoiceMsg(preimage=preimage))
    paid = pay(wallet, request).next()
    assert isinstance(paid, StreamEnded)
    assert "invoice is already paid" in paid.details


def test_track_payment_follows_an_in_flight_payment(lnsim):
    mostro, wallet = lnsim.client("mostro"), lnsim.client(lnsim.wallets[0])
    preimage, r_hash = new_preimage()
    assert pay(wallet, add_hold(mostro, r_hash).payment_request).next().status == (
        Payment.IN_FLIGHT
    )
    track = StreamReader(
        wallet.router.TrackPaymentV2(router_pb2.TrackPaymentRequest(payment_hash=r_hash))
    )
    assert track.next().status == Payment.IN_FLIGHT
    mostro.invoices.SettleInvoice(invoices_pb2.SettleInvoiceMsg(preimage=preimage))
    done = track.next()
    assert (done.status, done.payment_preimage) == (Payment.SUCCEEDED, preimage.hex())


def test_insufficient_balance_fails_the_payment(lnsim):
    mostro, wallet = lnsim.client("mostro"), lnsim.client(lnsim.wallets[0])
    _, r_hash = new_preimage()
    request = add_hold(mostro, r_hash, 10_000_001).payment_request
    failed = final_update(pay(wallet, request))
    assert failed.status == Payment.FAILED
    assert failed.failure_reason == lightning_pb2.FAILURE_REASON_INSUFFICIENT_BALANCE
    assert lookup(mostro, r_hash).state == Invoice.OPEN


def test_routing_fee_is_charged_within_the_limit(lnsim_factory):
    lnsim = lnsim_factory(fee_base_msat=1_000, fee_ppm=1_000)  # 1 sat + 0.1 %
    wallet = lnsim.client(lnsim.wallets[0])
    added = lnsim.client("mostro").lightning.AddInvoice(lightning_pb2.Invoice(value=100_000))
    no_route = final_update(pay(wallet, added.payment_request))  # fee limit 0: zero-fee only
    assert no_route.failure_reason == lightning_pb2.FAILURE_REASON_NO_ROUTE
    done = final_update(pay(wallet, added.payment_request, fee_limit_sat=1_000))
    assert done.status == Payment.SUCCEEDED
    assert done.fee_sat == 101
    assert lnsim.sim.balance_msat("wallet1") == (10_000_000 - 100_000 - 101) * SAT
