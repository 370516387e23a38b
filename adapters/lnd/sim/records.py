"""Value types of the simulated network: nodes, invoices, HTLCs, payments,
errors and subscriptions, and their JSON form for the state file.

Plain records only; what happens to them is decided in ledger.py.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

InvoiceState = Literal["OPEN", "ACCEPTED", "SETTLED", "CANCELED"]
PaymentStatus = Literal["INITIATED", "IN_FLIGHT", "SUCCEEDED", "FAILED"]
ErrorCode = Literal["UNKNOWN", "NOT_FOUND", "ALREADY_EXISTS", "INVALID_ARGUMENT"]


@dataclass(frozen=True)
class SimError:
    """An RPC error as LND would return it: gRPC status name and text."""

    code: ErrorCode
    message: str


@dataclass(frozen=True)
class NodeRecord:
    name: str
    private_key_hex: str
    pubkey: str
    balance_msat: int
    next_add_index: int = 1
    next_settle_index: int = 1
    next_payment_index: int = 1


@dataclass(frozen=True)
class HtlcRecord:
    """The one HTLC that pays an invoice in this simulation (no MPP)."""

    amt_msat: int
    accept_height: int
    accept_time: int
    expiry_height: int
    state: Literal["ACCEPTED", "SETTLED", "CANCELED"]
    resolve_time: int = 0


@dataclass(frozen=True)
class InvoiceRecord:
    node: str
    r_hash: bytes
    r_preimage: bytes  # b"" for a hold invoice until it is settled
    value_msat: int
    memo: str
    description_hash: bytes
    payment_request: str
    payment_addr: bytes
    creation_date: int
    expiry: int
    cltv_expiry: int
    add_index: int
    is_hold: bool
    state: InvoiceState = "OPEN"
    settle_date: int = 0
    settle_index: int = 0
    amt_paid_msat: int = 0
    htlc: HtlcRecord | None = None
    payer: str = ""  # node name of the payer whose HTLC is held


@dataclass(frozen=True)
class PaymentRecord:
    node: str  # the payer
    payment_hash: bytes
    value_msat: int
    fee_msat: int
    payment_request: str
    status: PaymentStatus
    creation_time_ns: int
    payment_index: int
    destination: str  # payee pubkey
    failure_reason: str = "FAILURE_REASON_NONE"
    preimage: bytes = b""
    resolve_time_ns: int = 0


class Closed:
    """Put in a subscription queue when its stream must end."""

    def __init__(self, reason: Literal["dropped", "cancelled"]):
        self.reason = reason


@dataclass(eq=False)
class Subscription:
    """A queue of snapshots of one invoice or payment, in the order of change.

    `on_push` (set by the reader) is called after each item is queued, from the
    pushing thread, so a reader on an event loop can wait without a thread.
    """

    key: tuple[str, bytes]
    updates: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    on_push: Callable[[], None] | None = None

    def push(self, item: InvoiceRecord | PaymentRecord | Closed) -> None:
        self.updates.put(item)
        notify = self.on_push
        if notify is not None:
            notify()

    def close(self, reason: Literal["dropped", "cancelled"] = "cancelled") -> None:
        self.push(Closed(reason))


@dataclass(frozen=True)
class FeePolicy:
    """What the simulated route charges: base + proportional, in msat."""

    base_msat: int = 0
    ppm: int = 0

    def fee_for(self, amount_msat: int) -> int:
        return self.base_msat + amount_msat * self.ppm // 1_000_000


_INVOICE_BYTES = ("r_hash", "r_preimage", "description_hash", "payment_addr")
_PAYMENT_BYTES = ("payment_hash", "preimage")


def invoice_to_json(invoice: InvoiceRecord) -> dict:
    data = asdict(invoice)
    for name in _INVOICE_BYTES:
        data[name] = data[name].hex()
    return data


def invoice_from_json(data: dict) -> InvoiceRecord:
    data = dict(data)
    for name in _INVOICE_BYTES:
        data[name] = bytes.fromhex(data[name])
    if data["htlc"] is not None:
        data["htlc"] = HtlcRecord(**data["htlc"])
    return InvoiceRecord(**data)


def payment_to_json(payment: PaymentRecord) -> dict:
    data = asdict(payment)
    for name in _PAYMENT_BYTES:
        data[name] = data[name].hex()
    return data


def payment_from_json(data: dict) -> PaymentRecord:
    data = dict(data)
    for name in _PAYMENT_BYTES:
        data[name] = bytes.fromhex(data[name])
    return PaymentRecord(**data)
