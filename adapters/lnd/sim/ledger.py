"""The simulated Lightning network: nodes, balances, invoices and payments,
with LND's invoice and payment semantics.

Everything that decides what happens to an invoice or a payment lives here:
hold invoices (OPEN → ACCEPTED → SETTLED | CANCELED), ordinary invoices that
settle when paid, expiry by clock and by block height, balances and fees,
and LND's error texts. It must not know about gRPC, TLS, files or threads
other than its own lock: results are values (a record or a `SimError`), and
changes are pushed to `Subscription` queues that the gRPC layer drains.

One lock guards all state; every public method takes it, so each method is
one atomic step of the network. No method scans every invoice on the hot
paths: expiry comes off a deadline heap, and the persistence snapshot is a
shallow copy taken under the lock and encoded by the caller outside it.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import coincurve

from .clock import SimClock
from .payreq import (
    CURRENCY_BY_NETWORK,
    DecodedPayReq,
    InvoiceTerms,
    PayReqError,
    decode_payreq,
    encode_payreq,
    issued_payreq,
)
from .records import (
    FeePolicy,
    HtlcRecord,
    InvoiceRecord,
    NodeRecord,
    PaymentRecord,
    SimError,
    Subscription,
    invoice_from_json,
    invoice_to_json,
    payment_from_json,
    payment_to_json,
)

# LND's defaults and constants
DEFAULT_INVOICE_EXPIRY_S = 86_400
DEFAULT_CLTV_EXPIRY = 80
HOLD_INVOICE_EXPIRY_DELTA = 12  # blocks before an accepted HTLC's expiry that LND cancels it

# LND's error texts, so clients that match on them behave the same here
ERR_DUPLICATE_INVOICE = "invoice with payment hash already exists"
ERR_INVOICE_NOT_FOUND = "unable to locate invoice"
ERR_ALREADY_SETTLED = "invoice already settled"
ERR_ALREADY_CANCELED = "invoice already canceled"
ERR_STILL_OPEN = "invoice still open"
ERR_ALREADY_PAID = "invoice is already paid"
ERR_PAYMENT_IN_FLIGHT = "payment is in transition"
ERR_PAYMENT_NOT_INITIATED = "payment isn't initiated"


@dataclass(frozen=True)
class LedgerSnapshot:
    """The records at one instant (records are immutable, so sharing them is safe)."""

    network: str
    block_height: int
    clock: dict
    nodes: tuple[NodeRecord, ...]
    invoices: tuple[InvoiceRecord, ...]
    payments: tuple[PaymentRecord, ...]


def pubkey_of(private_key_hex: str) -> str:
    return coincurve.PrivateKey.from_hex(private_key_hex).public_key.format(compressed=True).hex()


class Ledger:
    """The whole simulated network. Thread-safe; see the module docstring."""

    def __init__(
        self,
        *,
        network: str = "regtest",
        clock: SimClock,
        block_height: int = 200,
        fee_policy: FeePolicy | None = None,
        on_change: Callable[[], None] | None = None,
    ):
        if network not in CURRENCY_BY_NETWORK:
            raise ValueError(f"unknown network {network!r}")
        self.network = network
        self.clock = clock
        self.fee_policy = fee_policy or FeePolicy()
        self._block_height = block_height
        self.on_change = on_change
        self._lock = threading.RLock()
        self._nodes: dict[str, NodeRecord] = {}
        self._invoices: dict[tuple[str, bytes], InvoiceRecord] = {}
        self._payments: dict[tuple[str, bytes], PaymentRecord] = {}
        self._invoice_subs: dict[tuple[str, bytes], set[Subscription]] = {}
        self._payment_subs: dict[tuple[str, bytes], set[Subscription]] = {}
        # (deadline, key) of invoices created OPEN; entries no longer OPEN are skipped lazily
        self._expiry_heap: list[tuple[int, tuple[str, bytes]]] = []
        self._key_by_addr: dict[tuple[str, bytes], tuple[str, bytes]] = {}
        # payment request -> its decoded form, for the requests this ledger issued
        self._issued: dict[str, DecodedPayReq] = {}

    # ---- nodes -----------------------------------------------------------

    def add_node(self, name: str, *, balance_msat: int, private_key_hex: str = "") -> NodeRecord:
        key_hex = private_key_hex or coincurve.PrivateKey().to_hex()
        with self._lock:
            if name in self._nodes:
                raise ValueError(f"node {name!r} exists")
            node = NodeRecord(name, key_hex, pubkey_of(key_hex), balance_msat)
            self._nodes[name] = node
            self._changed()
            return node

    def node(self, name: str) -> NodeRecord:
        with self._lock:
            return self._nodes[name]

    def nodes(self) -> list[NodeRecord]:
        with self._lock:
            return list(self._nodes.values())

    def set_balance(self, name: str, balance_msat: int) -> None:
        with self._lock:
            self._nodes[name] = replace(self._nodes[name], balance_msat=balance_msat)
            self._changed()

    @property
    def block_height(self) -> int:
        with self._lock:
            return self._block_height

    def set_block_height(self, height: int) -> None:
        """Moves the chain; accepted hold invoices too close to their HTLC expiry cancel."""
        with self._lock:
            self._block_height = height
            for key, invoice in list(self._invoices.items()):
                htlc = invoice.htlc
                if (
                    invoice.state == "ACCEPTED"
                    and htlc is not None
                    and height + HOLD_INVOICE_EXPIRY_DELTA >= htlc.expiry_height
                ):
                    self._cancel_locked(key)
            self._changed()

    # ---- clock -----------------------------------------------------------

    def now(self) -> int:
        return int(self.clock.now())

    def advance_clock(self, seconds: float) -> float:
        now = self.clock.advance(seconds)
        self.expire_due()
        return now

    def expire_due(self) -> int:
        """Cancels every OPEN invoice past its expiry; returns how many."""
        with self._lock:
            now = self.now()
            heap = self._expiry_heap
            expired = 0
            while heap and heap[0][0] <= now:
                _, key = heapq.heappop(heap)
                invoice = self._invoices.get(key)
                if invoice is not None and invoice.state == "OPEN":
                    self._cancel_locked(key)
                    expired += 1
            if expired:
                self._changed()
            return expired

    def seconds_to_next_expiry(self) -> float | None:
        with self._lock:
            heap = self._expiry_heap
            while heap and self._invoices[heap[0][1]].state != "OPEN":
                heapq.heappop(heap)
            deadline = heap[0][0] if heap else None
        return None if deadline is None else max(0.0, deadline - self.clock.now())

    # ---- invoices (receiver side) ----------------------------------------

    def add_invoice(
        self,
        node: str,
        *,
        value_msat: int,
        memo: str = "",
        expiry: int = 0,
        cltv_expiry: int = 0,
        preimage: bytes = b"",
        description_hash: bytes = b"",
    ) -> InvoiceRecord | SimError:
        """An ordinary invoice: settles as soon as it is paid (LND's AddInvoice)."""
        if preimage and len(preimage) != 32:
            return SimError("UNKNOWN", "payment preimage must be exactly 32 bytes")
        preimage = preimage or os.urandom(32)
        return self._create_invoice(
            node,
            r_hash=hashlib.sha256(preimage).digest(),
            r_preimage=preimage,
            is_hold=False,
            value_msat=value_msat,
            memo=memo,
            expiry=expiry,
            cltv_expiry=cltv_expiry,
            description_hash=description_hash,
        )

    def add_hold_invoice(
        self,
        node: str,
        *,
        r_hash: bytes,
        value_msat: int,
        memo: str = "",
        expiry: int = 0,
        cltv_expiry: int = 0,
        description_hash: bytes = b"",
    ) -> InvoiceRecord | SimError:
        """A hold invoice tied to `r_hash`: paid, it waits ACCEPTED for settle or cancel."""
        if len(r_hash) != 32:
            return SimError("UNKNOWN", f"invalid hash length {len(r_hash)}, expected 32")
        return self._create_invoice(
            node,
            r_hash=r_hash,
            r_preimage=b"",
            is_hold=True,
            value_msat=value_msat,
            memo=memo,
            expiry=expiry,
            cltv_expiry=cltv_expiry,
            description_hash=description_hash,
        )

    def _create_invoice(
        self,
        node_name: str,
        *,
        r_hash: bytes,
        r_preimage: bytes,
        is_hold: bool,
        value_msat: int,
        memo: str,
        expiry: int,
        cltv_expiry: int,
        description_hash: bytes,
    ) -> InvoiceRecord | SimError:
        if value_msat < 0:
            return SimError("UNKNOWN", "amount cannot be negative")
        if len(memo) > 1024:
            return SimError("UNKNOWN", "memo too large: 1024 bytes maximum")
        if description_hash and len(description_hash) != 32:
            return SimError("UNKNOWN", "description hash is 32 bytes")
        if expiry < 0:
            return SimError("UNKNOWN", "expiry cannot be negative")
        with self._lock:
            self.expire_due()
            key = (node_name, r_hash)
            if key in self._invoices:
                return SimError("UNKNOWN", ERR_DUPLICATE_INVOICE)
            node = self._nodes[node_name]
            now = self.now()
            expiry = expiry or DEFAULT_INVOICE_EXPIRY_S
            cltv_expiry = cltv_expiry or DEFAULT_CLTV_EXPIRY
            payment_addr = os.urandom(32)
            terms = InvoiceTerms(
                network=self.network,
                payment_hash=r_hash,
                payment_addr=payment_addr,
                amount_msat=value_msat,
                timestamp=now,
                expiry=expiry,
                cltv_expiry=cltv_expiry,
                memo=memo,
                description_hash=description_hash,
            )
            payment_request = encode_payreq(terms, node.private_key_hex)
            self._issued[payment_request] = issued_payreq(terms, node.pubkey)
            invoice = InvoiceRecord(
                node=node_name,
                r_hash=r_hash,
                r_preimage=r_preimage,
                value_msat=value_msat,
                memo=memo,
                description_hash=description_hash,
                payment_request=payment_request,
                payment_addr=payment_addr,
                creation_date=now,
                expiry=expiry,
                cltv_expiry=cltv_expiry,
                add_index=node.next_add_index,
                is_hold=is_hold,
            )
            self._nodes[node_name] = replace(node, next_add_index=node.next_add_index + 1)
            self._put_invoice(invoice)
            self._index_invoice(invoice)
            self._changed()
            return invoice

    def lookup_invoice(self, node: str, r_hash: bytes) -> InvoiceRecord | SimError:
        with self._lock:
            self.expire_due()
            invoice = self._invoices.get((node, r_hash))
            if invoice is None:
                return SimError("NOT_FOUND", ERR_INVOICE_NOT_FOUND)
            return invoice

    def lookup_invoice_by_addr(self, node: str, payment_addr: bytes) -> InvoiceRecord | SimError:
        with self._lock:
            self.expire_due()
            key = self._key_by_addr.get((node, payment_addr))
            if key is None:
                return SimError("NOT_FOUND", ERR_INVOICE_NOT_FOUND)
            return self._invoices[key]

    def settle_invoice(self, node: str, preimage: bytes) -> InvoiceRecord | SimError:
        """Settles an ACCEPTED hold invoice; the payer's payment succeeds."""
        with self._lock:
            self.expire_due()
            key = (node, hashlib.sha256(preimage).digest())
            invoice = self._invoices.get(key)
            if invoice is None:
                return SimError("UNKNOWN", ERR_INVOICE_NOT_FOUND)
            if invoice.state == "SETTLED":
                return invoice
            if invoice.state == "CANCELED":
                return SimError("UNKNOWN", ERR_ALREADY_CANCELED)
            if invoice.state == "OPEN":
                return SimError("UNKNOWN", ERR_STILL_OPEN)
            settled = self._settle_locked(key, preimage)
            self._changed()
            return settled

    def cancel_invoice(self, node: str, r_hash: bytes) -> InvoiceRecord | SimError:
        """Cancels an OPEN or ACCEPTED invoice (refunding the payer); canceled is a success."""
        with self._lock:
            self.expire_due()
            key = (node, r_hash)
            invoice = self._invoices.get(key)
            if invoice is None:
                return SimError("UNKNOWN", ERR_INVOICE_NOT_FOUND)
            if invoice.state == "SETTLED":
                return SimError("UNKNOWN", ERR_ALREADY_SETTLED)
            if invoice.state == "CANCELED":
                return invoice
            canceled = self._cancel_locked(key)
            self._changed()
            return canceled

    # ---- payments (payer side) -------------------------------------------

    def send_payment(
        self,
        payer: str,
        *,
        payment_request: str,
        amount_msat: int = 0,
        fee_limit_msat: int = 0,
        allow_self_payment: bool = False,
        subscribe: bool = False,
    ) -> tuple[PaymentRecord, Subscription | None] | SimError:
        """Pays a BOLT11 request from `payer`.

        Errors before any HTLC leaves (bad request, already paid, in flight,
        expired) are SimErrors, as LND returns them from SendPaymentV2. Routing
        outcomes are a FAILED payment. With subscribe=True the returned
        Subscription already holds every update of this attempt, in order.
        """
        decoded = self.decode_payment_request(payment_request)
        if isinstance(decoded, PayReqError):
            return SimError("UNKNOWN", decoded.reason)
        if decoded.currency != CURRENCY_BY_NETWORK[self.network]:
            return SimError("UNKNOWN", f"invoice not for current active network '{self.network}'")
        if decoded.amount_msat and amount_msat and amount_msat != decoded.amount_msat:
            return SimError(
                "UNKNOWN", "amount must not be specified when paying a non-zero amount invoice"
            )
        if not decoded.amount_msat and not amount_msat:
            return SimError("UNKNOWN", "amount must be specified when paying a zero amount invoice")
        value_msat = decoded.amount_msat or amount_msat
        with self._lock:
            self.expire_due()
            now = self.now()
            if now > decoded.timestamp + decoded.expiry:
                return SimError(
                    "UNKNOWN", f"invoice expired. Valid until {decoded.timestamp + decoded.expiry}"
                )
            key = (payer, decoded.payment_hash)
            previous = self._payments.get(key)
            if previous is not None and previous.status == "SUCCEEDED":
                return SimError("ALREADY_EXISTS", ERR_ALREADY_PAID)
            if previous is not None and previous.status in ("IN_FLIGHT", "INITIATED"):
                return SimError("ALREADY_EXISTS", ERR_PAYMENT_IN_FLIGHT)
            node = self._nodes[payer]
            subscription = None
            if subscribe:
                subscription = Subscription(key)
                self._payment_subs.setdefault(key, set()).add(subscription)
            payment = PaymentRecord(
                node=payer,
                payment_hash=decoded.payment_hash,
                value_msat=value_msat,
                fee_msat=0,
                payment_request=payment_request,
                status="IN_FLIGHT",
                creation_time_ns=int(self.clock.now() * 1e9),
                payment_index=node.next_payment_index,
                destination=decoded.destination,
            )
            self._nodes[payer] = replace(node, next_payment_index=node.next_payment_index + 1)
            self._put_payment(payment)
            self._route_payment(payment, decoded, fee_limit_msat, allow_self_payment)
            self._changed()
            return self._payments[key], subscription

    def _route_payment(
        self,
        payment: PaymentRecord,
        decoded: DecodedPayReq,
        fee_limit_msat: int,
        allow_self_payment: bool,
    ) -> None:
        """Moves an IN_FLIGHT payment to its destination invoice or fails it."""
        payer = payment.node
        key = (payer, payment.payment_hash)
        destination = self._node_by_pubkey(decoded.destination)
        if destination is None or (destination.name == payer and not allow_self_payment):
            self._fail_payment(key, "FAILURE_REASON_NO_ROUTE")
            return
        fee_msat = 0 if destination.name == payer else self.fee_policy.fee_for(payment.value_msat)
        if fee_msat > fee_limit_msat:
            self._fail_payment(key, "FAILURE_REASON_NO_ROUTE")
            return
        if self._nodes[payer].balance_msat < payment.value_msat + fee_msat:
            self._fail_payment(key, "FAILURE_REASON_INSUFFICIENT_BALANCE")
            return
        invoice_key = (destination.name, payment.payment_hash)
        invoice = self._invoices.get(invoice_key)
        if (
            invoice is None
            or invoice.state != "OPEN"
            or payment.value_msat < invoice.value_msat
            or (decoded.payment_addr and decoded.payment_addr != invoice.payment_addr)
        ):
            self._fail_payment(key, "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS")
            return
        self._adjust_balance(payer, -(payment.value_msat + fee_msat))
        self._payments[key] = replace(self._payments[key], fee_msat=fee_msat)
        now = self.now()
        htlc = HtlcRecord(
            amt_msat=payment.value_msat,
            accept_height=self._block_height,
            accept_time=now,
            expiry_height=self._block_height + invoice.cltv_expiry,
            state="ACCEPTED",
        )
        accepted = replace(
            invoice, state="ACCEPTED", htlc=htlc, payer=payer, amt_paid_msat=payment.value_msat
        )
        self._put_invoice(accepted)
        if not invoice.is_hold:
            self._settle_locked(invoice_key, invoice.r_preimage)

    def decode_payment_request(self, payment_request: str) -> DecodedPayReq | PayReqError:
        """decode_payreq, answered from memory for the requests this ledger issued."""
        issued = self._issued.get(payment_request)  # a dict read: atomic, no lock needed
        return issued if issued is not None else decode_payreq(payment_request)

    def lookup_payment(self, payer: str, payment_hash: bytes) -> PaymentRecord | SimError:
        with self._lock:
            payment = self._payments.get((payer, payment_hash))
            if payment is None:
                return SimError("NOT_FOUND", ERR_PAYMENT_NOT_INITIATED)
            return payment

    def subscribe_payment(self, payer: str, payment_hash: bytes) -> Subscription | SimError:
        """A subscription that starts with the payment's current state."""
        with self._lock:
            key = (payer, payment_hash)
            payment = self._payments.get(key)
            if payment is None:
                return SimError("NOT_FOUND", ERR_PAYMENT_NOT_INITIATED)
            subscription = Subscription(key)
            subscription.push(payment)
            self._payment_subs.setdefault(key, set()).add(subscription)
            return subscription

    def subscribe_invoice(self, node: str, r_hash: bytes) -> Subscription:
        """Starts with the invoice's current state if it exists (as LND), then each change."""
        with self._lock:
            self.expire_due()
            key = (node, r_hash)
            subscription = Subscription(key)
            invoice = self._invoices.get(key)
            if invoice is not None:
                subscription.push(invoice)
            self._invoice_subs.setdefault(key, set()).add(subscription)
            return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            for table in (self._invoice_subs, self._payment_subs):
                subs = table.get(subscription.key)
                if subs is not None:
                    subs.discard(subscription)
                    if not subs:
                        del table[subscription.key]

    def drop_subscriptions(self) -> int:
        """Ends every open subscription stream (a simulated connection loss)."""
        with self._lock:
            subs = [
                s for t in (self._invoice_subs, self._payment_subs) for v in t.values() for s in v
            ]
            self._invoice_subs.clear()
            self._payment_subs.clear()
        for subscription in subs:
            subscription.close("dropped")
        return len(subs)

    # ---- internals (lock held) -------------------------------------------

    def _node_by_pubkey(self, pubkey: str) -> NodeRecord | None:
        return next((n for n in self._nodes.values() if n.pubkey == pubkey), None)

    def _adjust_balance(self, name: str, delta_msat: int) -> None:
        node = self._nodes[name]
        self._nodes[name] = replace(node, balance_msat=node.balance_msat + delta_msat)

    def _settle_locked(self, key: tuple[str, bytes], preimage: bytes) -> InvoiceRecord:
        invoice = self._invoices[key]
        node = self._nodes[invoice.node]
        now = self.now()
        assert invoice.htlc is not None, "only an accepted invoice settles"
        settled = replace(
            invoice,
            state="SETTLED",
            r_preimage=preimage,
            settle_date=now,
            settle_index=node.next_settle_index,
            htlc=replace(invoice.htlc, state="SETTLED", resolve_time=now),
        )
        self._nodes[invoice.node] = replace(node, next_settle_index=node.next_settle_index + 1)
        self._adjust_balance(invoice.node, invoice.amt_paid_msat)
        self._put_invoice(settled)
        payment_key = (invoice.payer, invoice.r_hash)
        if payment_key in self._payments:
            self._put_payment(
                replace(
                    self._payments[payment_key],
                    status="SUCCEEDED",
                    preimage=preimage,
                    resolve_time_ns=int(self.clock.now() * 1e9),
                )
            )
        return settled

    def _cancel_locked(self, key: tuple[str, bytes]) -> InvoiceRecord:
        invoice = self._invoices[key]
        now = self.now()
        htlc = invoice.htlc
        if invoice.state == "ACCEPTED" and htlc is not None:
            htlc = replace(htlc, state="CANCELED", resolve_time=now)
            payment_key = (invoice.payer, invoice.r_hash)
            payment = self._payments.get(payment_key)
            if payment is not None and payment.status == "IN_FLIGHT":
                self._adjust_balance(invoice.payer, payment.value_msat + payment.fee_msat)
                self._fail_payment(payment_key, "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS")
        canceled = replace(invoice, state="CANCELED", htlc=htlc, amt_paid_msat=0)
        self._put_invoice(canceled)
        return canceled

    def _fail_payment(self, key: tuple[str, bytes], reason: str) -> None:
        self._put_payment(
            replace(
                self._payments[key],
                status="FAILED",
                failure_reason=reason,
                resolve_time_ns=int(self.clock.now() * 1e9),
            )
        )

    def _put_invoice(self, invoice: InvoiceRecord) -> None:
        key = (invoice.node, invoice.r_hash)
        self._invoices[key] = invoice
        for subscription in self._invoice_subs.get(key, ()):
            subscription.push(invoice)

    def _put_payment(self, payment: PaymentRecord) -> None:
        key = (payment.node, payment.payment_hash)
        self._payments[key] = payment
        for subscription in self._payment_subs.get(key, ()):
            subscription.push(payment)

    def _index_invoice(self, invoice: InvoiceRecord) -> None:
        """Adds a new invoice to the expiry heap (if OPEN) and the payment_addr index."""
        key = (invoice.node, invoice.r_hash)
        if invoice.state == "OPEN":
            heapq.heappush(self._expiry_heap, (invoice.creation_date + invoice.expiry, key))
        self._key_by_addr[(invoice.node, invoice.payment_addr)] = key

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # ---- persistence -----------------------------------------------------

    def snapshot(self) -> LedgerSnapshot:
        """The state at this instant, cheaply (shallow copies); encode it outside the lock."""
        with self._lock:
            return LedgerSnapshot(
                network=self.network,
                block_height=self._block_height,
                clock=self.clock.to_json(),
                nodes=tuple(self._nodes.values()),
                invoices=tuple(self._invoices.values()),
                payments=tuple(self._payments.values()),
            )

    def to_json(self) -> dict:
        """Everything needed to continue this network after a restart."""
        return snapshot_to_json(self.snapshot())

    def load_json(self, data: dict) -> None:
        """Replaces the state with a saved one (nodes, invoices, payments, height)."""
        with self._lock:
            self.network = data["network"]
            self._block_height = data["block_height"]
            self._nodes = {n["name"]: NodeRecord(**n) for n in data["nodes"]}
            self._invoices = {}
            for raw in data["invoices"]:
                invoice = invoice_from_json(raw)
                self._invoices[(invoice.node, invoice.r_hash)] = invoice
            self._payments = {}
            for raw in data["payments"]:
                payment = payment_from_json(raw)
                self._payments[(payment.node, payment.payment_hash)] = payment
            self._expiry_heap = []
            self._key_by_addr = {}
            for invoice in self._invoices.values():
                self._index_invoice(invoice)


def snapshot_to_json(
    snapshot: LedgerSnapshot,
    invoice_json: Callable[[InvoiceRecord], dict] = invoice_to_json,
    payment_json: Callable[[PaymentRecord], dict] = payment_to_json,
) -> dict:
    """The state file's form of a snapshot (the encoders may be caching ones)."""
    return {
        "version": 1,
        "network": snapshot.network,
        "block_height": snapshot.block_height,
        "clock": snapshot.clock,
        "nodes": [asdict(n) for n in snapshot.nodes],
        "invoices": [invoice_json(i) for i in snapshot.invoices],
        "payments": [payment_json(p) for p in snapshot.payments],
    }
