"""The protocol's value types: the message body, SmallOrder and every payload variant.

Plain frozen dataclasses, compared by value, so the pure order logic can build
them and tests can assert on them with ``==``. Field order is serialization
order (PROTOCOL.md §1.5, §1.6). Parsing and the canonical JSON form live in
``codec``; nothing here touches JSON.
"""

from __future__ import annotations

from dataclasses import dataclass

from .enums import Action, CantDoReason, DisputeStatus, Kind, Status, WrapperKey


@dataclass(frozen=True, slots=True)
class SmallOrder:
    """mostro-core's ``SmallOrder``: the order as the wire shows it."""

    amount: int
    fiat_code: str
    fiat_amount: int
    payment_method: str
    premium: int
    id: str | None = None
    kind: Kind | None = None
    status: Status | None = None
    min_amount: int | None = None
    max_amount: int | None = None
    buyer_trade_pubkey: str | None = None
    seller_trade_pubkey: str | None = None
    buyer_invoice: str | None = None
    created_at: int | None = None
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class UserInfo:
    rating: float
    reviews: int
    operating_days: int


@dataclass(frozen=True, slots=True)
class OrderPayload:
    order: SmallOrder


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """``[SmallOrder|null, invoice-or-lnaddress, amount|null]`` (always three elements)."""

    order: SmallOrder | None
    invoice: str
    amount: int | None = None


@dataclass(frozen=True, slots=True)
class TextMessage:
    text: str


@dataclass(frozen=True, slots=True)
class Peer:
    pubkey: str
    reputation: UserInfo | None = None


@dataclass(frozen=True, slots=True)
class RatingUser:
    rating: int


@dataclass(frozen=True, slots=True)
class Amount:
    amount: int


@dataclass(frozen=True, slots=True)
class SolverDisputeInfo:
    id: str
    kind: str
    status: str
    hash: str | None
    preimage: str | None
    order_previous_status: str
    initiator_pubkey: str
    buyer_pubkey: str | None
    seller_pubkey: str | None
    initiator_full_privacy: bool
    counterpart_full_privacy: bool
    initiator_info: UserInfo | None
    counterpart_info: UserInfo | None
    premium: int
    payment_method: str
    amount: int
    fiat_amount: int
    fee: int
    routing_fee: int
    buyer_invoice: str | None
    invoice_held_at: int
    taken_at: int
    created_at: int


@dataclass(frozen=True, slots=True)
class DisputePayload:
    """``[dispute_uuid, SolverDisputeInfo|null]``."""

    dispute_id: str
    info: SolverDisputeInfo | None = None


@dataclass(frozen=True, slots=True)
class CantDo:
    reason: CantDoReason | None


@dataclass(frozen=True, slots=True)
class NextTrade:
    """``[trade_pubkey_hex, trade_index]``: where a range maker's child order goes."""

    pubkey: str
    index: int


@dataclass(frozen=True, slots=True)
class PaymentFailed:
    payment_attempts: int
    payment_retries_interval: int


@dataclass(frozen=True, slots=True)
class RestoredOrderInfo:
    order_id: str
    trade_index: int
    status: str


@dataclass(frozen=True, slots=True)
class RestoredDisputeInfo:
    dispute_id: str
    order_id: str
    trade_index: int
    status: DisputeStatus | str
    initiator: str | None
    solver_pubkey: str | None


@dataclass(frozen=True, slots=True)
class RestoreData:
    orders: tuple[RestoredOrderInfo, ...]
    disputes: tuple[RestoredDisputeInfo, ...]


@dataclass(frozen=True, slots=True)
class Ids:
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Orders:
    orders: tuple[SmallOrder, ...]


@dataclass(frozen=True, slots=True)
class BondResolution:
    slash_seller: bool
    slash_buyer: bool


@dataclass(frozen=True, slots=True)
class BondPayoutRequest:
    order: SmallOrder
    slashed_at: int


@dataclass(frozen=True, slots=True)
class CashuLockProof:
    token: str
    mint_url: str
    buyer_pubkey: str
    seller_pubkey: str
    mostro_pubkey: str
    fee_token: str | None = None


@dataclass(frozen=True, slots=True)
class CashuSignature:
    secret: str
    signature: str


@dataclass(frozen=True, slots=True)
class CashuSignatures:
    signatures: tuple[CashuSignature, ...]


Payload = (
    OrderPayload
    | PaymentRequest
    | TextMessage
    | Peer
    | RatingUser
    | Amount
    | DisputePayload
    | CantDo
    | NextTrade
    | PaymentFailed
    | RestoreData
    | Ids
    | Orders
    | BondResolution
    | BondPayoutRequest
    | CashuLockProof
    | CashuSignatures
)


@dataclass(frozen=True, slots=True)
class Message:
    """One logical Mostro message: the wrapper key plus the common body (MessageKind)."""

    action: Action
    wrapper: WrapperKey = WrapperKey.ORDER
    version: int = 1
    request_id: int | None = None
    trade_index: int | None = None
    id: str | None = None
    payload: Payload | None = None
