"""The intake's pure checks (PROTOCOL.md §4.1): what one inbound event says, before the database.

Proof of work, unwrap (kind, outer signature unless the relay pool has verified it, expiration,
decryption, v1 seal and rumor), the content tuple's parse and its signatures: a function of the
event, the node's secret key, the transport, the PoW floor and the clock, nothing else. The
Nostr adapter runs all of it ahead of time in its check worker process (`IntakePrecheck`), so
this crypto runs beside the actors instead of on their thread; without a worker result the
intake runs it inline, in two halves around the replay guard (`open_event`, `check_content`).

The result keeps the two places a check can fail apart, because the replay guard sits between
them: `dropped` (before the guard: the event is not recorded as seen) and `refused` (after the
guard and the freshness check: a replayed event still counts as `replayed-event`).

It must not touch the database, send anything or decide what a message means: that stays in
`actors.intake`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from adapters.nostr import nip44, transport
from adapters.nostr.pow import pow_bits
from adapters.nostr.protocol.codec import ParseError
from adapters.nostr.protocol.content import Content, SignatureError, parse_content, verify_content
from adapters.nostr.protocol.enums import Transport


@dataclass(frozen=True)
class Precheck:
    """The pure checks' verdict on one event; small and picklable when `content` is None.

    `dropped`: why the event goes before the replay guard (malformed, PoW, transport).
    `checked`: the content checks have run (`check_content`); then `refused` says why the
    event goes after the guard and the freshness check (parse, signature,
    unsigned-with-identity), or `identity` who sent it. `content` is the parsed tuple when
    it was checked in this process; across processes it is left out (cheaper to parse
    `plaintext` again than to pickle a `Message`).
    """

    event_id: str
    dropped: str | None = None
    sender: str = ""
    seal_pubkey: str | None = None
    created_at: int = 0
    plaintext: str = ""
    checked: bool = False
    refused: str | None = None
    identity: str = ""
    content: Content | None = field(default=None, compare=False, repr=False)
    # the node's NIP-44 key with `sender`, computed to open the event: the reply to the sender
    # is encrypted with it (`unsigned.ConversationKeys`); a secret, so never shown
    conversation_key: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def authentic(self) -> bool:
        """The event opened: its outer id and signature checked out, so another copy with this
        id is a duplicate (the Nostr adapter tells its relay pool so)."""
        return self.dropped is None

    def portable(self) -> Precheck:
        """This verdict without the parsed content, to send to another process."""
        return self if self.content is None else dataclasses.replace(self, content=None)


def open_event(
    event: dict[str, Any],
    node_secret_hex: str,
    mode: Transport,
    min_pow: int,
    now: int,
    *,
    verified: bool = False,
) -> Precheck:
    """The checks before the replay guard: shape, PoW, unwrap. `verified` only for events whose
    outer id and signature the relay pool has checked (see `transport.unwrap_inbound`)."""
    event_id = event.get("id") if isinstance(event, dict) else None
    if not isinstance(event_id, str) or len(event_id) != 64:
        return Precheck("", dropped="malformed-event")
    if pow_bits(event_id) < min_pow:
        return Precheck(event_id, dropped="insufficient-pow")
    opened = transport.unwrap_inbound(event, node_secret_hex, mode.value, now, verified=verified)
    if isinstance(opened, transport.TransportError):
        return Precheck(event_id, dropped=f"transport:{opened.reason.value}")
    return Precheck(event_id, sender=opened.sender, seal_pubkey=opened.seal_pubkey,
                    created_at=opened.created_at, plaintext=opened.plaintext,
                    conversation_key=_computed_key(node_secret_hex, mode, opened))


def _computed_key(node_secret_hex: str, mode: Transport, opened: transport.Inbound) -> bytes | None:
    """The node's conversation key with the sender if opening the event computed it (nip44: with
    the event's author; gift-wrap: with the seal's, when the sender sealed it): a cache hit, no
    new ECDH."""
    if mode is not Transport.NIP44 and opened.seal_pubkey != opened.sender:
        return None
    key = nip44.cached_conversation_key(node_secret_hex, opened.sender)
    return key if isinstance(key, bytes) else None


def check_content(opened: Precheck, mode: Transport) -> Precheck:
    """The checks after the replay guard and the freshness check, on an opened event: the
    content tuple's parse and signatures."""
    if opened.dropped or opened.checked:
        return opened
    content = parse_content(opened.plaintext, mode)
    if isinstance(content, ParseError):
        return dataclasses.replace(opened, checked=True, refused=f"parse:{content}")
    identity = verify_content(content, opened.sender, opened.seal_pubkey)
    if isinstance(identity, SignatureError):
        return dataclasses.replace(opened, checked=True, refused=f"signature:{identity.reason}")
    if identity != opened.sender and content.trade_sig is None:
        return dataclasses.replace(opened, checked=True, refused="unsigned-with-identity")
    return dataclasses.replace(opened, checked=True, identity=identity, content=content)


class IntakePrecheck:
    """A picklable factory for the Nostr adapter's check worker (`StartNostr.precheck_factory`):
    built from the node's settings, it returns the check the worker runs on every event the
    relay pool delivered. With a check worker the pool does not verify events, so the check
    verifies the outer id and signature too."""

    def __init__(self, node_secret_hex: str, mode: Transport | str, min_pow: int) -> None:
        self.node_secret_hex = node_secret_hex
        self.mode = Transport(mode)
        self.min_pow = min_pow

    @classmethod
    def from_settings(cls, settings: Any) -> IntakePrecheck:
        return cls(settings.nostr.secret_key_hex(), settings.mostro.transport, settings.mostro.pow)

    def __call__(self) -> Any:
        return self.check

    def check(self, event: dict[str, Any], now: int) -> Precheck:
        """Every pure check, in the intake's order."""
        opened = open_event(event, self.node_secret_hex, self.mode, self.min_pow, now)
        return check_content(opened, self.mode).portable()
