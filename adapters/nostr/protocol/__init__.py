"""The Mostro wire protocol: enums, payload types, the message codec and content tuples.

Import from here; the submodules are an implementation detail. Nothing in this package does I/O.
"""

from .codec import (
    MAX_MESSAGE_BYTES,
    PAYLOAD_KEYS,
    ParseError,
    format_f64,
    parse_message,
    payload_key,
    serialize_message,
    serialize_payload,
    serialize_small_order,
    verify_message,
)
from .content import (
    IDENTITY_PROOF_PREFIX,
    Content,
    IdentityProof,
    SignatureError,
    build_content,
    parse_content,
    serialize_content,
    sign_text,
    stamp_version,
    verify_content,
)
from .enums import (
    MAX_RATING,
    MIN_RATING,
    PROTOCOL_VER,
    Action,
    CantDoReason,
    DisputeInitiator,
    DisputeStatus,
    Kind,
    Status,
    Transport,
    WrapperKey,
)
from .payloads import (
    Amount,
    BondPayoutRequest,
    BondResolution,
    CantDo,
    CashuLockProof,
    CashuSignature,
    CashuSignatures,
    DisputePayload,
    Ids,
    Message,
    NextTrade,
    OrderPayload,
    Orders,
    Payload,
    PaymentFailed,
    PaymentRequest,
    Peer,
    RatingUser,
    RestoreData,
    RestoredDisputeInfo,
    RestoredOrderInfo,
    SmallOrder,
    SolverDisputeInfo,
    TextMessage,
    UserInfo,
)

__all__ = [
    "MAX_MESSAGE_BYTES", "PAYLOAD_KEYS", "ParseError", "format_f64", "parse_message",
    "payload_key", "serialize_message", "serialize_payload", "serialize_small_order",
    "verify_message",
    "IDENTITY_PROOF_PREFIX", "Content", "IdentityProof", "SignatureError", "build_content",
    "parse_content", "serialize_content", "sign_text", "stamp_version", "verify_content",
    "MAX_RATING", "MIN_RATING", "PROTOCOL_VER", "Action", "CantDoReason", "DisputeInitiator",
    "DisputeStatus", "Kind", "Status", "Transport", "WrapperKey",
    "Amount", "BondPayoutRequest", "BondResolution", "CantDo", "CashuLockProof", "CashuSignature",
    "CashuSignatures", "DisputePayload", "Ids", "Message", "NextTrade", "OrderPayload", "Orders",
    "Payload", "PaymentFailed", "PaymentRequest", "Peer", "RatingUser", "RestoreData",
    "RestoredDisputeInfo", "RestoredOrderInfo", "SmallOrder", "SolverDisputeInfo", "TextMessage",
    "UserInfo",
]  # fmt: skip
