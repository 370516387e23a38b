"""The protocol's enumerations, spelled exactly as mostro-core puts them on the wire.

Member names are the wire value in UPPER_SNAKE case (``take-sell`` -> ``TAKE_SELL``);
values are the wire strings. Nothing here parses or validates: see ``codec``.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """Every action of mostro-core's ``Action`` (51 variants, kebab-case)."""

    NEW_ORDER = "new-order"
    TAKE_SELL = "take-sell"
    TAKE_BUY = "take-buy"
    PAY_INVOICE = "pay-invoice"
    PAY_BOND_INVOICE = "pay-bond-invoice"
    FIAT_SENT = "fiat-sent"
    FIAT_SENT_OK = "fiat-sent-ok"
    RELEASE = "release"
    RELEASED = "released"
    CANCEL = "cancel"
    CANCELED = "canceled"
    COOPERATIVE_CANCEL_INITIATED_BY_YOU = "cooperative-cancel-initiated-by-you"
    COOPERATIVE_CANCEL_INITIATED_BY_PEER = "cooperative-cancel-initiated-by-peer"
    DISPUTE_INITIATED_BY_YOU = "dispute-initiated-by-you"
    DISPUTE_INITIATED_BY_PEER = "dispute-initiated-by-peer"
    COOPERATIVE_CANCEL_ACCEPTED = "cooperative-cancel-accepted"
    BUYER_INVOICE_ACCEPTED = "buyer-invoice-accepted"
    BOND_INVOICE_ACCEPTED = "bond-invoice-accepted"
    PURCHASE_COMPLETED = "purchase-completed"
    BOND_PAYOUT_COMPLETED = "bond-payout-completed"
    BOND_SLASHED = "bond-slashed"
    HOLD_INVOICE_PAYMENT_ACCEPTED = "hold-invoice-payment-accepted"
    HOLD_INVOICE_PAYMENT_SETTLED = "hold-invoice-payment-settled"
    HOLD_INVOICE_PAYMENT_CANCELED = "hold-invoice-payment-canceled"
    WAITING_SELLER_TO_PAY = "waiting-seller-to-pay"
    WAITING_BUYER_INVOICE = "waiting-buyer-invoice"
    ADD_INVOICE = "add-invoice"
    ADD_BOND_INVOICE = "add-bond-invoice"
    BUYER_TOOK_ORDER = "buyer-took-order"
    RATE = "rate"
    RATE_USER = "rate-user"
    RATE_RECEIVED = "rate-received"
    CANT_DO = "cant-do"
    DISPUTE = "dispute"
    ADMIN_CANCEL = "admin-cancel"
    ADMIN_CANCELED = "admin-canceled"
    ADMIN_SETTLE = "admin-settle"
    ADMIN_SETTLED = "admin-settled"
    ADMIN_ADD_SOLVER = "admin-add-solver"
    ADMIN_TAKE_DISPUTE = "admin-take-dispute"
    ADMIN_TOOK_DISPUTE = "admin-took-dispute"
    PAYMENT_FAILED = "payment-failed"
    INVOICE_UPDATED = "invoice-updated"
    SEND_DM = "send-dm"
    TRADE_PUBKEY = "trade-pubkey"
    RESTORE_SESSION = "restore-session"
    LAST_TRADE_INDEX = "last-trade-index"
    ORDERS = "orders"
    ADD_CASHU_ESCROW = "add-cashu-escrow"
    CASHU_ESCROW_LOCKED = "cashu-escrow-locked"
    CASHU_PM_SIGNATURE = "cashu-pm-signature"


class Status(StrEnum):
    """Order status (kebab-case). ``waiting-*-bond`` are daemon-internal, never on the wire."""

    ACTIVE = "active"
    CANCELED = "canceled"
    CANCELED_BY_ADMIN = "canceled-by-admin"
    SETTLED_BY_ADMIN = "settled-by-admin"
    COMPLETED_BY_ADMIN = "completed-by-admin"
    DISPUTE = "dispute"
    EXPIRED = "expired"
    FIAT_SENT = "fiat-sent"
    SETTLED_HOLD_INVOICE = "settled-hold-invoice"
    PENDING = "pending"
    SUCCESS = "success"
    WAITING_BUYER_INVOICE = "waiting-buyer-invoice"
    WAITING_PAYMENT = "waiting-payment"
    WAITING_TAKER_BOND = "waiting-taker-bond"
    COOPERATIVELY_CANCELED = "cooperatively-canceled"
    IN_PROGRESS = "in-progress"
    WAITING_MAKER_BOND = "waiting-maker-bond"


class Kind(StrEnum):
    BUY = "buy"
    SELL = "sell"


class CantDoReason(StrEnum):
    """Refusal reasons of a ``cant-do`` (snake_case, 35 variants)."""

    INVALID_SIGNATURE = "invalid_signature"
    INVALID_TRADE_INDEX = "invalid_trade_index"
    INVALID_AMOUNT = "invalid_amount"
    INVALID_INVOICE = "invalid_invoice"
    INVALID_PAYMENT_REQUEST = "invalid_payment_request"
    INVALID_PEER = "invalid_peer"
    INVALID_RATING = "invalid_rating"
    INVALID_TEXT_MESSAGE = "invalid_text_message"
    INVALID_ORDER_KIND = "invalid_order_kind"
    INVALID_ORDER_STATUS = "invalid_order_status"
    INVALID_PUBKEY = "invalid_pubkey"
    INVALID_PARAMETERS = "invalid_parameters"
    INVALID_PAYLOAD = "invalid_payload"
    ORDER_ALREADY_CANCELED = "order_already_canceled"
    CANT_CREATE_USER = "cant_create_user"
    IS_NOT_YOUR_ORDER = "is_not_your_order"
    NOT_ALLOWED_BY_STATUS = "not_allowed_by_status"
    OUT_OF_RANGE_FIAT_AMOUNT = "out_of_range_fiat_amount"
    OUT_OF_RANGE_SATS_AMOUNT = "out_of_range_sats_amount"
    PRICE_TOO_STALE = "price_too_stale"
    IS_NOT_YOUR_DISPUTE = "is_not_your_dispute"
    DISPUTE_TAKEN_BY_ADMIN = "dispute_taken_by_admin"
    NOT_AUTHORIZED = "not_authorized"
    DISPUTE_CREATION_ERROR = "dispute_creation_error"
    NOT_FOUND = "not_found"
    INVALID_DISPUTE_STATUS = "invalid_dispute_status"
    INVALID_ACTION = "invalid_action"
    PENDING_ORDER_EXISTS = "pending_order_exists"
    INVALID_FIAT_CURRENCY = "invalid_fiat_currency"
    TOO_MANY_REQUESTS = "too_many_requests"
    INVALID_CASHU_TOKEN = "invalid_cashu_token"
    CASHU_MINT_UNAVAILABLE = "cashu_mint_unavailable"
    INVALID_MINT_URL = "invalid_mint_url"
    CASHU_ESCROW_NOT_LOCKED = "cashu_escrow_not_locked"
    CASHU_SIGNATURE_MISSING = "cashu_signature_missing"


class DisputeStatus(StrEnum):
    INITIATED = "initiated"
    IN_PROGRESS = "in-progress"
    SELLER_REFUNDED = "seller-refunded"
    SETTLED = "settled"
    RELEASED = "released"


class DisputeInitiator(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"


class Transport(StrEnum):
    """Wire transport of a node: v2 NIP-44 direct (default) or v1 NIP-59 gift wrap."""

    NIP44 = "nip44"
    GIFT_WRAP = "gift-wrap"


class WrapperKey(StrEnum):
    """The six outer keys of a message; the daemon dispatches on ``action``, never on these."""

    ORDER = "order"
    DISPUTE = "dispute"
    CANT_DO = "cant-do"
    RATE = "rate"
    DM = "dm"
    RESTORE = "restore"


PROTOCOL_VER = 2
MIN_RATING = 1
MAX_RATING = 5
