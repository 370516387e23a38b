"""A synchronous gRPC client for the parts of LND mostro-py uses.

It connects the way LND clients do (TLS with LND's own certificate, the
macaroon as hex in the `macaroon` metadata key), gives every unary call a
short deadline, and returns values: a result or an `LndError`, never a gRPC
exception. Repeats that LND reports as errors but that mean "already done"
come back as an `Outcome` (DESIGN.md §3). Server streams (invoice
subscriptions, payments) are `Stream` objects a caller iterates in its own
thread and may cancel from another.

This module must not know about actors, threads it does not own, the
database or any business rule (what amount or expiry is acceptable lives in
`payreq.py` and in the order logic).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import grpc

from adapters.lnd.errors import ErrorKind, LndError, classify_rpc_error
from adapters.lnd.messages import (
    DecodedInvoice,
    InvoiceSnapshot,
    InvoiceState,
    NodeInfo,
    Outcome,
    PaymentSnapshot,
    PaymentStatus,
)
from adapters.lnd.networks import invoice_network, normalize_network
from adapters.lnd.protos import (
    invoices_pb2,
    invoices_pb2_grpc,
    lightning_pb2,
    lightning_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)

T = TypeVar("T")

_HTLC_ACCEPTED = 0  # lnrpc.InvoiceHTLCState.ACCEPTED


@dataclass(frozen=True)
class HoldInvoiceAdded:
    payment_request: str
    outcome: Outcome  # CREATED, or ALREADY_EXISTS when an earlier attempt got through


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach one LND node (the `[lightning]` connection keys)."""

    host: str
    tls_cert_path: str
    macaroon_path: str
    rpc_timeout_seconds: float = 5.0
    reconnect_min_seconds: float = 0.1
    reconnect_max_seconds: float = 10.0
    keepalive_seconds: float = (
        0.0  # 0: no client pings (LND rejects pings more often than it allows)
    )


class Stream(Generic[T]):
    """A server stream: iterate for converted items; afterwards `error` says why it ended.

    `error` is None when the server closed the stream normally (LND does so after an
    invoice reaches a final state), else an `LndError` (CANCELLED if we cancelled it).
    """

    def __init__(self, call: grpc.Call, convert: Callable[[object], T], doing: str) -> None:
        self._call = call
        self._convert = convert
        self._doing = doing
        self.error: LndError | None = None

    def __iter__(self) -> Iterator[T]:
        try:
            for message in self._call:  # type: ignore[attr-defined]
                yield self._convert(message)
        except grpc.RpcError as err:
            self.error = classify_rpc_error(err, self._doing)

    def cancel(self) -> None:
        self._call.cancel()


def grpc_target(host: str) -> str:
    """`host:port` from an `lnd_grpc_host` that may be written as a URL (https://host:port)."""
    text = host.strip()
    return text.split("://", 1)[1].rstrip("/") if "://" in text else text


def _read_macaroon_hex(path: str) -> str | LndError:
    try:
        raw = Path(path).expanduser().read_bytes()
    except OSError as err:
        return LndError(ErrorKind.CONFIG, f"cannot read LND macaroon file {path!r}: {err.strerror}")
    text = raw.strip()
    if text and all(chr(b) in string.hexdigits for b in text):
        return text.decode("ascii").lower()  # already hex (as some tools export it)
    if not raw:
        return LndError(ErrorKind.CONFIG, f"LND macaroon file {path!r} is empty")
    return raw.hex()


def _read_cert(path: str) -> bytes | LndError:
    try:
        cert = Path(path).expanduser().read_bytes()
    except OSError as err:
        return LndError(
            ErrorKind.CONFIG, f"cannot read LND TLS certificate {path!r}: {err.strerror}"
        )
    if b"BEGIN CERTIFICATE" not in cert:
        return LndError(
            ErrorKind.CONFIG, f"{path!r} is not a PEM certificate (expected LND's tls.cert)"
        )
    return cert


def _channel_options(settings: ConnectionSettings) -> list[tuple[str, int]]:
    options = [
        ("grpc.max_receive_message_length", 50 * 1024 * 1024),
        ("grpc.initial_reconnect_backoff_ms", max(1, int(settings.reconnect_min_seconds * 1000))),
        ("grpc.min_reconnect_backoff_ms", max(1, int(settings.reconnect_min_seconds * 1000))),
        ("grpc.max_reconnect_backoff_ms", max(1, int(settings.reconnect_max_seconds * 1000))),
        ("grpc.enable_retries", 0),
    ]
    if settings.keepalive_seconds > 0:
        options += [
            ("grpc.keepalive_time_ms", int(settings.keepalive_seconds * 1000)),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
        ]
    return options


def _invoice_snapshot(invoice: lightning_pb2.Invoice) -> InvoiceSnapshot:
    held = [h.expiry_height for h in invoice.htlcs if h.state == _HTLC_ACCEPTED]
    return InvoiceSnapshot(
        hash_hex=invoice.r_hash.hex(),
        state=InvoiceState(lightning_pb2.Invoice.InvoiceState.Name(invoice.state)),
        value_sat=invoice.value,
        amt_paid_sat=invoice.amt_paid_sat,
        payment_request=invoice.payment_request,
        creation_date=invoice.creation_date,
        expiry=invoice.expiry,
        cltv_expiry=invoice.cltv_expiry,
        htlc_expiry_height=min(held) if held else 0,
    )


def _payment_snapshot(payment: lightning_pb2.Payment) -> PaymentSnapshot:
    status_name = lightning_pb2.Payment.PaymentStatus.Name(payment.status)
    return PaymentSnapshot(
        hash_hex=payment.payment_hash,
        status=PaymentStatus(status_name),
        preimage_hex=(
            payment.payment_preimage if payment.status == lightning_pb2.Payment.SUCCEEDED else ""
        ),
        fee_sat=payment.fee_sat,
        value_sat=payment.value_sat,
        failure_reason=(
            lightning_pb2.PaymentFailureReason.Name(payment.failure_reason)
            if payment.failure_reason
            else ""
        ),
    )


def _hash_bytes(hash_hex: str) -> bytes | LndError:
    try:
        raw = bytes.fromhex(hash_hex)
    except ValueError:
        return LndError(ErrorKind.INVALID, f"not a hex hash: {hash_hex!r}")
    if len(raw) != 32:
        return LndError(ErrorKind.INVALID, f"a payment hash/preimage is 32 bytes, got {len(raw)}")
    return raw


class LndClient:
    """One channel to one LND node; thread-safe (gRPC channels and stubs are)."""

    def __init__(
        self, channel: grpc.Channel, macaroon_hex: str, settings: ConnectionSettings
    ) -> None:
        self._channel = channel
        self._metadata = (("macaroon", macaroon_hex),)
        self.settings = settings
        self._lightning = lightning_pb2_grpc.LightningStub(channel)
        self._invoices = invoices_pb2_grpc.InvoicesStub(channel)
        self._router = router_pb2_grpc.RouterStub(channel)
        self.network: str | None = None  # the node's, once GetInfo answered

    @classmethod
    def connect(cls, settings: ConnectionSettings) -> LndClient | LndError:
        """Open the channel (lazily: nothing is sent until the first call)."""
        target = grpc_target(settings.host)
        if not target or ":" not in target:
            return LndError(ErrorKind.CONFIG, f"LND host must be host:port, got {settings.host!r}")
        cert = _read_cert(settings.tls_cert_path)
        if isinstance(cert, LndError):
            return cert
        macaroon_hex = _read_macaroon_hex(settings.macaroon_path)
        if isinstance(macaroon_hex, LndError):
            return macaroon_hex
        credentials = grpc.ssl_channel_credentials(root_certificates=cert)
        channel = grpc.secure_channel(target, credentials, options=_channel_options(settings))
        return cls(channel, macaroon_hex, settings)

    def close(self) -> None:
        self._channel.close()

    # ------------------------------------------------------------ unary calls

    def _unary(self, method: Callable[..., T], request: object, doing: str) -> T | LndError:
        try:
            return method(
                request, timeout=self.settings.rpc_timeout_seconds, metadata=self._metadata
            )
        except grpc.RpcError as err:
            return classify_rpc_error(err, doing)

    def get_info(self) -> NodeInfo | LndError:
        reply = self._unary(self._lightning.GetInfo, lightning_pb2.GetInfoRequest(), "GetInfo")
        if isinstance(reply, LndError):
            return reply
        if reply.chains:
            network = reply.chains[0].network
        else:
            network = "testnet" if reply.testnet else "mainnet"
        self.network = normalize_network(network)
        return NodeInfo(
            identity_pubkey=reply.identity_pubkey,
            alias=reply.alias,
            network=self.network,
            block_height=reply.block_height,
            synced_to_chain=reply.synced_to_chain,
            version=reply.version,
        )

    def check_node(self, expected_network: str) -> NodeInfo | LndError:
        """GetInfo plus the network check the daemon does at start ("" skips the check)."""
        info = self.get_info()
        if isinstance(info, LndError):
            return info
        expected = normalize_network(expected_network)
        if expected and info.network != expected:
            return LndError(
                ErrorKind.WRONG_NETWORK,
                f"LND at {self.settings.host} runs on {info.network}, but the settings expect "
                f"{expected}",
            )
        return info

    def add_hold_invoice(
        self, hash_hex: str, value_sat: int, memo: str, expiry: int, cltv_expiry: int
    ) -> HoldInvoiceAdded | LndError:
        """Create the hold invoice; if an earlier attempt already created it, return that one."""
        payment_hash = _hash_bytes(hash_hex)
        if isinstance(payment_hash, LndError):
            return payment_hash
        request = invoices_pb2.AddHoldInvoiceRequest(
            memo=memo, hash=payment_hash, value=value_sat, expiry=expiry, cltv_expiry=cltv_expiry
        )
        reply = self._unary(self._invoices.AddHoldInvoice, request, "AddHoldInvoice")
        if not isinstance(reply, LndError):
            return HoldInvoiceAdded(reply.payment_request, Outcome.CREATED)
        if reply.kind is not ErrorKind.ALREADY_EXISTS:
            return reply
        existing = self.lookup_invoice(hash_hex)
        if isinstance(existing, LndError):
            return existing
        if existing.value_sat != value_sat:
            return LndError(
                ErrorKind.INVALID,
                f"an invoice for hash {hash_hex} already exists with {existing.value_sat} sat, "
                f"not {value_sat}",
            )
        return HoldInvoiceAdded(existing.payment_request, Outcome.ALREADY_EXISTS)

    def settle_invoice(self, preimage_hex: str) -> Outcome | LndError:
        preimage = _hash_bytes(preimage_hex)
        if isinstance(preimage, LndError):
            return preimage
        reply = self._unary(
            self._invoices.SettleInvoice,
            invoices_pb2.SettleInvoiceMsg(preimage=preimage),
            "SettleInvoice",
        )
        if isinstance(reply, LndError):
            return Outcome.ALREADY_SETTLED if reply.kind is ErrorKind.ALREADY_SETTLED else reply
        return Outcome.SETTLED

    def cancel_invoice(self, hash_hex: str) -> Outcome | LndError:
        payment_hash = _hash_bytes(hash_hex)
        if isinstance(payment_hash, LndError):
            return payment_hash
        reply = self._unary(
            self._invoices.CancelInvoice,
            invoices_pb2.CancelInvoiceMsg(payment_hash=payment_hash),
            "CancelInvoice",
        )
        if isinstance(reply, LndError):
            return Outcome.ALREADY_CANCELED if reply.kind is ErrorKind.ALREADY_CANCELED else reply
        return Outcome.CANCELED

    def lookup_invoice(self, hash_hex: str) -> InvoiceSnapshot | LndError:
        payment_hash = _hash_bytes(hash_hex)
        if isinstance(payment_hash, LndError):
            return payment_hash
        reply = self._unary(
            self._invoices.LookupInvoiceV2,
            invoices_pb2.LookupInvoiceMsg(payment_hash=payment_hash),
            "LookupInvoiceV2",
        )
        return reply if isinstance(reply, LndError) else _invoice_snapshot(reply)

    def decode_pay_req(self, payment_request: str) -> DecodedInvoice | LndError:
        """Decode a bolt11 with LND (which also refuses other networks' invoices).

        A refused invoice is a `DecodedInvoice` with `error` set; an `LndError` means
        LND could not be asked (try again later)."""
        reply = self._unary(
            self._lightning.DecodePayReq,
            lightning_pb2.PayReqString(pay_req=payment_request),
            "DecodePayReq",
        )
        if isinstance(reply, LndError):
            if reply.link_down or reply.kind is ErrorKind.TIMEOUT:
                return reply
            return DecodedInvoice(
                payment_request=payment_request, error=reply.message, error_kind=reply.kind.value
            )
        network = invoice_network(payment_request)
        if self.network is not None and network is not None and network != self.network:
            # LND refuses these itself; checked here too so every backend behaves alike.
            return DecodedInvoice(
                payment_request=payment_request,
                error=f"invoice not for current active network '{self.network}' ({network})",
                error_kind=ErrorKind.WRONG_NETWORK.value,
            )
        return DecodedInvoice(
            payment_request=payment_request,
            hash_hex=reply.payment_hash,
            destination=reply.destination,
            amount_sat=reply.num_satoshis,
            amount_msat=reply.num_msat,
            timestamp=reply.timestamp,
            expiry=reply.expiry,
            cltv_expiry=reply.cltv_expiry,
            description=reply.description,
        )

    # ------------------------------------------------------------ streams

    def subscribe_invoice(self, hash_hex: str) -> Stream[InvoiceSnapshot] | LndError:
        payment_hash = _hash_bytes(hash_hex)
        if isinstance(payment_hash, LndError):
            return payment_hash
        call = self._invoices.SubscribeSingleInvoice(
            invoices_pb2.SubscribeSingleInvoiceRequest(r_hash=payment_hash), metadata=self._metadata
        )
        return Stream(call, _invoice_snapshot, "SubscribeSingleInvoice")

    def send_payment(
        self, payment_request: str, amount_sat: int, fee_limit_sat: int, timeout_seconds: int
    ) -> Stream[PaymentSnapshot]:
        """Start a payment; a repeat for a paid/in-flight hash fails the stream with
        PAYMENT_IN_FLIGHT/ALREADY_PAID, and the caller then tracks it instead."""
        request = router_pb2.SendPaymentRequest(
            payment_request=payment_request,
            amt=amount_sat,
            fee_limit_sat=fee_limit_sat,
            timeout_seconds=timeout_seconds,
        )
        call = self._router.SendPaymentV2(request, metadata=self._metadata)
        return Stream(call, _payment_snapshot, "SendPaymentV2")

    def track_payment(self, hash_hex: str) -> Stream[PaymentSnapshot] | LndError:
        payment_hash = _hash_bytes(hash_hex)
        if isinstance(payment_hash, LndError):
            return payment_hash
        call = self._router.TrackPaymentV2(
            router_pb2.TrackPaymentRequest(payment_hash=payment_hash), metadata=self._metadata
        )
        return Stream(call, _payment_snapshot, "TrackPaymentV2")
