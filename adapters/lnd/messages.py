"""The messages the LightningAdapter actor accepts and the ones it sends back.

All are frozen, picklable dataclasses so they cross thespian process
boundaries and compare by value in tests. `effect_id` is opaque here (the
outbox row id in the daemon): the adapter only hands it back in
`EffectDone`/`EffectFailed` so the outbox can mark the effect.

This module must not import gRPC, thespian internals or the client: it is
shared vocabulary, nothing else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class InvoiceState(enum.StrEnum):
    """lnrpc.Invoice.InvoiceState, by name."""

    OPEN = "OPEN"
    ACCEPTED = "ACCEPTED"
    SETTLED = "SETTLED"
    CANCELED = "CANCELED"

    @property
    def rank(self) -> int:
        """Progress order: a state is delivered only if it ranks above the last one."""
        return _INVOICE_RANK[self]

    @property
    def is_final(self) -> bool:
        return self in (InvoiceState.SETTLED, InvoiceState.CANCELED)


_INVOICE_RANK = {
    InvoiceState.OPEN: 0,
    InvoiceState.ACCEPTED: 1,
    InvoiceState.SETTLED: 2,
    InvoiceState.CANCELED: 2,
}


class PaymentStatus(enum.StrEnum):
    """lnrpc.Payment.PaymentStatus, plus UNKNOWN when LND has never seen the hash."""

    UNKNOWN = "UNKNOWN"
    INITIATED = "INITIATED"
    IN_FLIGHT = "IN_FLIGHT"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.UNKNOWN)


class Outcome(enum.StrEnum):
    """How an effect ended when it did not fail (DESIGN.md §3: repeats are outcomes)."""

    CREATED = "created"
    ALREADY_EXISTS = "already_exists"
    SETTLED = "settled"
    ALREADY_SETTLED = "already_settled"
    CANCELED = "canceled"
    ALREADY_CANCELED = "already_canceled"
    SUCCEEDED = "succeeded"
    PAYMENT_FAILED = "payment_failed"


# ---------------------------------------------------------------- values


@dataclass(frozen=True)
class NodeInfo:
    """What GetInfo told us about the LND node."""

    identity_pubkey: str
    alias: str
    network: str
    block_height: int
    synced_to_chain: bool
    version: str


@dataclass(frozen=True)
class InvoiceSnapshot:
    """One lnrpc.Invoice as the adapter cares about it."""

    hash_hex: str
    state: InvoiceState
    value_sat: int
    amt_paid_sat: int
    payment_request: str
    creation_date: int
    expiry: int
    cltv_expiry: int
    # Lowest expiry height of the held HTLCs (0 when none): the escrow deadline guardian needs it.
    htlc_expiry_height: int = 0


@dataclass(frozen=True)
class PaymentSnapshot:
    """One lnrpc.Payment update."""

    hash_hex: str
    status: PaymentStatus
    preimage_hex: str
    fee_sat: int
    value_sat: int
    failure_reason: str


@dataclass(frozen=True)
class DecodedInvoice:
    """DecodePayReq's answer, or why it failed (`error` non-empty, other fields zero)."""

    payment_request: str
    error: str = ""
    error_kind: str = (
        ""  # an adapters.lnd.errors.ErrorKind value; "unreachable" etc.: ask again later
    )
    hash_hex: str = ""
    destination: str = ""
    amount_sat: int = 0
    amount_msat: int = 0
    timestamp: int = 0
    expiry: int = 0
    cltv_expiry: int = 0
    description: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


# ---------------------------------------------------------------- in


@dataclass(frozen=True)
class Configure:
    """Connect to LND. The reply (a `LightningStatus`) and every later event go to `owner`
    (the sender of this message when `owner` is None). `expected_network` "" accepts
    whatever network LND reports (it is then used for invoice checks)."""

    host: str
    tls_cert_path: str
    macaroon_path: str
    expected_network: str
    owner: Any = None
    rpc_timeout_seconds: float = 5.0
    reconnect_min_seconds: float = 0.1
    reconnect_max_seconds: float = 10.0
    keepalive_seconds: float = 0.0


@dataclass(frozen=True)
class AddHoldInvoice:
    """Create a hold invoice for a hash whose preimage the caller made; watched at once."""

    hash_hex: str
    value_sat: int
    memo: str
    expiry: int  # seconds; 0 = LND's default (86400)
    cltv_expiry: int
    effect_id: Any


@dataclass(frozen=True)
class SettleHoldInvoice:
    preimage_hex: str
    effect_id: Any


@dataclass(frozen=True)
class CancelHoldInvoice:
    hash_hex: str
    effect_id: Any


@dataclass(frozen=True)
class WatchInvoice:
    """Subscribe to an invoice (idempotent). `last_known_state` is what the owner already
    handled (from its database), so a restart does not redeliver it."""

    hash_hex: str
    last_known_state: InvoiceState | None = None


@dataclass(frozen=True)
class UnwatchInvoice:
    hash_hex: str


@dataclass(frozen=True)
class SendPayment:
    """Pay a bolt11. `amount_sat` only for amountless invoices (0 otherwise)."""

    payment_request: str
    amount_sat: int
    fee_limit_sat: int
    timeout_seconds: int
    effect_id: Any


@dataclass(frozen=True)
class TrackPayment:
    """Report the final state of a payment by hash (UNKNOWN if LND never saw it)."""

    hash_hex: str


@dataclass(frozen=True)
class DecodeInvoice:
    """Ask for a `DecodedInvoice` reply (to the sender, not the owner)."""

    payment_request: str


@dataclass(frozen=True)
class Batch:
    """Several of the messages above in one hop (DESIGN.md §4: effects for one adapter
    travel as one message); handled in order, each answered as if sent alone, unless
    `reply_together`: then the `EffectDone`/`EffectFailed` of its hold-invoice effects
    (add, settle, cancel) reach the owner grouped in `Answers` messages (as many as it
    takes: answers ready at the same time travel together)."""

    messages: tuple[Any, ...]
    reply_together: bool = False


@dataclass(frozen=True)
class GetLightningStatus:
    """Ask for a `LightningStatus` reply (to the sender)."""


# ---------------------------------------------------------------- out


@dataclass(frozen=True)
class LightningStatus:
    connected: bool
    info: NodeInfo | None
    error: str = ""
    error_kind: str = ""


@dataclass(frozen=True)
class InvoiceStateChanged:
    """An invoice reached a state the owner has not been told about yet (once per state)."""

    hash_hex: str
    state: InvoiceState
    amt_paid_sat: int
    value_sat: int
    payment_request: str
    htlc_expiry_height: int = 0


@dataclass(frozen=True)
class InvoiceUnknown:
    """A watched hash LND does not know (never created, or deleted): the watch stops."""

    hash_hex: str


@dataclass(frozen=True)
class PaymentResult:
    """A payment reached a final status (UNKNOWN: LND has no payment for this hash)."""

    hash_hex: str
    status: PaymentStatus
    preimage_hex: str
    fee_sat: int
    failure_reason: str
    effect_id: Any = None


@dataclass(frozen=True)
class EffectDone:
    effect_id: Any
    outcome: Outcome
    hash_hex: str = ""
    payment_request: str = ""  # AddHoldInvoice: the bolt11 to show the payer


@dataclass(frozen=True)
class EffectFailed:
    effect_id: Any
    error: str
    retryable: bool
    error_kind: str = ""


@dataclass(frozen=True)
class Answers:
    """Several `EffectDone`/`EffectFailed` in one hop (answers to a `reply_together` batch),
    in the order they were ready; each means what it would mean alone."""

    messages: tuple[EffectDone | EffectFailed, ...]
