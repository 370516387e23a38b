"""The vocabulary of the pure order logic: state records, input events, output effects.

Everything here is a frozen dataclass compared by value, so a decision can be
journaled, replayed and asserted with ``==``. No I/O, no clock, no randomness:
time and entropy arrive in ``DecisionContext``. Storage rows are converted to
and from these records by the order actor, never inside the logic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from adapters.nostr.protocol.enums import Kind, Status
from adapters.nostr.protocol.payloads import Message, UserInfo


# ---------------------------------------------------------------- state records
class BondState(StrEnum):
    REQUESTED = "requested"
    LOCKED = "locked"
    RELEASED = "released"
    PENDING_PAYOUT = "pending-payout"
    SLASHED = "slashed"
    FORFEITED = "forfeited"
    FAILED = "failed"


ACTIVE_BOND_STATES = frozenset({BondState.REQUESTED, BondState.LOCKED})


class BondRole(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


@dataclass(frozen=True)
class OrderRecord:
    """One row of ``orders`` (ORDER_FLOW.md §2.1), minus the Cashu columns."""

    id: str
    kind: Kind
    status: Status
    creator_pubkey: str
    fiat_code: str
    payment_method: str
    amount: int = 0
    fiat_amount: int = 0
    min_amount: int | None = None
    max_amount: int | None = None
    premium: int = 0
    price_from_api: bool = False
    event_id: str | None = None
    hash: str | None = None
    preimage: str | None = None
    cancel_initiator_pubkey: str | None = None
    buyer_pubkey: str | None = None
    seller_pubkey: str | None = None
    master_buyer_pubkey: str | None = None
    master_seller_pubkey: str | None = None
    buyer_dispute: bool = False
    seller_dispute: bool = False
    buyer_cooperativecancel: bool = False
    seller_cooperativecancel: bool = False
    fee: int = 0
    routing_fee: int = 0
    dev_fee: int = 0
    dev_fee_paid: bool = False
    dev_fee_payment_hash: str | None = None
    buyer_invoice: str | None = None
    range_parent_id: str | None = None
    invoice_held_at: int = 0
    taken_at: int = 0
    created_at: int = 0
    buyer_sent_rate: bool = False
    seller_sent_rate: bool = False
    payment_attempts: int = 0
    failed_payment: bool = False
    expires_at: int = 0
    trade_index_seller: int | None = None
    trade_index_buyer: int | None = None
    next_trade_pubkey: str | None = None
    next_trade_index: int | None = None
    payout_payment_hash: str | None = None
    payout_claimed_at: int | None = None


@dataclass(frozen=True)
class BondRecord:
    """One row of ``bonds`` (BONDS.md §3.2), with the per-take snapshot in ``taker_*``."""

    id: str
    order_id: str
    pubkey: str
    role: BondRole
    amount_sats: int
    state: BondState
    hash: str
    preimage: str
    created_at: int
    payment_request: str | None = None
    parent_bond_id: str | None = None
    child_order_id: str | None = None
    slashed_share_sats: int = 0
    slashed_reason: str | None = None
    payout_invoice: str | None = None
    payout_routing_fee_sats: int | None = None
    node_share_sats: int | None = None
    payout_attempts: int = 0
    invoice_request_attempts: int = 0
    last_invoice_request_at: int | None = None
    locked_at: int | None = None
    released_at: int | None = None
    slashed_at: int | None = None
    expires_at: int | None = None
    taker_identity: str | None = None
    taker_trade_index: int | None = None
    taker_invoice: str | None = None
    taker_fiat_amount: int | None = None
    taker_amount: int | None = None
    taker_fee: int | None = None
    taker_dev_fee: int | None = None
    invoice_state: str | None = None
    release_confirmed_at: int | None = None
    canceled_notice_sent: bool = False


@dataclass(frozen=True)
class DisputeRecord:
    """One row of ``disputes`` (ORDER_FLOW.md §2.3)."""

    id: str
    order_id: str
    status: str
    order_previous_status: str
    created_at: int
    solver_pubkey: str | None = None
    taken_at: int = 0


@dataclass(frozen=True)
class OrderState:
    """Everything one order actor owns: the order row, its bonds, its dispute."""

    order: OrderRecord
    bonds: tuple[BondRecord, ...] = ()
    dispute: DisputeRecord | None = None


@dataclass(frozen=True)
class TakeSnapshot:
    """What one take fixed (BONDS.md §4.1 step 4): held on a bond while bonds race."""

    taker_pubkey: str
    identity: str
    trade_index: int | None
    invoice: str | None
    fiat_amount: int
    amount: int
    fee: int
    dev_fee: int


# ---------------------------------------------------------------- inputs
@dataclass(frozen=True)
class ClientRequest:
    """A verified, parsed client message for this order (intake did signatures and PoW).

    ``pending_take_exists`` is the one cross-order fact a take needs (ORDER_FLOW.md
    §4.2 check 2); intake computes it so the logic stays single-order.
    """

    message: Message
    sender: str
    identity: str
    pending_take_exists: bool = False


@dataclass(frozen=True)
class HoldInvoiceCreated:
    """LND answered AddHoldInvoice: the bolt11 to show the payer."""

    hash: str
    payment_request: str
    request_id: int | None = None  # copied from AddHoldInvoice.request_id by the LND adapter


@dataclass(frozen=True)
class HoldInvoiceCreateFailed:
    hash: str
    reason: str


@dataclass(frozen=True)
class InvoiceAccepted:
    hash: str
    amount_paid_sat: int = 0


@dataclass(frozen=True)
class InvoiceCanceled:
    hash: str


@dataclass(frozen=True)
class InvoiceSettled:
    hash: str


@dataclass(frozen=True)
class PaymentSucceeded:
    payment_hash: str
    fee_sat: int = 0
    preimage: str | None = None


@dataclass(frozen=True)
class PaymentFailed:
    payment_hash: str
    reason: str = ""


class DeadlineKind(StrEnum):
    PENDING_EXPIRY = "pending-expiry"
    WAITING_TIMEOUT = "waiting-timeout"
    BOND_EXPIRY = "bond-expiry"
    PAYMENT_RETRY = "payment-retry"
    ESCROW_GUARD = "escrow-guard"


@dataclass(frozen=True)
class Deadline:
    """A point in time at which the order wants a ``DeadlineReached``; ``key`` tells bonds apart."""

    kind: DeadlineKind
    at: int
    key: str = ""


@dataclass(frozen=True)
class DeadlineReached:
    deadline: Deadline


OrderEvent = (
    ClientRequest
    | HoldInvoiceCreated
    | HoldInvoiceCreateFailed
    | InvoiceAccepted
    | InvoiceCanceled
    | InvoiceSettled
    | PaymentSucceeded
    | PaymentFailed
    | DeadlineReached
)


# ---------------------------------------------------------------- outputs
@dataclass(frozen=True)
class SendMessage:
    """Send a Mostro message to a trade key (the Nostr adapter wraps it per transport)."""

    recipient: str
    message: Message


@dataclass(frozen=True)
class AddHoldInvoice:
    """Ask LND for a hold invoice whose preimage we made; LND answers with HoldInvoiceCreated."""

    hash: str
    amount_sat: int
    memo: str
    cltv_expiry: int
    expiry: int | None = None
    request_id: int | None = None  # echoed back on HoldInvoiceCreated (the take's request id)


@dataclass(frozen=True)
class CancelHoldInvoice:
    hash: str


@dataclass(frozen=True)
class SettleHoldInvoice:
    hash: str
    preimage: str


@dataclass(frozen=True)
class SendPayment:
    """Pay the buyer; ``amount_sat`` only for amountless invoices."""

    payment_request: str
    amount_sat: int
    fee_limit_sat: int
    payment_hash: str


@dataclass(frozen=True)
class PublishOrder:
    """Republish the order's NIP-69 event as of this decision (None status = nothing to publish)."""

    order: OrderRecord
    public_status: str


@dataclass(frozen=True)
class PublishDispute:
    dispute: DisputeRecord
    initiator: str


@dataclass(frozen=True)
class RecordTradeIndex:
    """Store ``last_trade_index`` for an identity, in the decision's own transaction."""

    identity: str
    trade_index: int


@dataclass(frozen=True)
class RecordRating:
    """A rating for ``identity``; applied to the user row in the decision's transaction."""

    identity: str
    rated_trade_pubkey: str
    rating: int


Effect = (
    SendMessage
    | AddHoldInvoice
    | CancelHoldInvoice
    | SettleHoldInvoice
    | SendPayment
    | PublishOrder
    | PublishDispute
    | RecordTradeIndex
    | RecordRating
)


# ---------------------------------------------------------------- decision
@dataclass(frozen=True)
class PriceSnapshot:
    """Fiat units per BTC by currency code, as of ``taken_at`` (staleness is a rule of the logic)."""

    prices: Mapping[str, float]
    taken_at: int


@dataclass(frozen=True)
class DecisionContext:
    """Everything from outside the order a decision may read.

    ``entropy`` (32+ random bytes per decision, journaled) is the only source of
    ids and preimages, so replaying a journal reproduces every decision exactly.
    """

    settings: Any  # config.Settings (kept Any here to avoid an import cycle)
    now: int
    entropy: bytes
    network: str = "regtest"
    prices: PriceSnapshot | None = None
    reputations: Mapping[str, UserInfo] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """The whole outcome of one event: the new state, the effects, any new orders (range child)."""

    state: OrderState | None
    effects: tuple[Effect, ...] = ()
    created_orders: tuple[OrderState, ...] = ()


def derive_bytes(entropy: bytes, label: str) -> bytes:
    """32 bytes for one purpose (a preimage, an id) out of the decision's entropy."""
    return hashlib.sha256(entropy + b"\x00" + label.encode()).digest()
