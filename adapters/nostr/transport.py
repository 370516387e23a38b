"""Mostro's two Nostr transports (PROTOCOL.md §2): open inbound events, build outbound ones.

* `"nip44"` (protocol v2, default): one kind-14 event signed by the author (client: trade key;
  daemon: node key), content = NIP-44 v2 with (author_sk, recipient_pk), tags p + expiration.
* `"gift-wrap"` (protocol v1): NIP-59 rumor (kind 1, by the trade key) → seal (kind 13, by the
  identity key) → gift wrap (kind 1059, by a one-off key).

Both open to the same `Inbound`: who sent it (trade key), which identity sealed it (v1 only), when,
and the decrypted content-tuple JSON as a string. Parsing that tuple and checking the signatures
inside it is the codec's job, not this module's; so are PoW policy, freshness and replay checks
(the intake's). Hostile input yields a `TransportError` value, never an exception. The builders
raise only on caller bugs (unknown mode, invalid key, plaintext over 65535 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from adapters.nostr import keys, nip44, nip59
from adapters.nostr.nip44 import Nip44Error
from adapters.nostr.nip59 import SYSTEM_ENTROPY, Entropy, Nip59Error, Nip59Reason
from adapters.nostr.nostr_event import EventError, NostrEvent
from adapters.nostr.pow import mine

Mode = Literal["nip44", "gift-wrap"]
MODE_NIP44: Mode = "nip44"
MODE_GIFT_WRAP: Mode = "gift-wrap"
KIND_DIRECT_MESSAGE = 14
TRANSPORT_KIND: dict[str, int] = {
    MODE_NIP44: KIND_DIRECT_MESSAGE,
    MODE_GIFT_WRAP: nip59.KIND_GIFT_WRAP,
}
PROTOCOL_VERSION: dict[str, int] = {MODE_GIFT_WRAP: 1, MODE_NIP44: 2}
DEFAULT_DM_DAYS = 30
SECONDS_PER_DAY = 86400


class TransportReason(StrEnum):
    UNKNOWN_MODE = "unknown_mode"
    MALFORMED_EVENT = "malformed_event"
    WRONG_KIND = "wrong_kind"
    BAD_EVENT_SIGNATURE = "bad_event_signature"  # id or signature of the outer event
    EXPIRED = "expired"  # NIP-40 expiration tag in the past
    NOT_FOR_US = "not_for_us"  # outer layer does not decrypt with our key
    BAD_SEAL = "bad_seal"
    BAD_SEAL_KIND = "bad_seal_kind"
    BAD_SEAL_SIGNATURE = "bad_seal_signature"
    SEAL_UNDECRYPTABLE = "seal_undecryptable"
    BAD_RUMOR = "bad_rumor"
    BAD_RUMOR_KIND = "bad_rumor_kind"
    BAD_RUMOR_ID = "bad_rumor_id"
    UNEXPECTED_SENDER = "unexpected_sender"


_FROM_NIP59: dict[Nip59Reason, TransportReason] = {
    Nip59Reason.NOT_A_GIFT_WRAP: TransportReason.WRONG_KIND,
    Nip59Reason.WRAP_NOT_FOR_US: TransportReason.NOT_FOR_US,
    Nip59Reason.BAD_WRAP_SIGNATURE: TransportReason.BAD_EVENT_SIGNATURE,
    Nip59Reason.BAD_SEAL: TransportReason.BAD_SEAL,
    Nip59Reason.BAD_SEAL_KIND: TransportReason.BAD_SEAL_KIND,
    Nip59Reason.BAD_SEAL_SIGNATURE: TransportReason.BAD_SEAL_SIGNATURE,
    Nip59Reason.SEAL_UNDECRYPTABLE: TransportReason.SEAL_UNDECRYPTABLE,
    Nip59Reason.BAD_RUMOR: TransportReason.BAD_RUMOR,
    Nip59Reason.BAD_RUMOR_KIND: TransportReason.BAD_RUMOR_KIND,
    Nip59Reason.BAD_RUMOR_ID: TransportReason.BAD_RUMOR_ID,
    Nip59Reason.SENDER_MISMATCH: TransportReason.UNEXPECTED_SENDER,
}


@dataclass(frozen=True)
class TransportError:
    reason: TransportReason
    detail: str = ""


@dataclass(frozen=True)
class Inbound:
    """An opened Mostro event, before its content tuple is parsed."""

    event_id: str  # the outer event (v1: gift wrap, v2: kind 14) — what relays and dedup see
    mode: Mode
    sender: str  # trade pubkey: v1 rumor.pubkey, v2 event.pubkey
    seal_pubkey: (
        str | None
    )  # v1: identity that signed the seal; v2: None (identity is in the tuple)
    created_at: int  # v1 rumor.created_at, v2 event.created_at (the freshness check uses it)
    plaintext: str  # the content tuple JSON, unparsed


def subscription_filter(mode: Mode, node_pubkey: str) -> dict[str, Any]:
    """The relay filter for events addressed to the node in this mode."""
    return {"kinds": [_kind(mode)], "#p": [node_pubkey], "limit": 0}


def _kind(mode: str) -> int:
    try:
        return TRANSPORT_KIND[mode]
    except KeyError:
        raise ValueError(f"unknown transport mode {mode!r}") from None


def _expiration(event: NostrEvent) -> int | None:
    for value in event.tag_values("expiration"):
        if value.isdigit():
            return int(value)
    return None


# --- opening ----------------------------------------------------------------------------------


def unwrap_inbound(
    event: dict[str, Any] | NostrEvent,
    node_secret_hex: str,
    mode: Mode,
    now: int | None = None,
    *,
    verified: bool = False,
) -> Inbound | TransportError:
    """Verify and decrypt an event addressed to `node_secret_hex`'s key.

    Checks, in order: shape, kind for the mode, outer id + signature, NIP-40 expiration (when
    `now` is given), decryption, and for v1 the seal (kind 13, signature) and rumor (kind 1, id).
    Works for any recipient key, so clients use it for replies too (see `unwrap_reply`).

    `verified=True` skips the outer id + signature check, and only that: for an event whose id
    and signature the caller itself has just checked (the relay pool does, before de-duplication).
    Anything else must leave it False.
    """
    kind = TRANSPORT_KIND.get(mode)
    if kind is None:
        return TransportError(TransportReason.UNKNOWN_MODE, str(mode))
    parsed = event if isinstance(event, NostrEvent) else NostrEvent.from_dict(event)
    if isinstance(parsed, EventError):
        return TransportError(TransportReason.MALFORMED_EVENT, parsed.reason)
    if parsed.kind != kind:
        return TransportError(TransportReason.WRONG_KIND, f"kind {parsed.kind} in mode {mode}")
    if not verified and not parsed.verify():
        return TransportError(TransportReason.BAD_EVENT_SIGNATURE)
    if now is not None:
        expires = _expiration(parsed)
        if expires is not None and expires <= now:
            return TransportError(TransportReason.EXPIRED, f"expired at {expires}")
    if mode == MODE_NIP44:
        conv = nip44.cached_conversation_key(node_secret_hex, parsed.pubkey)
        if isinstance(conv, Nip44Error):
            return TransportError(TransportReason.NOT_FOR_US, str(conv))
        plaintext = nip44.decrypt(parsed.content, conv)
        if isinstance(plaintext, Nip44Error):
            return TransportError(TransportReason.NOT_FOR_US, str(plaintext))
        return Inbound(parsed.id, mode, parsed.pubkey, None, parsed.created_at, plaintext)
    opened = nip59.unwrap(parsed, node_secret_hex, verify_wrap=False)
    if isinstance(opened, Nip59Error):
        return TransportError(_FROM_NIP59[opened.reason], opened.detail)
    rumor = opened.rumor
    return Inbound(
        parsed.id, mode, rumor.pubkey, opened.seal_pubkey, rumor.created_at, rumor.content
    )


def unwrap_reply(
    event: dict[str, Any] | NostrEvent,
    trade_secret_hex: str,
    mode: Mode,
    expected_sender: str | None = None,
) -> tuple[str, int] | TransportError:
    """Client side: open a daemon reply sent to our trade key → (content-tuple JSON, created_at).

    With `expected_sender` (the node pubkey), a reply signed (v2) or sealed (v1) by anyone else is
    refused.
    """
    opened = unwrap_inbound(event, trade_secret_hex, mode)
    if isinstance(opened, TransportError):
        return opened
    author = opened.seal_pubkey if opened.mode == MODE_GIFT_WRAP else opened.sender
    if expected_sender is not None and author != expected_sender:
        return TransportError(TransportReason.UNEXPECTED_SENDER, f"from {author}")
    return opened.plaintext, opened.created_at


# --- building ---------------------------------------------------------------------------------


def _direct_message(
    plaintext: str,
    author: keys.KeyPair,
    recipient_pubkey: str,
    created_at: int,
    expiration: int | None,
    pow_bits: int,
    entropy: Entropy,
    conversation_key: bytes | None = None,
) -> NostrEvent:
    """A signed kind-14 event: NIP-44 of `plaintext` from `author` to `recipient_pubkey`."""
    conv = conversation_key or nip44.cached_conversation_key(author.secret_hex, recipient_pubkey)
    if isinstance(conv, Nip44Error):
        raise ValueError(f"cannot encrypt to {recipient_pubkey!r}: {conv}")
    content = nip44.encrypt(plaintext, conv, entropy.random_bytes(32))
    tags: list[list[str]] = [["p", recipient_pubkey]]
    if expiration is not None:
        tags.append(["expiration", str(expiration)])
    template = mine(author.public_hex, created_at, KIND_DIRECT_MESSAGE, tags, content, pow_bits)
    return template.sign(author, entropy.random_bytes(32))


def wrap_outbound(
    plaintext: str,
    recipient_pubkey_hex: str,
    node_secret_hex: str,
    mode: Mode,
    now: int,
    dm_days: int = DEFAULT_DM_DAYS,
    entropy: Entropy = SYSTEM_ENTROPY,
    conversation_key: bytes | None = None,
) -> dict[str, Any]:
    """Daemon side: a reply to a client's trade key, ready to publish.

    v2: kind 14 by the node key, tags p + expiration now + dm_days days, created_at now.
    v1: rumor and seal by the node key, gift wrap by a one-off key, no PoW, no expiration.
    `conversation_key`: the NIP-44 key between the node and the recipient, when the caller
    already has it (saves an ECDH; a wrong one makes a reply the recipient cannot open).
    """
    node = keys.keypair(node_secret_hex)
    if _kind(mode) == KIND_DIRECT_MESSAGE:
        expiration = now + dm_days * SECONDS_PER_DAY
        event = _direct_message(plaintext, node, recipient_pubkey_hex, now, expiration, 0, entropy,
                                conversation_key)
    else:
        rumor = nip59.make_rumor(node.public_hex, plaintext, now)
        event = nip59.gift_wrap(rumor, node, recipient_pubkey_hex, now, entropy,
                                conversation_key=conversation_key)
    return event.to_dict()


def wrap_client_message(
    plaintext: str,
    trade_secret_hex: str,
    identity_secret_hex: str | None,
    node_pubkey_hex: str,
    mode: Mode,
    now: int,
    pow_bits: int = 0,
    expiration: int | None = None,
    entropy: Entropy = SYSTEM_ENTROPY,
) -> dict[str, Any]:
    """Client side (tests, devnet demo): a message from a trade key to the node, ready to publish.

    v2: kind 14 by the trade key, created_at now (not randomized), tags p + expiration (default
    now + 30 days), PoW on it; the identity proof lives in the content tuple, so
    `identity_secret_hex` is unused. v1: rumor by the trade key, seal by the identity key (the trade
    key when None: full privacy), PoW and the optional expiration on the gift wrap.
    """
    trade = keys.keypair(trade_secret_hex)
    if _kind(mode) == KIND_DIRECT_MESSAGE:
        if expiration is None:
            expiration = now + DEFAULT_DM_DAYS * SECONDS_PER_DAY
        event = _direct_message(
            plaintext, trade, node_pubkey_hex, now, expiration, pow_bits, entropy
        )
    else:
        identity = keys.keypair(identity_secret_hex) if identity_secret_hex else trade
        rumor = nip59.make_rumor(trade.public_hex, plaintext, now)
        event = nip59.gift_wrap(
            rumor, identity, node_pubkey_hex, now, entropy, expiration, pow_bits
        )
    return event.to_dict()
