"""NIP-13 proof of work: the difficulty of an event id and mining a `["nonce", counter, target]` tag.

Mining hashes the serialized event with the SHA-256 state of the fixed prefix reused, so each attempt
only hashes the counter and what follows it. It returns an unsigned event: the caller signs it.
It must not sign, send or decide policy (which difficulty a node requires is the intake's business).
"""

from __future__ import annotations

import json
from hashlib import sha256
from typing import Any

from adapters.nostr.nostr_event import NostrEvent, freeze_tags


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def pow_bits(event_id_hex: str) -> int:
    """Leading zero bits of a 64-hex event id (0 for anything that is not one)."""
    try:
        value = int(event_id_hex, 16)
    except (TypeError, ValueError):
        return 0
    if len(event_id_hex) != 64 or value < 0:
        return 0
    return 256 - value.bit_length()


def has_pow(event_id_hex: str, target_bits: int) -> bool:
    return target_bits <= 0 or pow_bits(event_id_hex) >= target_bits


def mine(
    pubkey: str,
    created_at: int,
    kind: int,
    tags: Any,
    content: str,
    target_bits: int,
    start: int = 0,
) -> NostrEvent:
    """An unsigned event whose id has at least `target_bits` leading zero bits.

    Any existing nonce tag is replaced; the new one is appended last. With `target_bits <= 0` the
    event is returned as is (no nonce tag), matching clients that do not mine.
    """
    if target_bits <= 0:
        return NostrEvent.unsigned(pubkey, created_at, kind, tags, content)
    if target_bits > 256:
        raise ValueError("at most 256 bits of work")
    base_tags = [list(tag) for tag in tags if not (tag and tag[0] == "nonce")]
    # the compact serialization of [0,pubkey,created_at,kind,[...tags,["nonce",N,T]],content],
    # split around N
    head_tags = "".join(_compact(tag) + "," for tag in base_tags)
    prefix = f'[0,{_compact(pubkey)},{_compact(created_at)},{_compact(kind)},[{head_tags}["nonce","'.encode()
    suffix = f'","{target_bits}"]],{_compact(content)}]'.encode()
    prefix_state = sha256(prefix)
    threshold = 1 << (256 - target_bits)
    counter = start
    while True:
        attempt = prefix_state.copy()
        attempt.update(str(counter).encode("ascii") + suffix)
        digest = attempt.digest()
        if int.from_bytes(digest, "big") < threshold:
            frozen = freeze_tags([*base_tags, ["nonce", str(counter), str(target_bits)]])
            mined = NostrEvent(digest.hex(), pubkey, created_at, kind, frozen, content)
            if not mined.has_valid_id():  # the hand-split serialization must match NIP-01's
                raise AssertionError("PoW serialization diverged from the event id serialization")
            return mined
        counter += 1
