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
from adapters.nostr import keys, unsigned
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
        return unsigned.sign(self.unsigned_reply(recipient, message, now), self._secret)

    def unsigned_reply(self, recipient: str, message: Message,
                       now: int | None = None) -> unsigned.UnsignedReply:
        stamped = stamp_version(message, self.transport)
        return unsigned.UnsignedReply(
            recipient, build_content(stamped, self.transport),
            int(time.time()) if now is None else now, self._settings.expiration.dm_days,
            self.transport.value)

    def published_before(self, subject_id: str, created_at: int) -> None:
        """An event of this order/dispute was published at `created_at` (by an earlier run):
        the next one must be stamped later, or relays may keep the older one."""
        if created_at > self._last_created_at.get(subject_id, 0):
            self._last_created_at[subject_id] = created_at

    def sign(self, template: Any) -> dict[str, Any]:
        return template.sign(self._node).to_dict()

    def event_for(self, effect: Any, now: int) -> dict[str, Any] | None:
        """The signed event an effect publishes, or None when it publishes nothing."""
        item = self.unsigned_for(effect, now)
        return None if item is None else unsigned.sign(item, self._secret)

    def unsigned_for(self, effect: Any, now: int) -> unsigned.Unsigned | None:
        """What an effect publishes, still to be signed (`unsigned.sign`), or None for
        nothing. Stamps it: the next event of the same order or dispute comes later."""
        from actors.order_logic import model

        if isinstance(effect, model.SendMessage):
            return self.unsigned_reply(effect.recipient, effect.message, now)
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
            return template
        if isinstance(effect, model.PublishDispute):
            template = published.dispute_event_for_record(
                effect.dispute, effect.initiator, self._settings, now,
                self._last_created_at.get(effect.dispute.id, 0),
            )
            self._last_created_at[effect.dispute.id] = template.created_at
            return template
        raise TypeError(f"not a nostr effect: {type(effect).__name__}")


MOSTRO_PY_VERSION = "0.1.0"


def node_info_fields(settings: Any, lightning: Any | None) -> published.InfoEventFields:
    """What the kind-38385 event advertises: our settings and what LND told us (``NodeInfo``)."""
    mostro, lnd, bond = settings.mostro, settings.lightning, settings.anti_abuse_bond
    network = getattr(lightning, "network", "") or lnd.network or "unknown"
    return published.InfoEventFields(
        mostro_version=MOSTRO_PY_VERSION,
        commit_hash="",
        max_order_amount=mostro.max_order_amount,
        min_payment_amount=mostro.min_payment_amount,
        expiration_hours=mostro.expiration_hours,
        expiration_seconds=mostro.expiration_seconds,
        fiat_currencies_accepted=tuple(mostro.fiat_currencies_accepted),
        max_orders_per_response=mostro.max_orders_per_response,
        fee=mostro.fee,
        pow=mostro.pow,
        transport=Transport(mostro.transport),
        hold_invoice_expiration_window=lnd.hold_invoice_expiration_window,
        hold_invoice_cltv_delta=lnd.hold_invoice_cltv_delta,
        lnd=published.LndInfo(
            version=getattr(lightning, "version", ""),
            node_pubkey=getattr(lightning, "identity_pubkey", ""),
            commit_hash="",
            node_alias=getattr(lightning, "alias", ""),
            chains=("bitcoin",),
            networks=(network,),
            uris=(),
        ),
        instance_name=mostro.name,
        pow_first_contact=mostro.pow_first_contact,
        bond=published.BondPolicy(
            enabled=bond.enabled,
            amount_pct=bond.amount_pct,
            base_amount_sats=bond.base_amount_sats,
            apply_to=bond.apply_to,
            slash_on_waiting_timeout=bond.slash_on_waiting_timeout,
            slash_node_share_pct=bond.slash_node_share_pct,
            payout_claim_window_days=bond.payout_claim_window_days,
        ),
    )


def announcements(publisher: Publisher, settings: Any, lightning: Any | None,
                  now: int) -> list[dict[str, Any]]:
    """The node's own events: the info event (kind 38385) and, if configured, kind-0 metadata."""
    events = [publisher.sign(published.info_event(node_info_fields(settings, lightning),
                                                  publisher.node_pubkey, now))]
    mostro = settings.mostro
    metadata = published.metadata_event(mostro.name, mostro.about, mostro.picture,
                                        mostro.website, now)
    if metadata is not None:
        events.append(publisher.sign(metadata))
    return events
