"""LndClient against the LND-protocol simulator over real gRPC + TLS on 127.0.0.1,
plus the pure error classification from a data file."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path

import grpc
import pytest

from adapters.lnd.client import AioLndClient, ConnectionSettings, LndClient, Stream
from adapters.lnd.errors import ErrorKind, LndError, classify_rpc_error
from adapters.lnd.messages import (
    DecodedInvoice,
    InvoiceState,
    NodeInfo,
    Outcome,
    PaymentSnapshot,
    PaymentStatus,
)
from adapters.lnd.networks import invoice_network
from adapters.lnd.protos import lightning_pb2
from adapters.lnd.sim.payreq import InvoiceTerms, encode_payreq
from tests.conftest import wait_until

DATA = Path(__file__).resolve().parent / "data"


# ---------------------------------------------------------------- helpers


def connect(endpoint, **overrides) -> LndClient:
    settings = ConnectionSettings(
        host=overrides.pop("host", endpoint.address),
        tls_cert_path=str(overrides.pop("tls_cert_path", endpoint.tls_cert_path)),
        macaroon_path=str(overrides.pop("macaroon_path", endpoint.macaroon_path)),
        rpc_timeout_seconds=overrides.pop("rpc_timeout_seconds", 3.0),
        **overrides,
    )
    client = LndClient.connect(settings)
    assert not isinstance(client, LndError), client
    return client


def new_preimage() -> tuple[str, str]:
    preimage = secrets.token_bytes(32)
    return preimage.hex(), hashlib.sha256(preimage).hexdigest()


class Payer:
    """Pays from a wallet node in a background thread and records every update."""

    def __init__(self, client: LndClient, payment_request: str, amount_sat: int = 0) -> None:
        self.updates: list[PaymentSnapshot] = []
        self.stream: Stream[PaymentSnapshot] = client.send_payment(
            payment_request, amount_sat, fee_limit_sat=1000, timeout_seconds=30
        )
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for update in self.stream:
            self.updates.append(update)

    @property
    def last_status(self) -> PaymentStatus | None:
        return self.updates[-1].status if self.updates else None

    def wait_status(self, status: PaymentStatus, timeout: float = 5.0) -> PaymentSnapshot:
        wait_until(lambda: self.last_status is status, timeout, f"payer status {status}")
        return self.updates[-1]


@pytest.fixture
def mostro(lnsim):
    client = connect(lnsim.mostro)
    yield client
    client.close()


@pytest.fixture
def wallet(lnsim):
    client = connect(lnsim.wallets[0])
    yield client
    client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- pure parts


class _StatusError(grpc.RpcError):
    """An RpcError value as grpc raises it (code + details), for the pure classifier."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


ERROR_CASES = json.loads((DATA / "adapter_error_cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c["details"][:50] for c in ERROR_CASES])
def test_classify_lnd_errors(case):
    error = classify_rpc_error(_StatusError(grpc.StatusCode[case["code"]], case["details"]), "Call")
    assert error.kind.value == case["kind"]
    assert error.retryable is case["retryable"]
    assert error.message.startswith("Call: ")


def test_invoice_network_prefixes():
    assert invoice_network("lnbcrt1xyz") == "regtest"
    assert invoice_network("lntbs10u1xyz") == "signet"
    assert invoice_network("lntb10u1xyz") == "testnet"
    assert invoice_network("LIGHTNING:lnbc1xyz") == "mainnet"
    assert invoice_network("bob@example.com") is None


# ---------------------------------------------------------------- connecting


def test_get_info_and_network_check(mostro, lnsim):
    info = mostro.check_node("regtest")
    assert isinstance(info, NodeInfo)
    assert info.network == "regtest"
    assert info.identity_pubkey == lnsim.mostro.pubkey
    wrong = mostro.check_node("bitcoin")
    assert isinstance(wrong, LndError) and wrong.kind is ErrorKind.WRONG_NETWORK
    assert "regtest" in wrong.message and "mainnet" in wrong.message
    assert not wrong.retryable
    assert isinstance(mostro.check_node(""), NodeInfo)  # no expectation: take LND's network


def test_unreachable_lnd_is_a_clear_error(lnsim):
    client = connect(lnsim.mostro, host=f"127.0.0.1:{free_port()}")
    result = client.get_info()
    client.close()
    assert isinstance(result, LndError)
    assert result.kind is ErrorKind.UNREACHABLE and result.retryable
    assert "unreachable" in result.message


def test_wrong_macaroon_is_a_clear_error(lnsim, tmp_path):
    forged = tmp_path / "forged.macaroon"
    forged.write_bytes(os.urandom(64))
    client = connect(lnsim.mostro, macaroon_path=forged)
    result = client.get_info()
    client.close()
    assert isinstance(result, LndError) and result.kind is ErrorKind.AUTH
    assert "macaroon" in result.message and not result.retryable


def test_wrong_certificate_is_a_clear_error(lnsim):
    other = lnsim.wallets[0]
    assert other.tls_cert_path.read_bytes() != lnsim.mostro.tls_cert_path.read_bytes()
    client = connect(lnsim.mostro, tls_cert_path=other.tls_cert_path)
    result = client.get_info()
    client.close()
    assert isinstance(result, LndError) and result.kind is ErrorKind.TLS, result
    assert "lnd_cert_file" in result.message


def test_missing_files_are_config_errors(lnsim, tmp_path):
    for overrides in (
        {"tls_cert_path": str(tmp_path / "nope.cert")},
        {"macaroon_path": str(tmp_path / "nope.macaroon")},
        {"host": "no-port-here"},
    ):
        settings = ConnectionSettings(
            host=overrides.get("host", lnsim.mostro.address),
            tls_cert_path=overrides.get("tls_cert_path", str(lnsim.mostro.tls_cert_path)),
            macaroon_path=overrides.get("macaroon_path", str(lnsim.mostro.macaroon_path)),
        )
        result = LndClient.connect(settings)
        assert isinstance(result, LndError) and result.kind is ErrorKind.CONFIG, overrides


def test_host_written_as_url_is_accepted(lnsim):
    client = connect(lnsim.mostro, host=f"https://{lnsim.mostro.address}/")
    assert isinstance(client.get_info(), NodeInfo)
    client.close()


def test_hex_macaroon_file_is_accepted(lnsim, tmp_path):
    as_hex = tmp_path / "admin.macaroon.hex"
    as_hex.write_text(lnsim.mostro.macaroon_path.read_bytes().hex() + "\n")
    client = connect(lnsim.mostro, macaroon_path=as_hex)
    assert isinstance(client.get_info(), NodeInfo)
    client.close()


# ---------------------------------------------------------------- hold invoices


def test_hold_invoice_lifecycle_and_repeats(mostro, wallet, lnsim):
    preimage, payment_hash = new_preimage()
    added = mostro.add_hold_invoice(payment_hash, 5000, "escrow", 3600, 144)
    assert not isinstance(added, LndError) and added.outcome is Outcome.CREATED
    assert added.payment_request.startswith("lnbcrt")

    again = mostro.add_hold_invoice(payment_hash, 5000, "escrow", 3600, 144)
    assert again.outcome is Outcome.ALREADY_EXISTS
    assert again.payment_request == added.payment_request
    conflicting = mostro.add_hold_invoice(payment_hash, 6000, "escrow", 3600, 144)
    assert isinstance(conflicting, LndError) and conflicting.kind is ErrorKind.INVALID

    assert mostro.lookup_invoice(payment_hash).state is InvoiceState.OPEN
    early = mostro.settle_invoice(preimage)
    assert isinstance(early, LndError) and early.kind is ErrorKind.STILL_OPEN

    stream = mostro.subscribe_invoice(payment_hash)
    seen = iter(stream)
    assert next(seen).state is InvoiceState.OPEN
    payer = Payer(wallet, added.payment_request)
    accepted = next(seen)
    assert accepted.state is InvoiceState.ACCEPTED
    assert accepted.amt_paid_sat == 5000
    assert accepted.htlc_expiry_height == 200 + 144
    payer.wait_status(PaymentStatus.IN_FLIGHT)

    assert mostro.settle_invoice(preimage) is Outcome.SETTLED
    assert next(seen).state is InvoiceState.SETTLED
    assert list(seen) == [] and stream.error is None  # LND closes the stream after a final state
    assert mostro.settle_invoice(preimage) in (Outcome.SETTLED, Outcome.ALREADY_SETTLED)
    refused = mostro.cancel_invoice(payment_hash)
    assert isinstance(refused, LndError) and refused.kind is ErrorKind.ALREADY_SETTLED

    done = payer.wait_status(PaymentStatus.SUCCEEDED)
    assert done.preimage_hex == preimage


def test_cancel_of_accepted_hold_invoice_refunds_payer(mostro, wallet, lnsim):
    _, payment_hash = new_preimage()
    added = mostro.add_hold_invoice(payment_hash, 7000, "escrow", 3600, 144)
    before = lnsim.sim.balance_msat(lnsim.wallets[0].name)
    payer = Payer(wallet, added.payment_request)
    wait_until(lambda: mostro.lookup_invoice(payment_hash).state is InvoiceState.ACCEPTED)
    assert lnsim.sim.balance_msat(lnsim.wallets[0].name) == before - 7_000_000

    assert mostro.cancel_invoice(payment_hash) is Outcome.CANCELED
    assert mostro.cancel_invoice(payment_hash) in (Outcome.CANCELED, Outcome.ALREADY_CANCELED)
    failed = payer.wait_status(PaymentStatus.FAILED)
    assert failed.preimage_hex == ""
    assert lnsim.sim.balance_msat(lnsim.wallets[0].name) == before
    assert mostro.lookup_invoice(payment_hash).state is InvoiceState.CANCELED
    settle = mostro.settle_invoice("00" * 32)
    assert isinstance(settle, LndError) and settle.kind is ErrorKind.NOT_FOUND


def test_open_invoice_expires(mostro, lnsim):
    _, payment_hash = new_preimage()
    mostro.add_hold_invoice(payment_hash, 1000, "short", 60, 144)
    stream = mostro.subscribe_invoice(payment_hash)
    seen = iter(stream)
    assert next(seen).state is InvoiceState.OPEN
    lnsim.sim.advance_clock(61)
    assert next(seen).state is InvoiceState.CANCELED


def test_lookup_of_unknown_hash_is_not_found(mostro):
    result = mostro.lookup_invoice("ab" * 32)
    assert isinstance(result, LndError) and result.kind is ErrorKind.NOT_FOUND
    bad = mostro.lookup_invoice("abc")
    assert isinstance(bad, LndError) and bad.kind is ErrorKind.INVALID


# ---------------------------------------------------------------- decode and pay


def test_decode_pay_req(mostro, wallet):
    _, payment_hash = new_preimage()
    added = wallet.add_hold_invoice(payment_hash, 2500, "payout", 7200, 40)
    decoded = mostro.decode_pay_req(added.payment_request)
    assert isinstance(decoded, DecodedInvoice) and decoded.ok
    assert decoded.hash_hex == payment_hash
    assert decoded.amount_sat == 2500 and decoded.expiry == 7200 and decoded.cltv_expiry == 40
    assert decoded.description == "payout"

    garbage = mostro.decode_pay_req("lnbcrt1notaninvoice")
    assert isinstance(garbage, DecodedInvoice) and not garbage.ok


def test_decode_refuses_other_network(mostro):
    assert isinstance(mostro.check_node("regtest"), NodeInfo)  # as the adapter does at start
    mainnet = encode_payreq(InvoiceTerms(
        network="mainnet",
        payment_hash=bytes(32),
        payment_addr=bytes(32),
        amount_msat=1_000_000,
        timestamp=int(time.time()),
        expiry=3600,
        cltv_expiry=40,
        memo="other chain",
    ), "11" * 32)
    decoded = mostro.decode_pay_req(mainnet)
    assert isinstance(decoded, DecodedInvoice) and not decoded.ok
    assert decoded.error_kind == ErrorKind.WRONG_NETWORK.value
    assert invoice_network(mainnet) == "mainnet"


def test_send_payment_then_repeat_is_tracked(mostro, lnsim):
    wallet_stubs = lnsim.client(lnsim.wallets[0])
    invoice = wallet_stubs.lightning.AddInvoice(lightning_pb2.Invoice(value=3000, memo="payout"))
    stream = mostro.send_payment(invoice.payment_request, 0, fee_limit_sat=30, timeout_seconds=30)
    final = [u for u in stream if u.status in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED)]
    assert [u.status for u in final] == [PaymentStatus.SUCCEEDED]
    assert hashlib.sha256(bytes.fromhex(final[0].preimage_hex)).digest() == invoice.r_hash

    repeat = mostro.send_payment(invoice.payment_request, 0, fee_limit_sat=30, timeout_seconds=30)
    assert list(repeat) == []
    assert repeat.error is not None and repeat.error.kind is ErrorKind.ALREADY_PAID

    tracked = mostro.track_payment(invoice.r_hash.hex())
    assert [u.status for u in tracked][-1] is PaymentStatus.SUCCEEDED
    unknown = mostro.track_payment("cd" * 32)
    assert list(unknown) == [] and unknown.error.kind is ErrorKind.NOT_FOUND


def test_refused_rpc_is_retryable(mostro, lnsim):
    _, payment_hash = new_preimage()
    lnsim.sim.refuse("AddHoldInvoice", count=1)
    refused = mostro.add_hold_invoice(payment_hash, 1000, "x", 3600, 144)
    assert isinstance(refused, LndError) and refused.retryable and refused.link_down
    assert mostro.add_hold_invoice(payment_hash, 1000, "x", 3600, 144).outcome is Outcome.CREATED


def test_slow_lnd_hits_the_deadline(lnsim):
    client = connect(lnsim.mostro, rpc_timeout_seconds=0.2)
    lnsim.sim.delay("GetInfo", 600)
    result = client.get_info()
    client.close()
    assert isinstance(result, LndError) and result.kind is ErrorKind.TIMEOUT and result.retryable


# ---------------------------------------------------------------- AioLndClient (the loop's calls)


def test_aio_client_answers_like_the_blocking_one(mostro, wallet, lnsim):
    """Every coroutine of AioLndClient over real gRPC: the same values and outcomes as
    LndClient's calls (creation, repeats, refusals, cancel, decode, deadline)."""
    aio = AioLndClient(mostro)
    impatient = connect(lnsim.mostro, rpc_timeout_seconds=0.2)
    preimage, payment_hash = new_preimage()
    _, other_hash = new_preimage()

    async def scenario() -> dict:
        got: dict = {}
        got["added"] = await aio.add_hold_invoice(payment_hash, 5000, "escrow", 3600, 144)
        got["again"] = await aio.add_hold_invoice(payment_hash, 5000, "escrow", 3600, 144)
        got["conflict"] = await aio.add_hold_invoice(payment_hash, 6000, "escrow", 3600, 144)
        got["bad_hash"] = await aio.cancel_invoice("00")
        got["lookup"] = await aio.lookup_invoice(payment_hash)
        got["unknown"] = await aio.lookup_invoice(other_hash)
        got["early_settle"] = await aio.settle_invoice(preimage)
        got["decoded"] = await aio.decode_pay_req(got["added"].payment_request)
        # many at once on one loop: all answered
        got["info"] = await asyncio.gather(*(aio.get_info() for _ in range(20)))
        got["cancel"] = await aio.cancel_invoice(payment_hash)
        got["cancel_again"] = await aio.cancel_invoice(payment_hash)
        got["settle_cancelled"] = await aio.settle_invoice(preimage)
        lnsim.sim.delay("DecodePayReq", 600)
        got["slow"] = await AioLndClient(impatient).decode_pay_req(
            got["added"].payment_request)
        return got

    try:
        got = asyncio.run(scenario())
    finally:
        impatient.close()
    assert got["added"].outcome is Outcome.CREATED and got["added"].payment_request
    assert got["again"].outcome is Outcome.ALREADY_EXISTS
    assert got["again"].payment_request == got["added"].payment_request
    assert isinstance(got["conflict"], LndError) and got["conflict"].kind is ErrorKind.INVALID
    assert isinstance(got["bad_hash"], LndError) and got["bad_hash"].kind is ErrorKind.INVALID
    assert got["lookup"].state is InvoiceState.OPEN and got["lookup"].value_sat == 5000
    assert got["lookup"].payment_request == got["added"].payment_request
    assert isinstance(got["unknown"], LndError) and got["unknown"].kind is ErrorKind.NOT_FOUND
    early = got["early_settle"]
    assert isinstance(early, LndError) and early.kind is ErrorKind.STILL_OPEN
    decoded = got["decoded"]
    assert isinstance(decoded, DecodedInvoice) and decoded.ok
    assert decoded.hash_hex == payment_hash and decoded.amount_sat == 5000
    assert all(isinstance(info, NodeInfo) and info.alias for info in got["info"])
    assert got["cancel"] is Outcome.CANCELED
    assert got["cancel_again"] is mostro.cancel_invoice(payment_hash)  # a repeat: as LndClient's
    assert got["cancel_again"] in (Outcome.CANCELED, Outcome.ALREADY_CANCELED)
    assert isinstance(got["settle_cancelled"], LndError) and not got["settle_cancelled"].retryable
    slow = got["slow"]
    assert isinstance(slow, LndError) and slow.kind is ErrorKind.TIMEOUT and slow.retryable
