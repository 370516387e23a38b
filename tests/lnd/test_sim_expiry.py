"""Invoice expiry on the simulator: by the injectable clock (OPEN invoices
cancel at `expiry`, an expired request cannot be paid) and by block height
(an accepted hold invoice cancels near its HTLC's expiry, refunding the payer)."""

from __future__ import annotations

import hashlib
import os

import grpc

from adapters.lnd.protos import invoices_pb2, lightning_pb2, router_pb2
from adapters.lnd.sim.client import StreamEnded, StreamReader

Invoice = lightning_pb2.Invoice
Payment = lightning_pb2.Payment


def hold_invoice(client, sats: int = 1_000, expiry: int = 600, cltv_expiry: int = 0):
    r_hash = hashlib.sha256(os.urandom(32)).digest()
    response = client.invoices.AddHoldInvoice(
        invoices_pb2.AddHoldInvoiceRequest(
            hash=r_hash, value=sats, expiry=expiry, cltv_expiry=cltv_expiry
        )
    )
    return r_hash, response.payment_request


def pay(client, payment_request: str) -> StreamReader:
    return StreamReader(
        client.router.SendPaymentV2(
            router_pb2.SendPaymentRequest(payment_request=payment_request, timeout_seconds=30)
        )
    )


def state_of(client, r_hash: bytes) -> int:
    return client.invoices.LookupInvoiceV2(invoices_pb2.LookupInvoiceMsg(payment_hash=r_hash)).state


def test_open_hold_invoice_cancels_at_expiry(lnsim):
    mostro = lnsim.client("mostro")
    r_hash, _ = hold_invoice(mostro, expiry=600)
    events = StreamReader(
        mostro.invoices.SubscribeSingleInvoice(
            invoices_pb2.SubscribeSingleInvoiceRequest(r_hash=r_hash)
        )
    )
    assert events.next().state == Invoice.OPEN
    lnsim.sim.advance_clock(599)
    assert state_of(mostro, r_hash) == Invoice.OPEN
    lnsim.sim.advance_clock(1)
    assert events.next().state == Invoice.CANCELED
    assert isinstance(events.next(), StreamEnded)
    assert state_of(mostro, r_hash) == Invoice.CANCELED


def test_paying_an_expired_invoice_fails(lnsim):
    mostro, wallet = lnsim.client("mostro"), lnsim.client(lnsim.wallets[0])
    _, request = hold_invoice(mostro, expiry=60)
    lnsim.sim.advance_clock(61)
    ended = pay(wallet, request).next()
    assert isinstance(ended, StreamEnded)
    assert ended.code == grpc.StatusCode.UNKNOWN
    assert "invoice expired" in ended.details
    assert lnsim.sim.balance_msat("wallet1") == 10_000_000_000


def test_accepted_hold_invoice_is_not_expired_by_time(lnsim):
    mostro, wallet = lnsim.client("mostro"), lnsim.client(lnsim.wallets[0])
    r_hash, request = hold_invoice(mostro, expiry=60)
    assert pay(wallet, request).next().status == Payment.IN_FLIGHT
    lnsim.sim.advance_clock(3_600)
    assert state_of(mostro, r_hash) == Invoice.ACCEPTED


def test_accepted_hold_invoice_cancels_near_htlc_expiry_height(lnsim):
    mostro, wallet = lnsim.client("mostro"), lnsim.client(lnsim.wallets[0])
    r_hash, request = hold_invoice(mostro, sats=5_000, cltv_expiry=40)
    payment = pay(wallet, request)
    assert payment.next().status == Payment.IN_FLIGHT
    htlc = mostro.invoices.LookupInvoiceV2(
        invoices_pb2.LookupInvoiceMsg(payment_hash=r_hash)
    ).htlcs[0]
    assert htlc.expiry_height == 200 + 40
    lnsim.sim.set_block_height(htlc.expiry_height - 13)
    assert state_of(mostro, r_hash) == Invoice.ACCEPTED
    lnsim.sim.set_block_height(htlc.expiry_height - 12)  # LND's hold expiry delta
    assert state_of(mostro, r_hash) == Invoice.CANCELED
    assert payment.next().status == Payment.FAILED
    assert lnsim.sim.balance_msat("wallet1") == 10_000_000_000
    info = mostro.lightning.GetInfo(lightning_pb2.GetInfoRequest())
    assert info.block_height == htlc.expiry_height - 12


def test_real_time_clock_expires_short_invoices(lnsim_factory):
    lnsim = lnsim_factory(manual_clock=False)
    mostro = lnsim.client("mostro")
    # creation_date is whole seconds: expiry=1 may end a few ms after creation, before the
    # subscription below; 2 leaves at least a second
    r_hash, _ = hold_invoice(mostro, expiry=2)
    events = StreamReader(
        mostro.invoices.SubscribeSingleInvoice(
            invoices_pb2.SubscribeSingleInvoiceRequest(r_hash=r_hash)
        )
    )
    assert events.next().state == Invoice.OPEN
    assert events.next(timeout=5).state == Invoice.CANCELED  # the sweeper, within ~3 s
