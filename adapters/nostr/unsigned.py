"""What the node publishes, described before it is signed, so the signing can happen elsewhere.

The outbox decides what to publish and when (content, tags, `created_at`); the signature and,
for a reply, the encryption to its recipient are pure functions of that description and the
node key. Handing the Nostr adapter the description lets it sign in its sign worker, beside the
actors, instead of on the actors' thread. A description is a few strings: cheap to pickle.

It must not decide anything about content: `outgoing.Publisher` builds the descriptions.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from adapters.nostr import keys, transport
from adapters.nostr.events import EventTemplate
from adapters.nostr.relay_pool import Rendered, rendered


@dataclass(frozen=True)
class UnsignedReply:
    """A reply's content tuple (JSON text) for one client key, in the node's transport."""

    recipient: str
    plaintext: str
    created_at: int
    dm_days: int
    mode: str  # transport mode: the kind-14 or the gift-wrap path of `transport.wrap_outbound`
    # the NIP-44 key between the node and `recipient`, when the intake's check already computed
    # it (`ConversationKeys`): a secret, so never shown, and never part of equality
    conversation_key: bytes | None = field(default=None, compare=False, repr=False)


Unsigned = UnsignedReply | EventTemplate


def sign(item: Unsigned, node_secret_hex: str) -> dict[str, Any]:
    """The signed event, ready for relays."""
    if isinstance(item, UnsignedReply):
        return transport.wrap_outbound(item.plaintext, item.recipient, node_secret_hex,
                                       item.mode, item.created_at, item.dm_days,
                                       conversation_key=item.conversation_key)
    return item.sign(keys.keypair(node_secret_hex)).to_dict()


class ConversationKeys:
    """The node's NIP-44 conversation keys with the clients whose requests were just checked.

    The check worker computes the key with a request's sender to decrypt it (an ECDH); the reply
    goes to that same key, and the sign worker is another process, so without this it computed
    the same ECDH again (the dearest step of a reply). The Nostr adapter keeps the keys the
    check worker hands back, in memory only and at most `capacity` of them (oldest dropped),
    and attaches them to the replies it hands the sign worker. Only ever filled from checks made
    with the node's own secret key, so a key here is the node's key with that client."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._keys: OrderedDict[str, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def remember(self, pairs: Iterable[tuple[str, bytes | None]]) -> None:
        """(client public key, conversation key) pairs; None keys are skipped."""
        for pubkey, key in pairs:
            if key is None:
                continue
            self._keys[pubkey] = key
            self._keys.move_to_end(pubkey)
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)

    def attach(self, items: Sequence[tuple[Unsigned, Any]]) -> list[tuple[Unsigned, Any]]:
        """The items, each reply to a known client carrying its conversation key."""
        known = self._keys
        return [(replace(item, conversation_key=known[item.recipient]), token)
                if type(item) is UnsignedReply and item.conversation_key is None
                and item.recipient in known else (item, token)
                for item, token in items]


class SignerFactory:
    """Builds `sign` for one node key inside the sign worker (picklable: the key's hex only;
    it crosses a local socket pair to a child process of the daemon, like every setting)."""

    def __init__(self, node_secret_hex: str) -> None:
        self.node_secret_hex = node_secret_hex

    def __call__(self) -> Callable[[Unsigned, int], Rendered]:
        secret = self.node_secret_hex

        def sign_one(item: Unsigned, _now: int) -> Rendered:
            # written as the relay message here: the JSON and the event's fields then stay out
            # of the daemon's process, which only passes the text on
            return rendered(sign(item, secret))

        return sign_one
