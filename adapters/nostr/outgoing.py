"""Turn the order logic's publishing effects into signed Nostr events, ready for relays.

One place knows how the node speaks: replies become content tuples wrapped in
the configured transport (version stamped per transport), order and dispute
effects become their addressable events. Pure of actors: callers publish.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from adapters.nostr import events as published
from adapters.nostr import keys, transport
from adapters.nostr.nostr_event import NostrEvent
from adapters.nostr.protocol.content import build_content, stamp_version
from adapters.nostr.protocol.enums import Transport
from adapters.nostr.protocol.payloads import Message


class Publisher:
    """Signs everything the node publishes with the node key from the settings."""

    def __init__(
        self,
        settings: Any,
        networks: tuple[str, ...] = ("regtest",),
        maker_rating: Callable[[str], published.MakerRating | None] = lambda identity: None,
    ) -> None:
        self._settings = settings
        self._maker_rating = maker_rating
        self._secret = settings.nostr.secret_key_hex()
        self._node = keys.keypair(self._secret)
        self.node_pubkey = self._node.public_hex
        self.transport = Transport(settings.mostro.transport)
        self._networks = networks
        self._last_created_at: dict[str, int] = {}

    def message_event(self, recipient: str, message: Message, now: int | None = None) -> dict[str, Any]:
        """A daemon reply to a client's trade key in the node's transport."""
        stamped = stamp_version(message, self.transport)
        plaintext = build_content(stamped, self.transport)
        return transport.wrap_outbound(
            plaintext,
            recipient,
            self._secret,
            self.transport.value,
            int(time.time()) if now is None else now,
            self._settings.expiration.dm_days,
        )

    def _sign(self, template: NostrEvent) -> dict[str, Any]:
        return template.sign(self._node).to_dict()

    def event_for(self, effect: Any, now: int) -> dict[str, Any] | None:
        """The signed event an effect publishes, or None when it publishes nothing."""
        from actors.order_logic import model

        if isinstance(effect, model.SendMessage):
            return self.message_event(effect.recipient, effect.message, now)
        if isinstance(effect, model.PublishOrder):
            order = effect.order
            maker = order.master_seller_pubkey if order.kind == "sell" else order.master_buyer_pubkey
            template = published.order_event_for_record(
                order, effect.public_status, self.node_pubkey, self._settings,
                self._networks, now, self._last_created_at.get(order.id, 0),
                maker_rating=self._maker_rating(maker) if maker else None,
            )
            if template is None:
                return None
            self._last_created_at[effect.order.id] = template.created_at
            return self._sign(template)
        if isinstance(effect, model.PublishDispute):
            template = published.dispute_event_for_record(
                effect.dispute, effect.initiator, self._settings, now,
                self._last_created_at.get(effect.dispute.id, 0),
            )
            self._last_created_at[effect.dispute.id] = template.created_at
            return self._sign(template)
        raise TypeError(f"not a nostr effect: {type(effect).__name__}")
