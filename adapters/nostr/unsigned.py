"""What the node publishes, described before it is signed, so the signing can happen elsewhere.

The outbox decides what to publish and when (content, tags, `created_at`); the signature and,
for a reply, the encryption to its recipient are pure functions of that description and the
node key. Handing the Nostr adapter the description lets it sign in its sign worker, beside the
actors, instead of on the actors' thread. A description is a few strings: cheap to pickle.

It must not decide anything about content: `outgoing.Publisher` builds the descriptions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


Unsigned = UnsignedReply | EventTemplate


def sign(item: Unsigned, node_secret_hex: str) -> dict[str, Any]:
    """The signed event, ready for relays."""
    if isinstance(item, UnsignedReply):
        return transport.wrap_outbound(item.plaintext, item.recipient, node_secret_hex,
                                       item.mode, item.created_at, item.dm_days)
    return item.sign(keys.keypair(node_secret_hex)).to_dict()


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
