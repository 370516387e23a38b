"""gRPC servicers of one simulated node: lnrpc.Lightning, invoicesrpc.Invoices
and routerrpc.Router, translating between LND's messages and the ledger.

Every decision is the ledger's; this module only converts messages, maps
`SimError`s to gRPC statuses and drains subscription queues into streams.
It must not change state except through the ledger.

The handlers are coroutines (unary) and async generators (streams) served
by grpc.aio on the simulator's one event loop; a stream waits for its
subscription through `aio_bridge.next_update`, never in a thread of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc

from adapters.lnd.protos import (
    invoices_pb2,
    invoices_pb2_grpc,
    lightning_pb2,
    lightning_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)

from .aio_bridge import LoopWaker, next_update
from .ledger import Ledger
from .payreq import PayReqError
from .records import Closed, InvoiceRecord, PaymentRecord, SimError, Subscription

SIM_VERSION = "0.19.0-beta commit=mostro-py-sim"
SIM_COMMIT = "mostro-py-sim"
_ZERO_PREIMAGE_HEX = "00" * 32  # what LND reports as the preimage of a payment not yet settled
_FAKE_CHAN_ID = 123_456_789 << 16

_FEATURE_NAMES = {
    8: "tlv-onion",
    9: "tlv-onion",
    14: "payment-addr",
    15: "payment-addr",
    16: "multi-path-payments",
    17: "multi-path-payments",
}


@dataclass(frozen=True)
class NodeIdentity:
    """What a node says about itself in GetInfo."""

    name: str
    alias: str
    host: str
    p2p_port: int


async def _abort(context: grpc.aio.ServicerContext, error: SimError) -> None:
    """Ends the call with the error's status (raises inside grpc.aio)."""
    await context.abort(grpc.StatusCode[error.code], error.message)


def _features(bits: tuple[int, ...]) -> dict[int, lightning_pb2.Feature]:
    return {
        bit: lightning_pb2.Feature(
            name=_FEATURE_NAMES.get(bit, "unknown"),
            is_required=bit % 2 == 0,
            is_known=bit in _FEATURE_NAMES,
        )
        for bit in bits
    }


def invoice_to_proto(invoice: InvoiceRecord) -> lightning_pb2.Invoice:
    htlcs = []
    if invoice.htlc is not None:
        htlc = invoice.htlc
        htlcs.append(
            lightning_pb2.InvoiceHTLC(
                chan_id=_FAKE_CHAN_ID,
                htlc_index=0,
                amt_msat=htlc.amt_msat,
                accept_height=htlc.accept_height,
                accept_time=htlc.accept_time,
                resolve_time=htlc.resolve_time,
                expiry_height=htlc.expiry_height,
                state=lightning_pb2.InvoiceHTLCState.Value(htlc.state),
                mpp_total_amt_msat=htlc.amt_msat,
            )
        )
    return lightning_pb2.Invoice(
        memo=invoice.memo,
        r_preimage=invoice.r_preimage,
        r_hash=invoice.r_hash,
        value=invoice.value_msat // 1000,
        value_msat=invoice.value_msat,
        settled=invoice.state == "SETTLED",
        creation_date=invoice.creation_date,
        settle_date=invoice.settle_date,
        payment_request=invoice.payment_request,
        description_hash=invoice.description_hash,
        expiry=invoice.expiry,
        cltv_expiry=invoice.cltv_expiry,
        add_index=invoice.add_index,
        settle_index=invoice.settle_index,
        amt_paid=invoice.amt_paid_msat,
        amt_paid_sat=invoice.amt_paid_msat // 1000,
        amt_paid_msat=invoice.amt_paid_msat,
        state=lightning_pb2.Invoice.InvoiceState.Value(invoice.state),
        htlcs=htlcs,
        features=_features((9, 14, 17)),
        payment_addr=invoice.payment_addr,
    )


def payment_to_proto(payment: PaymentRecord) -> lightning_pb2.Payment:
    attempts = []
    reached_destination = (
        payment.status != "FAILED"
        or payment.failure_reason == "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"
    )
    if reached_destination:
        status = {"SUCCEEDED": "SUCCEEDED", "FAILED": "FAILED"}.get(payment.status, "IN_FLIGHT")
        failure = None
        if payment.status == "FAILED":
            failure = lightning_pb2.Failure(
                code=lightning_pb2.Failure.INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS,
                htlc_msat=payment.value_msat,
            )
        attempts.append(
            lightning_pb2.HTLCAttempt(
                attempt_id=payment.payment_index,
                status=lightning_pb2.HTLCAttempt.HTLCStatus.Value(status),
                route=lightning_pb2.Route(
                    total_amt_msat=payment.value_msat + payment.fee_msat,
                    total_fees_msat=payment.fee_msat,
                    hops=[
                        lightning_pb2.Hop(
                            chan_id=_FAKE_CHAN_ID,
                            pub_key=payment.destination,
                            amt_to_forward_msat=payment.value_msat,
                        )
                    ],
                ),
                attempt_time_ns=payment.creation_time_ns,
                resolve_time_ns=payment.resolve_time_ns,
                failure=failure,
                preimage=payment.preimage,
            )
        )
    return lightning_pb2.Payment(
        payment_hash=payment.payment_hash.hex(),
        value=payment.value_msat // 1000,
        creation_date=payment.creation_time_ns // 1_000_000_000,
        fee=payment.fee_msat // 1000,
        payment_preimage=payment.preimage.hex() if payment.preimage else _ZERO_PREIMAGE_HEX,
        value_sat=payment.value_msat // 1000,
        value_msat=payment.value_msat,
        payment_request=payment.payment_request,
        status=lightning_pb2.Payment.PaymentStatus.Value(payment.status),
        fee_sat=payment.fee_msat // 1000,
        fee_msat=payment.fee_msat,
        creation_time_ns=payment.creation_time_ns,
        htlcs=attempts,
        payment_index=payment.payment_index,
        failure_reason=lightning_pb2.PaymentFailureReason.Value(payment.failure_reason),
    )


def _amount_msat(value_sat: int, value_msat: int) -> int | SimError:
    """LND's rule: value (sat) and value_msat are mutually exclusive."""
    if value_sat and value_msat and value_sat * 1000 != value_msat:
        return SimError("UNKNOWN", "value and value_msat are mutually exclusive")
    return value_msat or value_sat * 1000


async def stream_updates(
    ledger: Ledger,
    subscription: Subscription,
    context: grpc.aio.ServicerContext,
    *,
    to_proto: Callable,
    is_final: Callable[[object], bool],
    skip: Callable[[object], bool] = lambda _: False,
) -> AsyncIterator:
    """Yields each queued snapshot until a final one, a drop, or the client leaves
    (then grpc.aio cancels this generator and `finally` unsubscribes)."""
    waker = LoopWaker(asyncio.get_running_loop(), threading.get_ident())
    subscription.on_push = waker
    try:
        while True:
            item = await next_update(subscription, waker)
            if isinstance(item, Closed):
                if item.reason == "dropped":
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE, "stream dropped by the simulator"
                    )
                return
            if not skip(item):
                yield to_proto(item)
            if is_final(item):
                return
    finally:
        subscription.on_push = None
        ledger.unsubscribe(subscription)


class LightningService(lightning_pb2_grpc.LightningServicer):
    def __init__(self, ledger: Ledger, identity: NodeIdentity):
        self._ledger = ledger
        self._identity = identity

    async def GetInfo(self, request, context):
        node = self._ledger.node(self._identity.name)
        height = self._ledger.block_height
        peers = len(self._ledger.nodes()) - 1
        return lightning_pb2.GetInfoResponse(
            version=SIM_VERSION,
            commit_hash=SIM_COMMIT,
            identity_pubkey=node.pubkey,
            alias=self._identity.alias,
            color="#3399ff",
            num_active_channels=peers,
            num_peers=peers,
            block_height=height,
            block_hash=hashlib.sha256(f"block {height}".encode()).hexdigest(),
            best_header_timestamp=self._ledger.now(),
            synced_to_chain=True,
            synced_to_graph=True,
            chains=[lightning_pb2.Chain(chain="bitcoin", network=self._ledger.network)],
            uris=[f"{node.pubkey}@{self._identity.host}:{self._identity.p2p_port}"],
            features=_features((9, 15, 17)),
            wallet_synced=True,
        )

    async def ChannelBalance(self, request, context):
        balance_msat = self._ledger.node(self._identity.name).balance_msat
        return lightning_pb2.ChannelBalanceResponse(
            balance=balance_msat // 1000,
            local_balance=lightning_pb2.Amount(sat=balance_msat // 1000, msat=balance_msat),
            remote_balance=lightning_pb2.Amount(),
        )

    async def AddInvoice(self, request, context):
        amount = _amount_msat(request.value, request.value_msat)
        if isinstance(amount, SimError):
            return await _abort(context, amount)
        invoice = self._ledger.add_invoice(
            self._identity.name,
            value_msat=amount,
            memo=request.memo,
            expiry=request.expiry,
            cltv_expiry=request.cltv_expiry,
            preimage=request.r_preimage,
            description_hash=request.description_hash,
        )
        if isinstance(invoice, SimError):
            return await _abort(context, invoice)
        return lightning_pb2.AddInvoiceResponse(
            r_hash=invoice.r_hash,
            payment_request=invoice.payment_request,
            add_index=invoice.add_index,
            payment_addr=invoice.payment_addr,
        )

    async def LookupInvoice(self, request, context):
        r_hash = request.r_hash
        if not r_hash and request.r_hash_str:
            try:
                r_hash = bytes.fromhex(request.r_hash_str)
            except ValueError:
                return await _abort(context, SimError("UNKNOWN", "invalid r_hash_str"))
        invoice = self._ledger.lookup_invoice(self._identity.name, r_hash)
        if isinstance(invoice, SimError):
            return await _abort(context, invoice)
        return invoice_to_proto(invoice)

    async def DecodePayReq(self, request, context):
        decoded = self._ledger.decode_payment_request(request.pay_req)
        if isinstance(decoded, PayReqError):
            return await _abort(context, SimError("UNKNOWN", decoded.reason))
        return lightning_pb2.PayReq(
            destination=decoded.destination,
            payment_hash=decoded.payment_hash.hex(),
            num_satoshis=decoded.amount_msat // 1000,
            timestamp=decoded.timestamp,
            expiry=decoded.expiry,
            description=decoded.description,
            description_hash=decoded.description_hash,
            cltv_expiry=decoded.cltv_expiry,
            payment_addr=decoded.payment_addr,
            num_msat=decoded.amount_msat,
            features=_features(decoded.feature_bits),
        )


class InvoicesService(invoices_pb2_grpc.InvoicesServicer):
    def __init__(self, ledger: Ledger, identity: NodeIdentity):
        self._ledger = ledger
        self._node = identity.name

    async def AddHoldInvoice(self, request, context):
        amount = _amount_msat(request.value, request.value_msat)
        if isinstance(amount, SimError):
            return await _abort(context, amount)
        invoice = self._ledger.add_hold_invoice(
            self._node,
            r_hash=request.hash,
            value_msat=amount,
            memo=request.memo,
            expiry=request.expiry,
            cltv_expiry=request.cltv_expiry,
            description_hash=request.description_hash,
        )
        if isinstance(invoice, SimError):
            return await _abort(context, invoice)
        return invoices_pb2.AddHoldInvoiceResp(
            payment_request=invoice.payment_request,
            add_index=invoice.add_index,
            payment_addr=invoice.payment_addr,
        )

    async def SettleInvoice(self, request, context):
        result = self._ledger.settle_invoice(self._node, request.preimage)
        if isinstance(result, SimError):
            return await _abort(context, result)
        return invoices_pb2.SettleInvoiceResp()

    async def CancelInvoice(self, request, context):
        result = self._ledger.cancel_invoice(self._node, request.payment_hash)
        if isinstance(result, SimError):
            return await _abort(context, result)
        return invoices_pb2.CancelInvoiceResp()

    async def LookupInvoiceV2(self, request, context):
        reference = request.WhichOneof("invoice_ref")
        if reference == "payment_hash":
            result = self._ledger.lookup_invoice(self._node, request.payment_hash)
        elif reference == "payment_addr":
            result = self._ledger.lookup_invoice_by_addr(self._node, request.payment_addr)
        else:
            result = SimError("NOT_FOUND", "unable to locate invoice")
        if isinstance(result, SimError):
            return await _abort(context, result)
        return invoice_to_proto(result)

    async def SubscribeSingleInvoice(self, request, context):
        if len(request.r_hash) != 32:
            await _abort(
                context,
                SimError("UNKNOWN", f"invalid hash length of {len(request.r_hash)}, want 32"),
            )
            return
        subscription = self._ledger.subscribe_invoice(self._node, request.r_hash)
        async for update in stream_updates(
            self._ledger,
            subscription,
            context,
            to_proto=invoice_to_proto,
            is_final=lambda invoice: invoice.state in ("SETTLED", "CANCELED"),
        ):
            yield update


class RouterService(router_pb2_grpc.RouterServicer):
    def __init__(self, ledger: Ledger, identity: NodeIdentity):
        self._ledger = ledger
        self._node = identity.name

    async def SendPaymentV2(self, request: router_pb2.SendPaymentRequest, context):
        if not request.payment_request:
            await _abort(
                context,
                SimError("UNKNOWN", "the simulator pays BOLT11 payment requests only"),
            )
            return
        amount = _amount_msat(request.amt, request.amt_msat)
        fee_limit = _amount_msat(request.fee_limit_sat, request.fee_limit_msat)
        for value in (amount, fee_limit):
            if isinstance(value, SimError):
                await _abort(context, value)
                return
        result = self._ledger.send_payment(
            self._node,
            payment_request=request.payment_request,
            amount_msat=amount,
            fee_limit_msat=fee_limit,
            allow_self_payment=request.allow_self_payment,
            subscribe=True,
        )
        if isinstance(result, SimError):
            await _abort(context, result)
            return
        _, subscription = result
        async for update in self._stream(subscription, context, request.no_inflight_updates):
            yield update

    async def TrackPaymentV2(self, request: router_pb2.TrackPaymentRequest, context):
        subscription = self._ledger.subscribe_payment(self._node, request.payment_hash)
        if isinstance(subscription, SimError):
            await _abort(context, subscription)
            return
        async for update in self._stream(subscription, context, request.no_inflight_updates):
            yield update

    def _stream(self, subscription, context, no_inflight_updates: bool) -> AsyncIterator:
        return stream_updates(
            self._ledger,
            subscription,
            context,
            to_proto=payment_to_proto,
            is_final=lambda payment: payment.status in ("SUCCEEDED", "FAILED"),
            skip=lambda payment: (
                no_inflight_updates and payment.status not in ("SUCCEEDED", "FAILED")
            ),
        )


def add_node_services(server: grpc.aio.Server, ledger: Ledger, identity: NodeIdentity) -> None:
    lightning_pb2_grpc.add_LightningServicer_to_server(LightningService(ledger, identity), server)
    invoices_pb2_grpc.add_InvoicesServicer_to_server(InvoicesService(ledger, identity), server)
    router_pb2_grpc.add_RouterServicer_to_server(RouterService(ledger, identity), server)
