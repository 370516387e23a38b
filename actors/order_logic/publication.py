"""Which NIP-69 status (kind 38383 ``s`` tag) an internal order status is published as.

The mapping itself lives once, next to the event builder that writes the tag
(``adapters.nostr.events.public_status``, PROTOCOL.md §3.1); the order logic
uses it to decide *whether* a transition publishes: handlers emit
``PublishOrder`` only when it returns a status, so a move into ``active`` /
``fiat-sent`` / ``dispute`` / ``settled-hold-invoice`` leaves the previous event on
the relays, exactly like the Rust daemon.
"""

from __future__ import annotations

from adapters.nostr.events import public_status

__all__ = ["public_status"]
