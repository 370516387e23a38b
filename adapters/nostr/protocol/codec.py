"""Mostro message codec: strict, total parsing and mostro-core's canonical JSON serialization.

`parse_message` turns untrusted JSON (text or an already decoded object) into a `Message` or a
`ParseError` naming the path and the reason; no exception ever escapes it. `serialize_message`
writes the exact bytes serde_json writes for mostro-core's types (PROTOCOL.md §1.2, §1.5, §1.6),
because trade and identity signatures are computed over those bytes. `verify_message` is
mostro-core's `MessageKind::verify()` (§1.4): which id/payload each action accepts.

This module must not know about transports, signatures, keys or the clock (see `content`), and it
must not grow business rules: whether an amount makes sense is the order logic's job.

Hot path: tables built once at import (actions, wrappers, payload parsers and serializers by key
and by type); no per-call reflection over dataclass fields.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from json.encoder import encode_basestring as _json_string
from typing import Any

from .enums import Action, CantDoReason, DisputeInitiator, Kind, Status, WrapperKey
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

MAX_MESSAGE_BYTES = 64 * 1024
"""Largest JSON text accepted (UTF-8 bytes). NIP-44 plaintexts are at most 65535 bytes anyway."""

U8_MAX = 2**8 - 1
U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
I64_MIN = -(2**63)
I64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class ParseError:
    """Why a JSON text is not a Mostro message: where (`path`, dotted) and what is wrong."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


class _Invalid(Exception):
    """Internal only: unwinds a parse to `parse_message`, which turns it into a `ParseError`."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason


# ---------------------------------------------------------------------------------------------
# JSON decoding (strict like serde_json: no NaN/Infinity, no duplicate keys, no lone surrogates)
# ---------------------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _Invalid("", f"duplicate key {key!r}")
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise _Invalid("", f"{name} is not valid JSON")


JSON_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
"""The strict decoder; `content` uses its `raw_decode` to find element 0 of a content tuple."""

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def check_size(text: str | bytes) -> ParseError | None:
    """Refuse texts larger than `MAX_MESSAGE_BYTES` (UTF-8) before any parsing work, and `str`
    texts that are not encodable as UTF-8 (raw lone surrogates), which no signature can cover."""
    size = len(text)
    if isinstance(text, str) and size <= MAX_MESSAGE_BYTES:
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:
            return ParseError("", "invalid UTF-8: lone surrogate")
    if size > MAX_MESSAGE_BYTES:
        return ParseError("", f"message too large (limit {MAX_MESSAGE_BYTES} bytes)")
    return None


def decode_json_text(text: str | bytes) -> Any:
    """Strictly decode one JSON text; raises `_Invalid` (callers inside this package catch it)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _Invalid("", f"invalid UTF-8: {err.reason}") from None
    try:
        obj = JSON_DECODER.decode(text)
    except json.JSONDecodeError as err:
        raise _Invalid(
            "", f"invalid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except RecursionError:
        raise _Invalid("", "invalid JSON: nested too deeply") from None
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        check_no_lone_surrogates(obj)
    return obj


def check_no_lone_surrogates(obj: Any) -> None:
    """serde_json rejects unpaired UTF-16 surrogate escapes; Python's json keeps them."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise _Invalid("", "invalid JSON: lone surrogate in string") from None


# ---------------------------------------------------------------------------------------------
# Primitive checks
# ---------------------------------------------------------------------------------------------

_MISSING: Any = object()


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "boolean"
    if type(value) is int:
        return "integer"
    if type(value) is float:
        return "number"
    if type(value) is str:
        return "string"
    if type(value) is list:
        return "array"
    if type(value) is dict:
        return "object"
    return type(value).__name__


def _int(value: Any, path: str, lo: int, hi: int, name: str) -> int:
    if type(value) is not int:
        raise _Invalid(path, f"expected {name} integer, got {_kind_of(value)}")
    if value < lo or value > hi:
        raise _Invalid(path, f"{name} out of range: {value}")
    return value


def _i64(value: Any, path: str) -> int:
    return _int(value, path, I64_MIN, I64_MAX, "i64")


def _opt_i64(value: Any, path: str) -> int | None:
    return (
        None if value is None or value is _MISSING else _int(value, path, I64_MIN, I64_MAX, "i64")
    )


def _u32(value: Any, path: str) -> int:
    return _int(value, path, 0, U32_MAX, "u32")


def _u64(value: Any, path: str) -> int:
    return _int(value, path, 0, U64_MAX, "u64")


def _f64(value: Any, path: str) -> float:
    if type(value) is float:
        if not math.isfinite(value):
            raise _Invalid(path, "number out of range")
        return value
    if type(value) is int:  # serde_json reads integers into f64
        try:
            return float(value)
        except OverflowError:
            raise _Invalid(path, "number out of range") from None
    raise _Invalid(path, f"expected number, got {_kind_of(value)}")


def _str(value: Any, path: str) -> str:
    if type(value) is not str:
        raise _Invalid(path, f"expected string, got {_kind_of(value)}")
    return value


def _opt_str(value: Any, path: str) -> str | None:
    return None if value is None or value is _MISSING else _str(value, path)


def _bool(value: Any, path: str) -> bool:
    if value is not True and value is not False:
        raise _Invalid(path, f"expected boolean, got {_kind_of(value)}")
    return value


def _obj(value: Any, path: str) -> dict[str, Any]:
    if type(value) is not dict:
        raise _Invalid(path, f"expected object, got {_kind_of(value)}")
    return value


def _arr(value: Any, path: str, length: int | None = None) -> list[Any]:
    if type(value) is not list:
        raise _Invalid(path, f"expected array, got {_kind_of(value)}")
    if length is not None and len(value) != length:
        raise _Invalid(path, f"expected {length} elements, got {len(value)}")
    return value


def _required(obj: dict[str, Any], key: str, path: str) -> Any:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        raise _Invalid(path, f"missing field {key!r}")
    return value


_HYPHENATED = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_UUID_FORMS = re.compile(
    rf"({_HYPHENATED})|\{{({_HYPHENATED})\}}|urn:uuid:({_HYPHENATED})|([0-9a-fA-F]{{32}})"
)


def parse_uuid(value: Any, path: str) -> str:
    """A UUID in a form the Rust `uuid` crate parses (hyphenated, braced, urn, simple), returned
    lowercase hyphenated, which is how it writes them."""
    if type(value) is not str:
        raise _Invalid(path, f"expected UUID string, got {_kind_of(value)}")
    match = _UUID_FORMS.fullmatch(value)
    if match is None:
        raise _Invalid(path, f"invalid UUID {value[:64]!r}")
    hyphenated = match.group(1) or match.group(2) or match.group(3)
    if hyphenated is not None:
        return hyphenated.lower()
    h = match.group(4).lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _opt_uuid(value: Any, path: str) -> str | None:
    return None if value is None or value is _MISSING else parse_uuid(value, path)


def _enum(table: dict[str, Any], value: Any, path: str, name: str) -> Any:
    if type(value) is not str:
        raise _Invalid(path, f"expected {name} string, got {_kind_of(value)}")
    member = table.get(value)
    if member is None:
        raise _Invalid(path, f"unknown {name} {value[:64]!r}")
    return member


_ACTIONS: dict[str, Action] = {a.value: a for a in Action}
_WRAPPERS: dict[str, WrapperKey] = {w.value: w for w in WrapperKey}
_KINDS: dict[str, Kind] = {k.value: k for k in Kind}
_STATUSES: dict[str, Status] = {s.value: s for s in Status}
_CANT_DO_REASONS: dict[str, CantDoReason] = {r.value: r for r in CantDoReason}
_INITIATORS: dict[str, DisputeInitiator] = {i.value: i for i in DisputeInitiator}


# ---------------------------------------------------------------------------------------------
# Structures
# ---------------------------------------------------------------------------------------------

_SMALL_ORDER_FIELDS = frozenset(
    (
        "id", "kind", "status", "amount", "fiat_code", "min_amount", "max_amount", "fiat_amount",
        "payment_method", "premium", "buyer_trade_pubkey", "seller_trade_pubkey", "buyer_invoice",
        "created_at", "expires_at",
    )
)  # fmt: skip


def _small_order(value: Any, path: str) -> SmallOrder:
    """SmallOrder is `deny_unknown_fields`; five fields are required (§1.6)."""
    obj = _obj(value, path)
    unknown = obj.keys() - _SMALL_ORDER_FIELDS
    if unknown:
        raise _Invalid(path, f"unknown field {min(map(str, unknown))!r}")
    get = obj.get
    kind = get("kind")
    status = get("status")
    return SmallOrder(
        id=_opt_uuid(get("id"), path + ".id"),
        kind=None if kind is None else _enum(_KINDS, kind, path + ".kind", "kind"),
        status=None if status is None else _enum(_STATUSES, status, path + ".status", "status"),
        amount=_i64(_required(obj, "amount", path), path + ".amount"),
        fiat_code=_str(_required(obj, "fiat_code", path), path + ".fiat_code"),
        min_amount=_opt_i64(get("min_amount"), path + ".min_amount"),
        max_amount=_opt_i64(get("max_amount"), path + ".max_amount"),
        fiat_amount=_i64(_required(obj, "fiat_amount", path), path + ".fiat_amount"),
        payment_method=_str(_required(obj, "payment_method", path), path + ".payment_method"),
        premium=_i64(_required(obj, "premium", path), path + ".premium"),
        buyer_trade_pubkey=_opt_str(get("buyer_trade_pubkey"), path + ".buyer_trade_pubkey"),
        seller_trade_pubkey=_opt_str(get("seller_trade_pubkey"), path + ".seller_trade_pubkey"),
        buyer_invoice=_opt_str(get("buyer_invoice"), path + ".buyer_invoice"),
        created_at=_opt_i64(get("created_at"), path + ".created_at"),
        expires_at=_opt_i64(get("expires_at"), path + ".expires_at"),
    )


def _user_info(value: Any, path: str) -> UserInfo:
    obj = _obj(value, path)
    return UserInfo(
        rating=_f64(_required(obj, "rating", path), path + ".rating"),
        reviews=_i64(_required(obj, "reviews", path), path + ".reviews"),
        operating_days=_u64(_required(obj, "operating_days", path), path + ".operating_days"),
    )


def _opt_user_info(value: Any, path: str) -> UserInfo | None:
    return None if value is None or value is _MISSING else _user_info(value, path)


def _solver_dispute_info(value: Any, path: str) -> SolverDisputeInfo:
    obj = _obj(value, path)
    get = obj.get

    def req(key: str) -> Any:
        return _required(obj, key, path)

    return SolverDisputeInfo(
        id=parse_uuid(req("id"), path + ".id"),
        kind=_str(req("kind"), path + ".kind"),
        status=_str(req("status"), path + ".status"),
        hash=_opt_str(get("hash"), path + ".hash"),
        preimage=_opt_str(get("preimage"), path + ".preimage"),
        order_previous_status=_str(req("order_previous_status"), path + ".order_previous_status"),
        initiator_pubkey=_str(req("initiator_pubkey"), path + ".initiator_pubkey"),
        buyer_pubkey=_opt_str(get("buyer_pubkey"), path + ".buyer_pubkey"),
        seller_pubkey=_opt_str(get("seller_pubkey"), path + ".seller_pubkey"),
        initiator_full_privacy=_bool(
            req("initiator_full_privacy"), path + ".initiator_full_privacy"
        ),
        counterpart_full_privacy=_bool(
            req("counterpart_full_privacy"), path + ".counterpart_full_privacy"
        ),
        initiator_info=_opt_user_info(get("initiator_info"), path + ".initiator_info"),
        counterpart_info=_opt_user_info(get("counterpart_info"), path + ".counterpart_info"),
        premium=_i64(req("premium"), path + ".premium"),
        payment_method=_str(req("payment_method"), path + ".payment_method"),
        amount=_i64(req("amount"), path + ".amount"),
        fiat_amount=_i64(req("fiat_amount"), path + ".fiat_amount"),
        fee=_i64(req("fee"), path + ".fee"),
        routing_fee=_i64(req("routing_fee"), path + ".routing_fee"),
        buyer_invoice=_opt_str(get("buyer_invoice"), path + ".buyer_invoice"),
        invoice_held_at=_i64(req("invoice_held_at"), path + ".invoice_held_at"),
        taken_at=_i64(req("taken_at"), path + ".taken_at"),
        created_at=_i64(req("created_at"), path + ".created_at"),
    )


def _restored_order(value: Any, path: str) -> RestoredOrderInfo:
    obj = _obj(value, path)
    return RestoredOrderInfo(
        order_id=parse_uuid(_required(obj, "order_id", path), path + ".order_id"),
        trade_index=_i64(_required(obj, "trade_index", path), path + ".trade_index"),
        status=_str(_required(obj, "status", path), path + ".status"),
    )


def _restored_dispute(value: Any, path: str) -> RestoredDisputeInfo:
    obj = _obj(value, path)
    initiator = obj.get("initiator")
    return RestoredDisputeInfo(
        dispute_id=parse_uuid(_required(obj, "dispute_id", path), path + ".dispute_id"),
        order_id=parse_uuid(_required(obj, "order_id", path), path + ".order_id"),
        trade_index=_i64(_required(obj, "trade_index", path), path + ".trade_index"),
        status=_str(_required(obj, "status", path), path + ".status"),
        initiator=None
        if initiator is None
        else _enum(_INITIATORS, initiator, path + ".initiator", "dispute initiator"),
        solver_pubkey=_opt_str(obj.get("solver_pubkey"), path + ".solver_pubkey"),
    )


# ---------------------------------------------------------------------------------------------
# Payload variants: one parser per snake_case key
# ---------------------------------------------------------------------------------------------


def _p_order(value: Any, path: str, lenient: bool) -> Payload:
    return OrderPayload(_small_order(value, path))


def _p_payment_request(value: Any, path: str, lenient: bool) -> Payload:
    """Rust form `[order|null, invoice, amount|null]`; the docs' `[order|null, invoice]` if lenient."""
    if type(value) is list and len(value) == 2 and lenient:
        value = [value[0], value[1], None]
    items = _arr(value, path, 3)
    order = items[0]
    return PaymentRequest(
        order=None if order is None else _small_order(order, path + "[0]"),
        invoice=_str(items[1], path + "[1]"),
        amount=None if items[2] is None else _i64(items[2], path + "[2]"),
    )


def _p_text_message(value: Any, path: str, lenient: bool) -> Payload:
    return TextMessage(_str(value, path))


def _p_peer(value: Any, path: str, lenient: bool) -> Payload:
    obj = _obj(value, path)
    return Peer(
        pubkey=_str(_required(obj, "pubkey", path), path + ".pubkey"),
        reputation=_opt_user_info(obj.get("reputation"), path + ".reputation"),
    )


def _p_rating_user(value: Any, path: str, lenient: bool) -> Payload:
    return RatingUser(_int(value, path, 0, U8_MAX, "u8"))


def _p_amount(value: Any, path: str, lenient: bool) -> Payload:
    return Amount(_i64(value, path))


def _p_dispute(value: Any, path: str, lenient: bool) -> Payload:
    """Rust form `[dispute_id, SolverDisputeInfo|null]`; the docs' bare id string if lenient."""
    if lenient and type(value) is str:
        return DisputePayload(parse_uuid(value, path), None)
    items = _arr(value, path, 2)
    info = items[1]
    return DisputePayload(
        dispute_id=parse_uuid(items[0], path + "[0]"),
        info=None if info is None else _solver_dispute_info(info, path + "[1]"),
    )


def _p_cant_do(value: Any, path: str, lenient: bool) -> Payload:
    return CantDo(None if value is None else _enum(_CANT_DO_REASONS, value, path, "cant-do reason"))


def _p_next_trade(value: Any, path: str, lenient: bool) -> Payload:
    items = _arr(value, path, 2)
    return NextTrade(pubkey=_str(items[0], path + "[0]"), index=_u32(items[1], path + "[1]"))


def _p_payment_failed(value: Any, path: str, lenient: bool) -> Payload:
    obj = _obj(value, path)
    return PaymentFailed(
        payment_attempts=_u32(_required(obj, "payment_attempts", path), path + ".payment_attempts"),
        payment_retries_interval=_u32(
            _required(obj, "payment_retries_interval", path), path + ".payment_retries_interval"
        ),
    )


def _p_restore_data(value: Any, path: str, lenient: bool) -> Payload:
    obj = _obj(value, path)
    orders = _arr(_required(obj, "orders", path), path + ".orders")
    disputes = _arr(_required(obj, "disputes", path), path + ".disputes")
    return RestoreData(
        orders=tuple(_restored_order(o, f"{path}.orders[{i}]") for i, o in enumerate(orders)),
        disputes=tuple(
            _restored_dispute(d, f"{path}.disputes[{i}]") for i, d in enumerate(disputes)
        ),
    )


def _p_ids(value: Any, path: str, lenient: bool) -> Payload:
    items = _arr(value, path)
    return Ids(tuple(parse_uuid(v, f"{path}[{i}]") for i, v in enumerate(items)))


def _p_orders(value: Any, path: str, lenient: bool) -> Payload:
    items = _arr(value, path)
    return Orders(tuple(_small_order(v, f"{path}[{i}]") for i, v in enumerate(items)))


def _p_bond_resolution(value: Any, path: str, lenient: bool) -> Payload:
    obj = _obj(value, path)
    return BondResolution(
        slash_seller=_bool(_required(obj, "slash_seller", path), path + ".slash_seller"),
        slash_buyer=_bool(_required(obj, "slash_buyer", path), path + ".slash_buyer"),
    )


def _p_bond_payout_request(value: Any, path: str, lenient: bool) -> Payload:
    obj = _obj(value, path)
    return BondPayoutRequest(
        order=_small_order(_required(obj, "order", path), path + ".order"),
        slashed_at=_i64(_required(obj, "slashed_at", path), path + ".slashed_at"),
    )


def _p_cashu_lock_proof(value: Any, path: str, lenient: bool) -> Payload:
    obj = _obj(value, path)
    return CashuLockProof(
        token=_str(_required(obj, "token", path), path + ".token"),
        mint_url=_str(_required(obj, "mint_url", path), path + ".mint_url"),
        buyer_pubkey=_str(_required(obj, "buyer_pubkey", path), path + ".buyer_pubkey"),
        seller_pubkey=_str(_required(obj, "seller_pubkey", path), path + ".seller_pubkey"),
        mostro_pubkey=_str(_required(obj, "mostro_pubkey", path), path + ".mostro_pubkey"),
        fee_token=_opt_str(obj.get("fee_token"), path + ".fee_token"),
    )


def _p_cashu_signatures(value: Any, path: str, lenient: bool) -> Payload:
    items = _arr(value, path)
    signatures = []
    for i, item in enumerate(items):
        item_path = f"{path}[{i}]"
        obj = _obj(item, item_path)
        signatures.append(
            CashuSignature(
                secret=_str(_required(obj, "secret", item_path), item_path + ".secret"),
                signature=_str(_required(obj, "signature", item_path), item_path + ".signature"),
            )
        )
    return CashuSignatures(tuple(signatures))


_PayloadParser = Callable[[Any, str, bool], Payload]

_PAYLOAD_PARSERS: dict[str, _PayloadParser] = {
    "order": _p_order,
    "payment_request": _p_payment_request,
    "text_message": _p_text_message,
    "peer": _p_peer,
    "rating_user": _p_rating_user,
    "amount": _p_amount,
    "dispute": _p_dispute,
    "cant_do": _p_cant_do,
    "next_trade": _p_next_trade,
    "payment_failed": _p_payment_failed,
    "restore_data": _p_restore_data,
    "ids": _p_ids,
    "orders": _p_orders,
    "bond_resolution": _p_bond_resolution,
    "bond_payout_request": _p_bond_payout_request,
    "cashu_lock_proof": _p_cashu_lock_proof,
    "cashu_signatures": _p_cashu_signatures,
}

PAYLOAD_KEYS: dict[type, str] = {
    OrderPayload: "order",
    PaymentRequest: "payment_request",
    TextMessage: "text_message",
    Peer: "peer",
    RatingUser: "rating_user",
    Amount: "amount",
    DisputePayload: "dispute",
    CantDo: "cant_do",
    NextTrade: "next_trade",
    PaymentFailed: "payment_failed",
    RestoreData: "restore_data",
    Ids: "ids",
    Orders: "orders",
    BondResolution: "bond_resolution",
    BondPayoutRequest: "bond_payout_request",
    CashuLockProof: "cashu_lock_proof",
    CashuSignatures: "cashu_signatures",
}
"""Payload class -> its snake_case wire key."""


def payload_key(payload: Payload | None) -> str:
    """The wire key of a payload (`"null"` for none), for logs and error reasons."""
    return "null" if payload is None else PAYLOAD_KEYS[type(payload)]


def _payload(value: Any, path: str, lenient: bool) -> Payload | None:
    if value is None or value is _MISSING:
        return None
    obj = _obj(value, path)
    if len(obj) != 1:
        raise _Invalid(path, f"expected an object with exactly one key, got {len(obj)}")
    ((key, inner),) = obj.items()
    parser = _PAYLOAD_PARSERS.get(key)
    if parser is None:
        raise _Invalid(path, f"unknown payload {str(key)[:64]!r}")
    return parser(inner, f"{path}.{key}", lenient)


# ---------------------------------------------------------------------------------------------
# Message
# ---------------------------------------------------------------------------------------------


def message_from_object(obj: Any, lenient: bool = True) -> Message:
    """Build a Message from decoded JSON; raises `_Invalid` (use `parse_message` from outside)."""
    outer = _obj(obj, "")
    if len(outer) != 1:
        raise _Invalid("", f"expected exactly one wrapper key, got {len(outer)}")
    ((key, body_value),) = outer.items()
    wrapper = _WRAPPERS.get(key)
    if wrapper is None:
        raise _Invalid("", f"unknown wrapper key {str(key)[:64]!r}")
    body = _obj(body_value, key)
    get = body.get
    version = get("version", _MISSING)
    if version is _MISSING:
        raise _Invalid(key, "missing field 'version'")
    action = get("action", _MISSING)
    if action is _MISSING:
        raise _Invalid(key, "missing field 'action'")
    request_id = get("request_id")
    trade_index = get("trade_index")
    return Message(
        action=_enum(_ACTIONS, action, key + ".action", "action"),
        wrapper=wrapper,
        version=_int(version, key + ".version", 0, U8_MAX, "u8"),
        request_id=None if request_id is None else _u64(request_id, key + ".request_id"),
        trade_index=None if trade_index is None else _i64(trade_index, key + ".trade_index"),
        id=_opt_uuid(get("id"), key + ".id"),
        payload=_payload(get("payload"), key + ".payload", lenient),
    )


def parse_message(text_or_obj: str | bytes | Any, lenient: bool = True) -> Message | ParseError:
    """Parse one Mostro message from JSON text (or a decoded object); total, never raises.

    `lenient` accepts the documentation's forms Rust rejects (2-element `payment_request`, bare
    dispute id string, PROTOCOL.md §7.2); they are re-serialized in the Rust form.
    """
    try:
        if isinstance(text_or_obj, str | bytes):
            too_big = check_size(text_or_obj)
            if too_big is not None:
                return too_big
            text_or_obj = decode_json_text(text_or_obj)
        return message_from_object(text_or_obj, lenient)
    except _Invalid as err:
        return ParseError(err.path, err.reason)
    except RecursionError:
        return ParseError("", "nested too deeply")


# ---------------------------------------------------------------------------------------------
# MessageKind::verify()
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    needs_id: bool
    allowed: frozenset[type] | None  # None = anything except `forbidden`
    allow_none: bool


_BOND_ONLY = frozenset({BondResolution, BondPayoutRequest})
_ANY_STAR = _Rule(needs_id=True, allowed=None, allow_none=True)

_VERIFY_RULES: dict[Action, _Rule] = {
    Action.NEW_ORDER: _Rule(False, frozenset({OrderPayload}), False),
    Action.PAY_INVOICE: _Rule(True, frozenset({PaymentRequest}), False),
    Action.PAY_BOND_INVOICE: _Rule(True, frozenset({PaymentRequest}), False),
    Action.ADD_INVOICE: _Rule(True, frozenset({PaymentRequest}), False),
    Action.ADD_BOND_INVOICE: _Rule(True, frozenset({BondPayoutRequest, PaymentRequest}), False),
    Action.ADMIN_SETTLE: _Rule(True, frozenset({BondResolution}), True),
    Action.ADMIN_CANCEL: _Rule(True, frozenset({BondResolution}), True),
    Action.ADD_CASHU_ESCROW: _Rule(True, frozenset({CashuLockProof}), False),
    Action.CASHU_PM_SIGNATURE: _Rule(True, frozenset({CashuSignatures}), False),
    Action.LAST_TRADE_INDEX: _Rule(False, frozenset(), True),
    Action.RESTORE_SESSION: _Rule(False, frozenset(), True),
    Action.PAYMENT_FAILED: _Rule(True, frozenset({PaymentFailed}), False),
    Action.RATE_USER: _Rule(False, frozenset({RatingUser}), False),
    Action.CANT_DO: _Rule(False, frozenset({CantDo}), False),
    Action.ORDERS: _Rule(False, frozenset({Ids, Orders}), False),
}
for _action in Action:  # every other action is `any*` (PROTOCOL.md §1.4)
    _VERIFY_RULES.setdefault(_action, _ANY_STAR)
del _action


def verify_message(message: Message) -> str | None:
    """mostro-core's `MessageKind::verify()`: None when the id/payload fit the action, else why not.

    Intake drops a message that fails this silently (PROTOCOL.md §4.1 step 9).
    """
    rule = _VERIFY_RULES[message.action]
    if rule.needs_id and message.id is None:
        return f"{message.action.value} requires an id"
    payload = message.payload
    if payload is None:
        if rule.allow_none:
            return None
        return f"{message.action.value} requires a payload"
    kind = type(payload)
    if rule.allowed is None:
        ok = kind not in _BOND_ONLY
    else:
        ok = kind in rule.allowed
    if ok and kind is CashuSignatures and not payload.signatures:
        return f"{message.action.value} requires at least one cashu signature"
    if not ok:
        return f"{message.action.value} does not accept payload {PAYLOAD_KEYS[kind]}"
    return None


# ---------------------------------------------------------------------------------------------
# Canonical serialization (serde_json's compact output for mostro-core's types)
# ---------------------------------------------------------------------------------------------


def format_f64(value: float) -> str:
    """An f64 the way serde_json writes it (ryu): `0.0`, `4.5`, `1e16`, `1.5e-7`; null if not finite."""
    value = float(value)
    if not math.isfinite(value):
        return "null"
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    length = len(digits)
    kk = length + int(exponent)  # 10^(kk-1) <= |value| < 10^kk
    prefix = "-" if sign else ""
    if 0 <= exponent and kk <= 16:
        return f"{prefix}{digits}{'0' * int(exponent)}.0"
    if 0 < kk <= 16:
        return f"{prefix}{digits[:kk]}.{digits[kk:]}"
    if -5 < kk <= 0:
        return f"{prefix}0.{'0' * -kk}{digits}"
    if length == 1:
        return f"{prefix}{digits}e{kk - 1}"
    return f"{prefix}{digits[0]}.{digits[1:]}e{kk - 1}"


def _s(value: str) -> str:
    return _json_string(value)


def _os(value: str | None) -> str:
    return "null" if value is None else _json_string(value)


def _oi(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def _b(value: bool) -> str:
    return "true" if value else "false"


def serialize_small_order(order: SmallOrder) -> str:
    """SmallOrder with §1.6's output rules: id/pubkeys/invoice omitted when null, the rest always."""
    parts = ['{"id":', _s(order.id), ","] if order.id is not None else ["{"]
    parts += [
        '"kind":', _os(order.kind),
        ',"status":', _os(order.status),
        ',"amount":', str(order.amount),
        ',"fiat_code":', _s(order.fiat_code),
        ',"min_amount":', _oi(order.min_amount),
        ',"max_amount":', _oi(order.max_amount),
        ',"fiat_amount":', str(order.fiat_amount),
        ',"payment_method":', _s(order.payment_method),
        ',"premium":', str(order.premium),
    ]  # fmt: skip
    if order.buyer_trade_pubkey is not None:
        parts += [',"buyer_trade_pubkey":', _s(order.buyer_trade_pubkey)]
    if order.seller_trade_pubkey is not None:
        parts += [',"seller_trade_pubkey":', _s(order.seller_trade_pubkey)]
    if order.buyer_invoice is not None:
        parts += [',"buyer_invoice":', _s(order.buyer_invoice)]
    parts += [',"created_at":', _oi(order.created_at), ',"expires_at":', _oi(order.expires_at), "}"]
    return "".join(parts)


def _opt_small_order(order: SmallOrder | None) -> str:
    return "null" if order is None else serialize_small_order(order)


def serialize_user_info(info: UserInfo | None) -> str:
    if info is None:
        return "null"
    return (
        f'{{"rating":{format_f64(info.rating)},"reviews":{int(info.reviews)},'
        f'"operating_days":{int(info.operating_days)}}}'
    )


def _ser_solver_dispute_info(info: SolverDisputeInfo) -> str:
    return "".join(
        (
            '{"id":', _s(info.id),
            ',"kind":', _s(info.kind),
            ',"status":', _s(info.status),
            ',"hash":', _os(info.hash),
            ',"preimage":', _os(info.preimage),
            ',"order_previous_status":', _s(info.order_previous_status),
            ',"initiator_pubkey":', _s(info.initiator_pubkey),
            ',"buyer_pubkey":', _os(info.buyer_pubkey),
            ',"seller_pubkey":', _os(info.seller_pubkey),
            ',"initiator_full_privacy":', _b(info.initiator_full_privacy),
            ',"counterpart_full_privacy":', _b(info.counterpart_full_privacy),
            ',"initiator_info":', serialize_user_info(info.initiator_info),
            ',"counterpart_info":', serialize_user_info(info.counterpart_info),
            ',"premium":', str(info.premium),
            ',"payment_method":', _s(info.payment_method),
            ',"amount":', str(info.amount),
            ',"fiat_amount":', str(info.fiat_amount),
            ',"fee":', str(info.fee),
            ',"routing_fee":', str(info.routing_fee),
            ',"buyer_invoice":', _os(info.buyer_invoice),
            ',"invoice_held_at":', str(info.invoice_held_at),
            ',"taken_at":', str(info.taken_at),
            ',"created_at":', str(info.created_at),
            "}",
        )
    )  # fmt: skip


def _ser_order(p: OrderPayload) -> str:
    return serialize_small_order(p.order)


def _ser_payment_request(p: PaymentRequest) -> str:
    return f"[{_opt_small_order(p.order)},{_s(p.invoice)},{_oi(p.amount)}]"


def _ser_text_message(p: TextMessage) -> str:
    return _s(p.text)


def _ser_peer(p: Peer) -> str:
    return f'{{"pubkey":{_s(p.pubkey)},"reputation":{serialize_user_info(p.reputation)}}}'


def _ser_rating_user(p: RatingUser) -> str:
    return str(int(p.rating))


def _ser_amount(p: Amount) -> str:
    return str(int(p.amount))


def _ser_dispute(p: DisputePayload) -> str:
    info = "null" if p.info is None else _ser_solver_dispute_info(p.info)
    return f"[{_s(p.dispute_id)},{info}]"


def _ser_cant_do(p: CantDo) -> str:
    return _os(p.reason)


def _ser_next_trade(p: NextTrade) -> str:
    return f"[{_s(p.pubkey)},{int(p.index)}]"


def _ser_payment_failed(p: PaymentFailed) -> str:
    return (
        f'{{"payment_attempts":{int(p.payment_attempts)},'
        f'"payment_retries_interval":{int(p.payment_retries_interval)}}}'
    )


def _ser_restored_order(o: RestoredOrderInfo) -> str:
    return f'{{"order_id":{_s(o.order_id)},"trade_index":{int(o.trade_index)},"status":{_s(o.status)}}}'


def _ser_restored_dispute(d: RestoredDisputeInfo) -> str:
    return (
        f'{{"dispute_id":{_s(d.dispute_id)},"order_id":{_s(d.order_id)},'
        f'"trade_index":{int(d.trade_index)},"status":{_s(d.status)},'
        f'"initiator":{_os(d.initiator)},"solver_pubkey":{_os(d.solver_pubkey)}}}'
    )


def _ser_restore_data(p: RestoreData) -> str:
    orders = ",".join(map(_ser_restored_order, p.orders))
    disputes = ",".join(map(_ser_restored_dispute, p.disputes))
    return f'{{"orders":[{orders}],"disputes":[{disputes}]}}'


def _ser_ids(p: Ids) -> str:
    return "[" + ",".join(map(_s, p.ids)) + "]"


def _ser_orders(p: Orders) -> str:
    return "[" + ",".join(map(serialize_small_order, p.orders)) + "]"


def _ser_bond_resolution(p: BondResolution) -> str:
    return f'{{"slash_seller":{_b(p.slash_seller)},"slash_buyer":{_b(p.slash_buyer)}}}'


def _ser_bond_payout_request(p: BondPayoutRequest) -> str:
    return f'{{"order":{serialize_small_order(p.order)},"slashed_at":{int(p.slashed_at)}}}'


def _ser_cashu_lock_proof(p: CashuLockProof) -> str:
    fee = "" if p.fee_token is None else f',"fee_token":{_s(p.fee_token)}'
    return (
        f'{{"token":{_s(p.token)},"mint_url":{_s(p.mint_url)},"buyer_pubkey":{_s(p.buyer_pubkey)},'
        f'"seller_pubkey":{_s(p.seller_pubkey)},"mostro_pubkey":{_s(p.mostro_pubkey)}{fee}}}'
    )


def _ser_cashu_signatures(p: CashuSignatures) -> str:
    return (
        "["
        + ",".join(
            f'{{"secret":{_s(s.secret)},"signature":{_s(s.signature)}}}' for s in p.signatures
        )
        + "]"
    )


_PAYLOAD_SERIALIZERS: dict[type, Callable[[Any], str]] = {
    OrderPayload: _ser_order,
    PaymentRequest: _ser_payment_request,
    TextMessage: _ser_text_message,
    Peer: _ser_peer,
    RatingUser: _ser_rating_user,
    Amount: _ser_amount,
    DisputePayload: _ser_dispute,
    CantDo: _ser_cant_do,
    NextTrade: _ser_next_trade,
    PaymentFailed: _ser_payment_failed,
    RestoreData: _ser_restore_data,
    Ids: _ser_ids,
    Orders: _ser_orders,
    BondResolution: _ser_bond_resolution,
    BondPayoutRequest: _ser_bond_payout_request,
    CashuLockProof: _ser_cashu_lock_proof,
    CashuSignatures: _ser_cashu_signatures,
}
# The wire keys as already-quoted JSON prefixes, e.g. '{"order":'.
_PAYLOAD_PREFIXES: dict[type, str] = {cls: '{"' + key + '":' for cls, key in PAYLOAD_KEYS.items()}


def serialize_payload(payload: Payload | None) -> str:
    if payload is None:
        return "null"
    cls = type(payload)
    return _PAYLOAD_PREFIXES[cls] + _PAYLOAD_SERIALIZERS[cls](payload) + "}"


def serialize_message(message: Message) -> str:
    """mostro-core's `Message::as_json()`: the bytes trade and identity signatures cover (§1.2)."""
    id_part = "" if message.id is None else f'"id":{_s(message.id)},'
    return (
        f'{{"{message.wrapper}":{{"version":{int(message.version)},'
        f'"request_id":{_oi(message.request_id)},"trade_index":{_oi(message.trade_index)},'
        f'{id_part}"action":"{message.action}","payload":{serialize_payload(message.payload)}}}}}'
    )
