"""NIP-59 gift wrap: rumor (unsigned) → seal (kind 13) → gift wrap (kind 1059), and unwrapping.

Mostro deliberately lets the seal signer (identity key) differ from the rumor author (trade key), so
`unwrap` does not require them to match unless asked. All randomness (ephemeral keys, NIP-44 nonces,
Schnorr aux bytes, timestamp tweaks) comes from an `Entropy`, and time from the caller, so tests can
make byte-exact wraps. `unwrap` returns an `Unwrapped` or a `Nip59Error` value; it never raises on
hostile input.

It must not know about Mostro content tuples or transport modes (see `transport.py`).
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from adapters.nostr import keys, nip44
from adapters.nostr.keys import KeyPair
from adapters.nostr.nip44 import Nip44Error
from adapters.nostr.nostr_event import EventError, NostrEvent
from adapters.nostr.pow import mine

KIND_SEAL = 13
KIND_GIFT_WRAP = 1059
KIND_RUMOR_MOSTRO = 1
TIMESTAMP_TWEAK_SECONDS = 2 * 24 * 60 * 60  # seal and wrap created_at: up to two days in the past


class Entropy(Protocol):
    """Where the wrap's randomness comes from."""

    def random_bytes(self, count: int) -> bytes: ...

    def below(self, bound: int) -> int: ...


class SystemEntropy:
    """Cryptographic randomness for production."""

    def random_bytes(self, count: int) -> bytes:
        return os.urandom(count)

    def below(self, bound: int) -> int:
        return secrets.randbelow(bound)


class SeededEntropy:
    """Reproducible randomness for tests only (never for real keys)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def random_bytes(self, count: int) -> bytes:
        return self._rng.randbytes(count)

    def below(self, bound: int) -> int:
        return self._rng.randrange(bound)


SYSTEM_ENTROPY = SystemEntropy()


class Nip59Reason(StrEnum):
    NOT_A_GIFT_WRAP = "not_a_gift_wrap"
    WRAP_NOT_FOR_US = "wrap_not_for_us"  # the wrap does not decrypt with our key
    BAD_WRAP_SIGNATURE = "bad_wrap_signature"
    BAD_SEAL = "bad_seal"
    BAD_SEAL_KIND = "bad_seal_kind"
    BAD_SEAL_SIGNATURE = "bad_seal_signature"
    SEAL_UNDECRYPTABLE = "seal_undecryptable"
    BAD_RUMOR = "bad_rumor"
    BAD_RUMOR_KIND = "bad_rumor_kind"
    BAD_RUMOR_ID = "bad_rumor_id"
    SENDER_MISMATCH = "sender_mismatch"


@dataclass(frozen=True)
class Nip59Error:
    reason: Nip59Reason
    detail: str = ""


@dataclass(frozen=True)
class Unwrapped:
    """What a gift wrap carried: the rumor and who sealed it."""

    wrap_id: str
    seal_pubkey: str
    rumor: NostrEvent


def fresh_keypair(entropy: Entropy) -> KeyPair:
    """A one-off key (the wrap's author), drawn from `entropy`."""
    while True:
        made = keys.keypair_from_bytes(entropy.random_bytes(32))
        if isinstance(made, KeyPair):
            return made


def tweaked_timestamp(now: int, entropy: Entropy) -> int:
    """A created_at between `now - 2 days` (exclusive) and `now`, hiding the real send time."""
    return now - entropy.below(TIMESTAMP_TWEAK_SECONDS)


def make_rumor(
    author_pubkey: str, content: str, created_at: int, kind: int = KIND_RUMOR_MOSTRO, tags: Any = ()
) -> NostrEvent:
    """An unsigned event with its id (deniable: nobody's signature proves it)."""
    return NostrEvent.unsigned(author_pubkey, created_at, kind, tags, content)


def make_seal(
    rumor: NostrEvent,
    sender: KeyPair,
    recipient_pubkey: str,
    now: int,
    entropy: Entropy = SYSTEM_ENTROPY,
    conversation_key: bytes | None = None,
) -> NostrEvent:
    """Kind 13 signed by `sender`, content = NIP-44 of the rumor JSON, no tags, tweaked created_at.
    `conversation_key`: the (sender, recipient) key when the caller already has it."""
    conv = conversation_key or nip44.cached_conversation_key(sender.secret_hex, recipient_pubkey)
    if isinstance(conv, Nip44Error):
        raise ValueError(f"cannot seal to {recipient_pubkey!r}: {conv}")
    content = nip44.encrypt(rumor.to_json(), conv, entropy.random_bytes(32))
    return NostrEvent.signed(
        sender, tweaked_timestamp(now, entropy), KIND_SEAL, (), content, entropy.random_bytes(32)
    )


def make_gift_wrap(
    seal: NostrEvent,
    recipient_pubkey: str,
    now: int,
    entropy: Entropy = SYSTEM_ENTROPY,
    expiration: int | None = None,
    pow_bits: int = 0,
) -> NostrEvent:
    """Kind 1059 signed by a fresh key, content = NIP-44 of the seal JSON, tags p (+ expiration)."""
    ephemeral = fresh_keypair(entropy)
    conv = nip44.conversation_key_from_bytes(ephemeral.secret, recipient_pubkey)
    if isinstance(conv, Nip44Error):
        raise ValueError(f"cannot wrap to {recipient_pubkey!r}: {conv}")
    content = nip44.encrypt(seal.to_json(), conv, entropy.random_bytes(32))
    tags: list[list[str]] = [["p", recipient_pubkey]]
    if expiration is not None:
        tags.append(["expiration", str(expiration)])
    template = mine(
        ephemeral.public_hex,
        tweaked_timestamp(now, entropy),
        KIND_GIFT_WRAP,
        tags,
        content,
        pow_bits,
    )
    return template.sign(ephemeral, entropy.random_bytes(32))


def gift_wrap(
    rumor: NostrEvent,
    sender: KeyPair,
    recipient_pubkey: str,
    now: int,
    entropy: Entropy = SYSTEM_ENTROPY,
    expiration: int | None = None,
    pow_bits: int = 0,
    conversation_key: bytes | None = None,
) -> NostrEvent:
    """Seal `rumor` with `sender`'s key and wrap it for `recipient_pubkey` (`conversation_key`:
    the seal's, see `make_seal`)."""
    seal = make_seal(rumor, sender, recipient_pubkey, now, entropy, conversation_key)
    return make_gift_wrap(seal, recipient_pubkey, now, entropy, expiration, pow_bits)


def unwrap(
    wrap: NostrEvent,
    recipient_secret_hex: str,
    *,
    verify_wrap: bool = True,
    rumor_kind: int | None = KIND_RUMOR_MOSTRO,
    require_same_author: bool = False,
) -> Unwrapped | Nip59Error:
    """Open a gift wrap addressed to `recipient_secret_hex`'s key, checking every layer.

    `verify_wrap=False` skips the outer id/signature check for callers that already did it.
    `rumor_kind=None` accepts any rumor kind (Mostro requires 1). `require_same_author` applies
    NIP-59's rule that the seal signer is the rumor author (Mostro does not).
    """
    if wrap.kind != KIND_GIFT_WRAP:
        return Nip59Error(Nip59Reason.NOT_A_GIFT_WRAP, f"kind {wrap.kind}")
    if verify_wrap and not wrap.verify():
        return Nip59Error(Nip59Reason.BAD_WRAP_SIGNATURE)
    secret = keys.keypair(recipient_secret_hex).secret
    # the wrap key is single-use: do not pollute the conversation-key cache with it
    wrap_conv = nip44.conversation_key_from_bytes(secret, wrap.pubkey)
    if isinstance(wrap_conv, Nip44Error):
        return Nip59Error(Nip59Reason.WRAP_NOT_FOR_US, str(wrap_conv))
    seal_json = nip44.decrypt(wrap.content, wrap_conv)
    if isinstance(seal_json, Nip44Error):
        return Nip59Error(Nip59Reason.WRAP_NOT_FOR_US, str(seal_json))
    seal = NostrEvent.from_json(seal_json)
    if isinstance(seal, EventError):
        return Nip59Error(Nip59Reason.BAD_SEAL, seal.reason)
    if seal.kind != KIND_SEAL:
        return Nip59Error(Nip59Reason.BAD_SEAL_KIND, f"kind {seal.kind}")
    if not seal.verify():
        return Nip59Error(Nip59Reason.BAD_SEAL_SIGNATURE)
    seal_conv = nip44.cached_conversation_key(recipient_secret_hex, seal.pubkey)
    if isinstance(seal_conv, Nip44Error):
        return Nip59Error(Nip59Reason.SEAL_UNDECRYPTABLE, str(seal_conv))
    rumor_json = nip44.decrypt(seal.content, seal_conv)
    if isinstance(rumor_json, Nip44Error):
        return Nip59Error(Nip59Reason.SEAL_UNDECRYPTABLE, str(rumor_json))
    rumor = NostrEvent.from_json(rumor_json, require_sig=False)
    if isinstance(rumor, EventError):
        return Nip59Error(Nip59Reason.BAD_RUMOR, rumor.reason)
    if rumor_kind is not None and rumor.kind != rumor_kind:
        return Nip59Error(Nip59Reason.BAD_RUMOR_KIND, f"kind {rumor.kind}")
    if not rumor.has_valid_id():
        return Nip59Error(Nip59Reason.BAD_RUMOR_ID)
    if require_same_author and rumor.pubkey != seal.pubkey:
        return Nip59Error(Nip59Reason.SENDER_MISMATCH)
    return Unwrapped(wrap_id=wrap.id, seal_pubkey=seal.pubkey, rumor=rumor)
