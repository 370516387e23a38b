"""A NIP-01 event as an immutable value: id computation, signing, verification, dict/JSON forms.

One class serves signed events and unsigned ones (NIP-59 rumors: `sig is None`). Parsing untrusted
JSON or dicts returns a `NostrEvent` or an `EventError` naming the first bad field; it never raises.
The id is the SHA-256 of one compact `json.dumps` of `[0, pubkey, created_at, kind, tags, content]`
(`ensure_ascii=False`, which is NIP-01's escaping).

It must not know about encryption, gift wraps, PoW mining or Mostro; published-event builders live
in `events.py`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from adapters.nostr import keys
from adapters.nostr.keys import KeyPair, is_hex

Tags = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class EventError:
    """Why a dict or JSON text is not an acceptable Nostr event."""

    reason: str


# NIP-01's serialisation; one encoder (`json.dumps` with options builds one per call)
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def serialize_for_id(pubkey: str, created_at: int, kind: int, tags: Any, content: str) -> bytes:
    """The exact bytes NIP-01 hashes into an event id."""
    return COMPACT_JSON.encode([0, pubkey, created_at, kind, tags, content]).encode("utf-8")


def compute_id(pubkey: str, created_at: int, kind: int, tags: Any, content: str) -> str:
    return sha256(serialize_for_id(pubkey, created_at, kind, tags, content)).hexdigest()


def freeze_tags(tags: Any) -> Tags:
    return tuple(tuple(tag) for tag in tags)


@dataclass(frozen=True)
class NostrEvent:
    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: Tags
    content: str
    sig: str | None = None

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def unsigned(
        cls, pubkey: str, created_at: int, kind: int, tags: Any, content: str
    ) -> NostrEvent:
        """An event with its id and no signature (a rumor, or a template to mine and sign)."""
        frozen = freeze_tags(tags)
        return cls(
            compute_id(pubkey, created_at, kind, frozen, content),
            pubkey,
            created_at,
            kind,
            frozen,
            content,
        )

    @classmethod
    def signed(
        cls,
        signer: KeyPair,
        created_at: int,
        kind: int,
        tags: Any,
        content: str,
        aux: bytes | None = None,
    ) -> NostrEvent:
        """A new event authored and signed by `signer`."""
        return cls.unsigned(signer.public_hex, created_at, kind, tags, content).sign(signer, aux)

    def sign(self, signer: KeyPair, aux: bytes | None = None) -> NostrEvent:
        """This event signed by `signer` (which must be its author)."""
        if signer.public_hex != self.pubkey:
            raise ValueError("an event can only be signed by its author")
        sig = signer.sign(bytes.fromhex(self.id), aux).hex()
        return NostrEvent(
            self.id, self.pubkey, self.created_at, self.kind, self.tags, self.content, sig
        )

    # --- checks -------------------------------------------------------------------------------

    def computed_id(self) -> str:
        return compute_id(self.pubkey, self.created_at, self.kind, self.tags, self.content)

    def has_valid_id(self) -> bool:
        return self.id == self.computed_id()

    def verify(self) -> bool:
        """True when the id matches the fields and the signature is the author's over that id."""
        if self.sig is None or not self.has_valid_id():
            return False
        return keys.verify(bytes.fromhex(self.sig), bytes.fromhex(self.id), self.pubkey)

    def tag_values(self, name: str) -> list[str]:
        """The first value of every tag called `name`, in order."""
        return [tag[1] for tag in self.tags if len(tag) >= 2 and tag[0] == name]

    # --- wire forms ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "pubkey": self.pubkey,
            "created_at": self.created_at,
            "kind": self.kind,
            "tags": [list(tag) for tag in self.tags],
            "content": self.content,
        }
        if self.sig is not None:
            out["sig"] = self.sig
        return out

    def to_json(self) -> str:
        return COMPACT_JSON.encode(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, *, require_sig: bool = True) -> NostrEvent | EventError:
        """Validate field types and shapes (not the id or signature: see `verify`/`has_valid_id`).

        With `require_sig=False` (rumors) a missing id is computed and `sig` may be absent or null.
        """
        if not isinstance(data, dict):
            return EventError("event is not a JSON object")
        pubkey, created_at, kind = data.get("pubkey"), data.get("created_at"), data.get("kind")
        tags, content = data.get("tags"), data.get("content")
        if not is_hex(pubkey, 64):
            return EventError("pubkey must be 64 lowercase hex characters")
        if type(created_at) is not int or created_at < 0:
            return EventError("created_at must be a non-negative integer")
        if type(kind) is not int or not 0 <= kind <= 65535:
            return EventError("kind must be an integer in 0..65535")
        if not isinstance(content, str):
            return EventError("content must be a string")
        if not isinstance(tags, list) or not all(
            isinstance(tag, list) and all(isinstance(item, str) for item in tag) for tag in tags
        ):
            return EventError("tags must be a list of lists of strings")
        frozen = freeze_tags(tags)
        event_id, sig = data.get("id"), data.get("sig")
        if event_id is None and not require_sig:
            event_id = compute_id(pubkey, created_at, kind, frozen, content)
        if not is_hex(event_id, 64):
            return EventError("id must be 64 lowercase hex characters")
        if sig is None and not require_sig:
            return cls(event_id, pubkey, created_at, kind, frozen, content, None)
        if not is_hex(sig, 128):
            return EventError("sig must be 128 lowercase hex characters")
        return cls(event_id, pubkey, created_at, kind, frozen, content, sig)

    @classmethod
    def from_json(cls, text: str | bytes, *, require_sig: bool = True) -> NostrEvent | EventError:
        try:
            data = json.loads(text)
        except (ValueError, TypeError, RecursionError):
            return EventError("not valid JSON")
        return cls.from_dict(data, require_sig=require_sig)
