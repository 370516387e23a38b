"""gRPC clients for the parts of LND mostro-py uses: `LndClient` (blocking calls,
for threads) and `AioLndClient` (its unary calls as coroutines, for an asyncio loop).

It connects the way LND clients do (TLS with LND's own certificate, the
macaroon as hex in the `macaroon` metadata key), gives every unary call a
short deadline, and returns values: a result or an `LndError`, never a gRPC
exception. Repeats that LND reports as errors but that mean "already done"
come back as an `Outcome` (DESIGN.md §3). Server streams (invoice
subscriptions, payments) are `Stream` objects a caller iterates in its own
thread and may cancel from another. Both clients build requests and read
replies with the same functions, so they answer alike.

This module must not know about actors, threads it does not own, the
database or any business rule (what amount or expiry is acceptable lives in
`payreq.py` and in the order logic).
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

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
_Request = TypeVar("_Request")  # a protobuf request message

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
        parts = _credentials(settings)
        if isinstance(parts, LndError):
            return parts
        target, credentials, macaroon_hex = parts
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
        info = _node_info(reply)
        self.network = info.network
        return info

    def check_node(self, expected_network: str) -> NodeInfo | LndError:
        """GetInfo plus the network check the daemon does at start ("" skips the check)."""
        return _checked_node(self.get_info(), expected_network, self.settings.host)

    def add_hold_invoice(
        self, hash_hex: str, value_sat: int, memo: str, expiry: int, cltv_expiry: int
    ) -> HoldInvoiceAdded | LndError:
        """Create the hold invoice; if an earlier attempt already created it, return that one."""
        request = _add_hold_request(hash_hex, value_sat, memo, expiry, cltv_expiry)
        if isinstance(request, LndError):
            return request
        reply = self._unary(self._invoices.AddHoldInvoice, request, "AddHoldInvoice")
        if not isinstance(reply, LndError) or reply.kind is not ErrorKind.ALREADY_EXISTS:
            return _hold_added(reply)
        return _existing_hold(self.lookup_invoice(hash_hex), hash_hex, value_sat)

    def settle_invoice(self, preimage_hex: str) -> Outcome | LndError:
        request = _settle_request(preimage_hex)
        if isinstance(request, LndError):
            return request
        return _settle_outcome(self._unary(self._invoices.SettleInvoice, request,
                                           "SettleInvoice"))

    def cancel_invoice(self, hash_hex: str) -> Outcome | LndError:
        request = _cancel_request(hash_hex)
        if isinstance(request, LndError):
            return request
        return _cancel_outcome(self._unary(self._invoices.CancelInvoice, request,
                                           "CancelInvoice"))

    def lookup_invoice(self, hash_hex: str) -> InvoiceSnapshot | LndError:
        request = _lookup_request(hash_hex)
        if isinstance(request, LndError):
            return request
        reply = self._unary(self._invoices.LookupInvoiceV2, request, "LookupInvoiceV2")
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
        return _decoded(reply, payment_request, self.network)

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


# ---------------------------------------------------------------- requests and replies
# (shared by both clients: one place decides what a reply means)


def _node_info(reply: lightning_pb2.GetInfoResponse) -> NodeInfo:
    if reply.chains:
        network = reply.chains[0].network
    else:
        network = "testnet" if reply.testnet else "mainnet"
    return NodeInfo(
        identity_pubkey=reply.identity_pubkey,
        alias=reply.alias,
        network=normalize_network(network),
        block_height=reply.block_height,
        synced_to_chain=reply.synced_to_chain,
        version=reply.version,
    )


def _checked_node(info: NodeInfo | LndError, expected_network: str,
                  host: str) -> NodeInfo | LndError:
    if isinstance(info, LndError):
        return info
    expected = normalize_network(expected_network)
    if expected and info.network != expected:
        return LndError(
            ErrorKind.WRONG_NETWORK,
            f"LND at {host} runs on {info.network}, but the settings expect {expected}",
        )
    return info


def _add_hold_request(hash_hex: str, value_sat: int, memo: str, expiry: int,
                      cltv_expiry: int) -> invoices_pb2.AddHoldInvoiceRequest | LndError:
    payment_hash = _hash_bytes(hash_hex)
    if isinstance(payment_hash, LndError):
        return payment_hash
    return invoices_pb2.AddHoldInvoiceRequest(
        memo=memo, hash=payment_hash, value=value_sat, expiry=expiry, cltv_expiry=cltv_expiry
    )


def _hold_added(reply: invoices_pb2.AddHoldInvoiceResp | LndError) -> HoldInvoiceAdded | LndError:
    if isinstance(reply, LndError):
        return reply
    return HoldInvoiceAdded(reply.payment_request, Outcome.CREATED)


def _existing_hold(existing: InvoiceSnapshot | LndError, hash_hex: str,
                   value_sat: int) -> HoldInvoiceAdded | LndError:
    """The invoice an earlier attempt created, if it is the one asked for."""
    if isinstance(existing, LndError):
        return existing
    if existing.value_sat != value_sat:
        return LndError(
            ErrorKind.INVALID,
            f"an invoice for hash {hash_hex} already exists with {existing.value_sat} sat, "
            f"not {value_sat}",
        )
    return HoldInvoiceAdded(existing.payment_request, Outcome.ALREADY_EXISTS)


def _by_hash(hex_value: str, build: Callable[[bytes], _Request]) -> _Request | LndError:
    """The request for a 32-byte hash or preimage given in hex, or why it is not one."""
    raw = _hash_bytes(hex_value)
    return raw if isinstance(raw, LndError) else build(raw)


def _settle_request(preimage_hex: str) -> invoices_pb2.SettleInvoiceMsg | LndError:
    return _by_hash(preimage_hex, lambda raw: invoices_pb2.SettleInvoiceMsg(preimage=raw))


def _settle_outcome(reply: object) -> Outcome | LndError:
    if isinstance(reply, LndError):
        return Outcome.ALREADY_SETTLED if reply.kind is ErrorKind.ALREADY_SETTLED else reply
    return Outcome.SETTLED


def _cancel_request(hash_hex: str) -> invoices_pb2.CancelInvoiceMsg | LndError:
    return _by_hash(hash_hex, lambda raw: invoices_pb2.CancelInvoiceMsg(payment_hash=raw))


def _cancel_outcome(reply: object) -> Outcome | LndError:
    if isinstance(reply, LndError):
        return Outcome.ALREADY_CANCELED if reply.kind is ErrorKind.ALREADY_CANCELED else reply
    return Outcome.CANCELED


def _lookup_request(hash_hex: str) -> invoices_pb2.LookupInvoiceMsg | LndError:
    return _by_hash(hash_hex, lambda raw: invoices_pb2.LookupInvoiceMsg(payment_hash=raw))


def _decoded(reply: lightning_pb2.PayReq | LndError, payment_request: str,
             node_network: str | None) -> DecodedInvoice | LndError:
    if isinstance(reply, LndError):
        if reply.link_down or reply.kind is ErrorKind.TIMEOUT:
            return reply
        return DecodedInvoice(
            payment_request=payment_request, error=reply.message, error_kind=reply.kind.value
        )
    network = invoice_network(payment_request)
    if node_network is not None and network is not None and network != node_network:
        # LND refuses these itself; checked here too so every backend behaves alike.
        return DecodedInvoice(
            payment_request=payment_request,
            error=f"invoice not for current active network '{node_network}' ({network})",
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


def _credentials(settings: ConnectionSettings) -> tuple[str, grpc.ChannelCredentials, str] | LndError:
    """Target, TLS credentials and macaroon hex for `settings`, or why they cannot be had."""
    target = grpc_target(settings.host)
    if not target or ":" not in target:
        return LndError(ErrorKind.CONFIG, f"LND host must be host:port, got {settings.host!r}")
    cert = _read_cert(settings.tls_cert_path)
    if isinstance(cert, LndError):
        return cert
    macaroon_hex = _read_macaroon_hex(settings.macaroon_path)
    if isinstance(macaroon_hex, LndError):
        return macaroon_hex
    return target, grpc.ssl_channel_credentials(root_certificates=cert), macaroon_hex


class AioLndClient:
    """`LndClient`'s hold-invoice calls as coroutines, for an asyncio loop: each call is a
    gRPC future on the blocking client's channel, awaited on the loop, so hundreds of calls
    in flight cost no threads.

    Not grpc.aio: actor processes are forked from processes where gRPC is busy (the tests run
    the simulator in-process), and grpc.aio in such a child aborts in gRPC's poller; the
    blocking channel's futures do not. Use it on one running loop; `network` is the node's,
    from the blocking client's GetInfo (needed to refuse other networks' invoices)."""

    def __init__(self, client: LndClient) -> None:
        self._client = client
        self._metadata = client._metadata
        self.settings = client.settings
        self._lightning = client._lightning
        self._invoices = client._invoices

    @property
    def network(self) -> str | None:
        return self._client.network

    async def _unary(self, method: grpc.UnaryUnaryMultiCallable, request: object,
                     doing: str) -> Any:
        call = method.future(
            request, timeout=self.settings.rpc_timeout_seconds, metadata=self._metadata
        )
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()

        def wake(_: object) -> None:  # on gRPC's thread, or at once if already done
            try:
                loop.call_soon_threadsafe(_release, waiter)
            except RuntimeError:  # the loop is closed: nobody waits for this answer
                pass

        call.add_done_callback(wake)
        try:
            await waiter
        except asyncio.CancelledError:
            call.cancel()
            raise
        try:
            return call.result()
        except grpc.RpcError as err:
            return classify_rpc_error(err, doing)

    async def get_info(self) -> NodeInfo | LndError:
        reply = await self._unary(self._lightning.GetInfo, lightning_pb2.GetInfoRequest(),
                                  "GetInfo")
        return reply if isinstance(reply, LndError) else _node_info(reply)

    async def add_hold_invoice(
        self, hash_hex: str, value_sat: int, memo: str, expiry: int, cltv_expiry: int
    ) -> HoldInvoiceAdded | LndError:
        request = _add_hold_request(hash_hex, value_sat, memo, expiry, cltv_expiry)
        if isinstance(request, LndError):
            return request
        reply = await self._unary(self._invoices.AddHoldInvoice, request, "AddHoldInvoice")
        if not isinstance(reply, LndError) or reply.kind is not ErrorKind.ALREADY_EXISTS:
            return _hold_added(reply)
        return _existing_hold(await self.lookup_invoice(hash_hex), hash_hex, value_sat)

    async def settle_invoice(self, preimage_hex: str) -> Outcome | LndError:
        request = _settle_request(preimage_hex)
        if isinstance(request, LndError):
            return request
        return _settle_outcome(await self._unary(self._invoices.SettleInvoice, request,
                                                 "SettleInvoice"))

    async def cancel_invoice(self, hash_hex: str) -> Outcome | LndError:
        request = _cancel_request(hash_hex)
        if isinstance(request, LndError):
            return request
        return _cancel_outcome(await self._unary(self._invoices.CancelInvoice, request,
                                                 "CancelInvoice"))

    async def lookup_invoice(self, hash_hex: str) -> InvoiceSnapshot | LndError:
        request = _lookup_request(hash_hex)
        if isinstance(request, LndError):
            return request
        reply = await self._unary(self._invoices.LookupInvoiceV2, request, "LookupInvoiceV2")
        return reply if isinstance(reply, LndError) else _invoice_snapshot(reply)

    async def decode_pay_req(self, payment_request: str) -> DecodedInvoice | LndError:
        reply = await self._unary(
            self._lightning.DecodePayReq,
            lightning_pb2.PayReqString(pay_req=payment_request),
            "DecodePayReq",
        )
        return _decoded(reply, payment_request, self.network)


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
