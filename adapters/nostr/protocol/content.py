"""Content tuples (the decrypted plaintext of a Mostro DM) and their message signatures.

Protocol v1 (gift wrap) carries `[message, trade_sig|null]`, protocol v2 (NIP-44 direct, kind 14)
`[message, trade_sig|null, [identity_pubkey, identity_sig]|null]` (PROTOCOL.md §1.3). This module
parses them (keeping element 0's raw text, which is what clients actually signed), verifies the
trade signature and the v2 identity proof, and builds tuples for both directions.

It must not encrypt, wrap or sign events, look at the clock or decide what a message means:
transports call it with plaintext and the event's author key, intake decides what to drop.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass
from json.encoder import encode_basestring as _json_string
from typing import Any

from .. import keys
from .codec import (
    JSON_DECODER,
    ParseError,
    _Invalid,
    check_no_lone_surrogates,
    check_size,
    message_from_object,
    serialize_message,
)
from .enums import Transport
from .payloads import Message

IDENTITY_PROOF_PREFIX = "mostro-transport-v2-identity:"
_TUPLE_LENGTH = {Transport.GIFT_WRAP: 2, Transport.NIP44: 3}
_PROTOCOL_VERSION = {Transport.GIFT_WRAP: 1, Transport.NIP44: 2}
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class IdentityProof:
    """v2 element 2: the identity key and its signature binding the message to the trade key."""

    pubkey: str
    signature: str


@dataclass(frozen=True, slots=True)
class Content:
    """A parsed content tuple.

    `message_json` is element 0 exactly as received: signatures are checked against it first,
    because a client may have signed bytes that differ from our canonical re-serialization.
    """

    message: Message
    message_json: str
    trade_sig: str | None
    identity_proof: IdentityProof | None
    transport: Transport


@dataclass(frozen=True, slots=True)
class SignatureError:
    """Why a content tuple's signatures were refused (the message is then dropped silently)."""

    reason: str

    def __str__(self) -> str:
        return self.reason


def stamp_version(message: Message, transport: Transport) -> Message:
    """The daemon writes `version` 1 on gift wrap and 2 on NIP-44 output (PROTOCOL.md §1.2)."""
    version = _PROTOCOL_VERSION[transport]
    return message if message.version == version else dataclasses.replace(message, version=version)


def transport_for_tuple_length(length: int) -> Transport | None:
    """v1 tuples have two elements, v2 tuples three; anything else is neither."""
    for transport, expected in _TUPLE_LENGTH.items():
        if expected == length:
            return transport
    return None


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def split_json_array(text: str) -> list[tuple[Any, str]]:
    """Decode a JSON array element by element, returning `(value, raw_text)` pairs.

    One pass with the strict decoder's `raw_decode`, so the raw text of each element is known
    without decoding anything twice. Raises `_Invalid` on malformed input.
    """
    skip = _WHITESPACE.match
    end = len(text)
    i = skip(text, 0).end()
    if i >= end or text[i] != "[":
        raise _Invalid("", "expected a JSON array (content tuple)")
    i = skip(text, i + 1).end()
    items: list[tuple[Any, str]] = []
    if i < end and text[i] == "]":
        i += 1
    else:
        while True:
            try:
                value, after = JSON_DECODER.raw_decode(text, i)
            except ValueError as err:  # json.JSONDecodeError
                raise _Invalid(
                    "", f"invalid JSON: {getattr(err, 'msg', err)} at char {i}"
                ) from None
            except RecursionError:
                raise _Invalid("", "invalid JSON: nested too deeply") from None
            items.append((value, text[i:after]))
            i = skip(text, after).end()
            if i < end and text[i] == ",":
                i = skip(text, i + 1).end()
                continue
            if i < end and text[i] == "]":
                i += 1
                break
            raise _Invalid("", f"invalid JSON: expected ',' or ']' at char {i}")
    if skip(text, i).end() != end:
        raise _Invalid("", f"invalid JSON: trailing characters at char {i}")
    if "\\u" in text:
        check_no_lone_surrogates([value for value, _ in items])
    return items


def _parse_content(text: str, transport: Transport | None, lenient: bool) -> Content:
    items = split_json_array(text)
    if transport is None:
        transport = transport_for_tuple_length(len(items))
        if transport is None:
            raise _Invalid("", f"expected 2 (v1) or 3 (v2) elements, got {len(items)}")
    expected = _TUPLE_LENGTH[transport]
    if len(items) != expected:
        raise _Invalid(
            "",
            f"expected {expected} elements (protocol v{_PROTOCOL_VERSION[transport]} content tuple), "
            f"got {len(items)}",
        )
    message_obj, message_json = items[0]
    message = message_from_object(message_obj, lenient)
    trade_sig = items[1][0]
    if trade_sig is not None and type(trade_sig) is not str:
        raise _Invalid("[1]", "expected trade signature string or null")
    proof = None
    if expected == 3 and items[2][0] is not None:
        raw_proof = items[2][0]
        if (
            type(raw_proof) is not list
            or len(raw_proof) != 2
            or type(raw_proof[0]) is not str
            or type(raw_proof[1]) is not str
        ):
            raise _Invalid("[2]", "expected [identity_pubkey, identity_sig] or null")
        proof = IdentityProof(pubkey=raw_proof[0], signature=raw_proof[1])
    return Content(message, message_json, trade_sig, proof, transport)


def parse_content(
    plaintext: str | bytes, transport: Transport | None, lenient: bool = True
) -> Content | ParseError:
    """Parse a decrypted content tuple for `transport`; total, never raises.

    The tuple length must match the transport exactly (2 on gift wrap, 3 on NIP-44); with
    `transport=None` (tools only) the length decides.
    """
    too_big = check_size(plaintext)
    if too_big is not None:
        return too_big
    if isinstance(plaintext, bytes):
        try:
            plaintext = plaintext.decode("utf-8")
        except UnicodeDecodeError as err:
            return ParseError("", f"invalid UTF-8: {err.reason}")
    try:
        return _parse_content(plaintext, transport, lenient)
    except _Invalid as err:
        return ParseError(err.path, err.reason)
    except RecursionError:
        return ParseError("", "nested too deeply")


# ---------------------------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------------------------


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _signature_bytes(signature_hex: str) -> bytes | None:
    if len(signature_hex) != 128 or not _HEX.issuperset(signature_hex):
        return None
    return bytes.fromhex(signature_hex)


def _verifies(signature: bytes, texts: tuple[str, ...], pubkey_hex: str) -> bool:
    return any(keys.verify(signature, _sha256(text), pubkey_hex) for text in texts)


def _signed_texts(content: Content) -> tuple[str, ...]:
    """Raw element 0 first; our canonical form second, only when it differs (§1.3)."""
    canonical = serialize_message(content.message)
    if canonical == content.message_json:
        return (canonical,)
    return (content.message_json, canonical)


def verify_content(
    content: Content, trade_pubkey: str, seal_pubkey: str | None = None
) -> str | SignatureError:
    """Check the tuple's signatures; return the sender's identity pubkey (hex) or why not.

    `trade_pubkey` is the v1 rumor's / v2 event's author. A `null` trade signature is allowed
    here (intake separately drops unsigned messages whose identity differs from the sender).
    Identity: v2 = the proven identity key, or the trade key when element 2 is null (full
    privacy); v1 = `seal_pubkey` (the seal signer), defaulting to the trade key.
    """
    trade_pubkey = trade_pubkey.lower()
    if not keys.is_valid_public_key(trade_pubkey):
        return SignatureError("invalid trade pubkey")
    texts: tuple[str, ...] | None = None
    if content.trade_sig is not None:
        signature = _signature_bytes(content.trade_sig)
        if signature is None:
            return SignatureError("malformed trade signature")
        texts = _signed_texts(content)
        if not _verifies(signature, texts, trade_pubkey):
            return SignatureError("trade signature does not verify")
    if content.transport is Transport.GIFT_WRAP:
        return trade_pubkey if seal_pubkey is None else seal_pubkey.lower()
    proof = content.identity_proof
    if proof is None:
        return trade_pubkey
    identity = proof.pubkey.lower()
    if not keys.is_valid_public_key(identity):
        return SignatureError("malformed identity pubkey")
    signature = _signature_bytes(proof.signature)
    if signature is None:
        return SignatureError("malformed identity signature")
    if texts is None:
        texts = _signed_texts(content)
    prefix = f"{IDENTITY_PROOF_PREFIX}{trade_pubkey}:"
    if not _verifies(signature, tuple(prefix + text for text in texts), identity):
        return SignatureError("identity signature does not verify against identity pubkey")
    return identity


# ---------------------------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------------------------


def sign_text(text: str, secret_hex: str) -> str:
    """BIP-340 signature (hex) over SHA-256 of `text`: mostro-core's `Message::sign`."""
    return keys.keypair(secret_hex).sign(_sha256(text)).hex()


def build_content(
    message: Message,
    transport: Transport,
    trade_secret_hex: str | None = None,
    identity_secret_hex: str | None = None,
) -> str:
    """Serialize a content tuple: the daemon passes no keys (`[msg,null]` / `[msg,null,null]`);
    a client passes its trade key and, on v2 outside full privacy, its identity key.

    The message is written as is: call `stamp_version` first if the version must follow the
    transport.
    """
    message_json = serialize_message(message)
    if trade_secret_hex is None:
        if identity_secret_hex is not None:
            raise ValueError("an identity proof needs the trade key it binds to")
        return (
            f"[{message_json},null]"
            if transport is Transport.GIFT_WRAP
            else f"[{message_json},null,null]"
        )
    trade = keys.keypair(trade_secret_hex)
    trade_sig = _json_string(trade.sign(_sha256(message_json)).hex())
    if transport is Transport.GIFT_WRAP:
        return f"[{message_json},{trade_sig}]"
    proof = "null"
    if identity_secret_hex is not None:
        identity = keys.keypair(identity_secret_hex)
        if identity.public_hex != trade.public_hex:
            payload = f"{IDENTITY_PROOF_PREFIX}{trade.public_hex}:{message_json}"
            proof = f'["{identity.public_hex}","{identity.sign(_sha256(payload)).hex()}"]'
    return f"[{message_json},{trade_sig},{proof}]"


def serialize_content(content: Content) -> str:
    """A parsed tuple re-serialized canonically (element 0 in canonical form, the rest as given)."""
    parts = [
        serialize_message(content.message),
        "null" if content.trade_sig is None else _json_string(content.trade_sig),
    ]
    if content.transport is Transport.NIP44:
        proof = content.identity_proof
        parts.append(
            "null"
            if proof is None
            else f"[{_json_string(proof.pubkey)},{_json_string(proof.signature)}]"
        )
    return "[" + ",".join(parts) + "]"
