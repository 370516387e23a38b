"""The simulator under many concurrent streams and a large ledger: open streams
hold no threads (grpc.aio on one loop), expiry comes off a deadline heap,
payment requests are encoded without the bolt11 package's bit strings (byte
for byte the same) and not decoded again, and the state file is written from
a snapshot, far less often than the ledger changes."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import bolt11
import pytest
from bolt11 import MilliSatoshi, TagChar, Tags

from adapters.lnd.protos import invoices_pb2, lightning_pb2, router_pb2
from adapters.lnd.sim.client import StreamEnded, StreamReader
from adapters.lnd.sim.clock import SimClock
from adapters.lnd.sim.ledger import Ledger
from adapters.lnd.sim.payreq import _INVOICE_FEATURES as INVOICE_FEATURES
from adapters.lnd.sim.payreq import CURRENCY_BY_NETWORK, InvoiceTerms, decode_payreq, encode_payreq
from adapters.lnd.sim.state_file import StateWriter

Invoice = lightning_pb2.Invoice
Payment = lightning_pb2.Payment
DATA = Path(__file__).resolve().parent / "data"
ISSUED_CASES = json.loads((DATA / "sim_issued_payreqs.json").read_text())["cases"]
STREAMS = 60


def simulator_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("lnsim")]


def new_ledger(network: str = "regtest") -> Ledger:
    ledger = Ledger(network=network, clock=SimClock(manual=True, start=1_700_000_000))
    ledger.add_node("mostro", balance_msat=10**12)
    ledger.add_node("wallet1", balance_msat=10**12)
    return ledger


def test_hundreds_of_open_streams_hold_no_threads(lnsim):
    mostro, wallet = lnsim.client("mostro"), lnsim.client(lnsim.wallets[0])
    hashes, requests = [], []
    for _ in range(STREAMS):
        r_hash = hashlib.sha256(os.urandom(32)).digest()
        requests.append(
            mostro.invoices.AddHoldInvoice(
                invoices_pb2.AddHoldInvoiceRequest(hash=r_hash, value=1_000)
            ).payment_request
        )
        hashes.append(r_hash)
    invoice_streams = [
        StreamReader(
            mostro.invoices.SubscribeSingleInvoice(
                invoices_pb2.SubscribeSingleInvoiceRequest(r_hash=r_hash)
            )
        )
        for r_hash in hashes
    ]
    assert all(s.next().state == Invoice.OPEN for s in invoice_streams)
    payments = [
        StreamReader(
            wallet.router.SendPaymentV2(
                router_pb2.SendPaymentRequest(payment_request=request, fee_limit_sat=10)
            )
        )
        for request in requests
    ]
    assert all(p.next().status == Payment.IN_FLIGHT for p in payments)
    assert all(s.next().state == Invoice.ACCEPTED for s in invoice_streams)
    # 2 x STREAMS streams open: the simulator runs them on its loop thread (+ the state writer)
    assert len(simulator_threads()) <= 3, simulator_threads()
    for r_hash in hashes:
        mostro.invoices.CancelInvoice(invoices_pb2.CancelInvoiceMsg(payment_hash=r_hash))
    assert all(p.next().status == Payment.FAILED for p in payments)
    assert all(s.next().state == Invoice.CANCELED for s in invoice_streams)
    assert all(isinstance(s.next(), StreamEnded) for s in invoice_streams + payments)
    assert lnsim.sim.balance_msat("wallet1") == 10_000_000_000


def bolt11_package_encoding(terms: InvoiceTerms, node_private_key_hex: str) -> str:
    """The bolt11 package's encoding of the invoice `encode_payreq` makes: the reference."""
    tags = Tags()
    tags.add(TagChar.payment_hash, terms.payment_hash.hex())
    tags.add(TagChar.payment_secret, terms.payment_addr.hex())
    if terms.description_hash:
        tags.add(TagChar.description_hash, terms.description_hash.hex())
    else:
        tags.add(TagChar.description, terms.memo)
    tags.add(TagChar.expire_time, terms.expiry)
    tags.add(TagChar.min_final_cltv_expiry, terms.cltv_expiry)
    tags.add(TagChar.features, INVOICE_FEATURES)
    invoice = bolt11.Bolt11(
        currency=CURRENCY_BY_NETWORK[terms.network],
        date=terms.timestamp,
        tags=tags,
        amount_msat=MilliSatoshi(terms.amount_msat) if terms.amount_msat else None,
    )
    return bolt11.encode(invoice, node_private_key_hex)


@pytest.mark.parametrize("case", ISSUED_CASES, ids=[c["memo"] or c["network"] for c in ISSUED_CASES])
def test_issued_payment_requests_are_known_without_decoding(case):
    ledger = new_ledger(case["network"])
    invoice = ledger.add_invoice(
        "mostro",
        value_msat=case["amount_msat"],
        memo=case["memo"],
        expiry=case["expiry"],
        cltv_expiry=case["cltv_expiry"],
        description_hash=bytes.fromhex(case["description_hash_hex"]),
    )
    known = ledger.decode_payment_request(invoice.payment_request)
    assert known == decode_payreq(invoice.payment_request)
    assert known is ledger.decode_payment_request(invoice.payment_request)  # from memory


@pytest.mark.parametrize("case", ISSUED_CASES, ids=[c["memo"] or c["network"] for c in ISSUED_CASES])
def test_fast_encoding_is_the_bolt11_packages_byte_for_byte(case):
    key_hex = hashlib.sha256(case["memo"].encode()).hexdigest()
    terms = InvoiceTerms(
        network=case["network"],
        payment_hash=hashlib.sha256(b"hash" + case["memo"].encode()).digest(),
        payment_addr=hashlib.sha256(b"addr" + case["memo"].encode()).digest(),
        amount_msat=case["amount_msat"],
        timestamp=1_700_000_000 + case["expiry"],
        expiry=case["expiry"],
        cltv_expiry=case["cltv_expiry"],
        memo=case["memo"],
        description_hash=bytes.fromhex(case["description_hash_hex"]),
    )
    assert encode_payreq(terms, key_hex) == bolt11_package_encoding(terms, key_hex)  # RFC 6979: same signature


def test_expiry_comes_off_the_deadline_heap_in_order():
    ledger = new_ledger()
    expiries = [30, 10, 20, 10, 40]
    invoices = [
        ledger.add_hold_invoice(
            "mostro", r_hash=os.urandom(32), value_msat=1_000_000, expiry=expiry
        )
        for expiry in expiries
    ]
    accepted = invoices[2]  # paid before its deadline: time no longer expires it
    assert ledger.send_payment(
        "wallet1", payment_request=accepted.payment_request, fee_limit_msat=1000
    )[0].status == "IN_FLIGHT"
    assert ledger.seconds_to_next_expiry() == 10
    ledger.clock.advance(10)
    assert ledger.expire_due() == 2
    assert ledger.seconds_to_next_expiry() == 20  # the accepted one (20) is skipped
    ledger.clock.advance(25)
    assert ledger.expire_due() == 1
    assert ledger.expire_due() == 0
    states = [ledger.lookup_invoice("mostro", i.r_hash).state for i in invoices]
    assert states == ["CANCELED", "CANCELED", "ACCEPTED", "CANCELED", "OPEN"]


def test_state_writer_writes_the_latest_state_far_less_often_than_it_changes(tmp_path):
    ledger = new_ledger()
    path = tmp_path / "state.json"
    writer = StateWriter(ledger, path, interval_s=0.05)
    ledger.on_change = writer.mark_dirty
    writer.start()
    changes = 0
    for _ in range(200):
        invoice = ledger.add_hold_invoice("mostro", r_hash=os.urandom(32), value_msat=2_000_000)
        ledger.send_payment("wallet1", payment_request=invoice.payment_request, fee_limit_msat=0)
        ledger.cancel_invoice("mostro", invoice.r_hash)
        changes += 3
    writer.stop()
    assert 1 <= writer.writes < changes // 3
    saved = json.loads(path.read_text())
    assert saved == ledger.to_json()  # cached encodings followed every change
    assert {i["state"] for i in saved["invoices"]} == {"CANCELED"}
    restored = new_ledger()
    restored.load_json(saved)
    assert restored.to_json() == saved
