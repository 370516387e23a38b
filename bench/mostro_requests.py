"""Client requests for the daemon benchmarks, built as a conforming client builds them.

Each request is a real Mostro message from a fresh trade key with its own identity key (trade index
1, so the intake's trade-index rules pass), signed and wrapped for the node in the configured
transport, as `MostroClient.send` would publish it. A benchmark builds them before it starts its
clock. Requests may be stamped ahead of time (`created_at`) so that ones still queued behind a slow
daemon are not dropped by the intake's 10-second freshness rule while being measured.

It must not talk to relays or the daemon: it only makes events, and reads the replies the daemon
committed (`replies_since`) to check every request was answered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from adapters.nostr import keys
from adapters.nostr import transport as nostr_transport
from adapters.nostr.protocol import (
    Action,
    Kind,
    Message,
    OrderPayload,
    SmallOrder,
    Status,
    Transport,
    build_content,
)

ORDER_SATS = 50_000
ORDER_FIAT = 100
# What the requester itself is told first (bonds off; a fixed-amount sell order, taken without an
# invoice: the buyer is asked for one, the seller told to wait).
FIRST_REPLY = {
    Action.NEW_ORDER: Action.NEW_ORDER,
    Action.TAKE_SELL: Action.ADD_INVOICE,
    Action.CANCEL: Action.CANCELED,
}
# SendMessage effects each request causes in all (to the requester and its counterparty).
REPLY_MESSAGES = {Action.NEW_ORDER: 1, Action.TAKE_SELL: 2, Action.CANCEL: 1}


@dataclass(frozen=True)
class Party:
    """A person's keys for one trade: a fresh trade key and their identity key."""

    trade: keys.KeyPair
    identity: keys.KeyPair

    @classmethod
    def fresh(cls) -> Party:
        return cls(keys.generate_keypair(), keys.generate_keypair())


@dataclass(frozen=True)
class Request:
    """One wrapped request and who sent it."""

    action: Action
    event: dict[str, Any]
    party: Party
    order_id: str | None = None

    def relay_message(self, sub_id: str) -> str:
        """The request as a relay delivers it on subscription `sub_id`."""
        return json.dumps(["EVENT", sub_id, self.event], separators=(",", ":"))


def sell_order(amount: int = ORDER_SATS, fiat_amount: int = ORDER_FIAT) -> OrderPayload:
    return OrderPayload(SmallOrder(amount=amount, fiat_code="USD", fiat_amount=fiat_amount,
                                   payment_method="SEPA", premium=0, kind=Kind.SELL,
                                   status=Status.PENDING))


def wrap(message: Message, party: Party, node_pubkey: str, transport: Transport,
         created_at: int) -> dict[str, Any]:
    version = 2 if transport is Transport.NIP44 else 1
    message = Message(action=message.action, wrapper=message.wrapper, version=version,
                      request_id=message.request_id, trade_index=message.trade_index,
                      id=message.id, payload=message.payload)
    plaintext = build_content(message, transport, party.trade.secret_hex, party.identity.secret_hex)
    return nostr_transport.wrap_client_message(
        plaintext, party.trade.secret_hex, party.identity.secret_hex, node_pubkey,
        transport.value, created_at)


def new_order(node_pubkey: str, transport: Transport, created_at: int, request_id: int,
              party: Party | None = None) -> Request:
    party = party or Party.fresh()
    message = Message(action=Action.NEW_ORDER, request_id=request_id, trade_index=1,
                      payload=sell_order())
    return Request(Action.NEW_ORDER, wrap(message, party, node_pubkey, transport, created_at),
                   party)


def take_sell(order_id: str, node_pubkey: str, transport: Transport, created_at: int,
              request_id: int, party: Party | None = None) -> Request:
    party = party or Party.fresh()
    message = Message(action=Action.TAKE_SELL, request_id=request_id, trade_index=1, id=order_id)
    return Request(Action.TAKE_SELL, wrap(message, party, node_pubkey, transport, created_at),
                   party, order_id)


def cancel(order_id: str, maker: Party, node_pubkey: str, transport: Transport, created_at: int,
           request_id: int) -> Request:
    message = Message(action=Action.CANCEL, request_id=request_id, id=order_id)
    return Request(Action.CANCEL, wrap(message, maker, node_pubkey, transport, created_at),
                   maker, order_id)


# --- reading the daemon's answers back ----------------------------------------------------------


def outbox_high_water() -> int:
    """The newest outbox row id now (replies committed later have larger ids)."""
    from storage import models

    newest = models.OutboxEffect.select(models.OutboxEffect.id).order_by(
        models.OutboxEffect.id.desc()).limit(1).first()
    return int(newest.id) if newest is not None else 0


def unpublished_replies(since_id: int) -> int:
    """SendMessage effects after row `since_id` not yet accepted by a relay: a walk of the
    undone rows only (the index on `done_at`), cheap enough to poll every few ms."""
    from storage import fixed_sql

    row = fixed_sql.fetch_one('SELECT COUNT(*) FROM "outbox" INDEXED BY "outbox_done_at" '
                              'WHERE "done_at" IS NULL AND "id" > ? AND "effect" = ?',
                              (since_id, "SendMessage"))
    return int(row[0]) if row else 0


def count_replies(since_id: int) -> tuple[int, int]:
    """(committed, accepted by a relay) SendMessage effects after row `since_id`, in one query."""
    from peewee import fn

    from storage import models

    row = models.OutboxEffect.select(
        fn.COUNT(models.OutboxEffect.id), fn.COUNT(models.OutboxEffect.done_at)
    ).where(
        (models.OutboxEffect.id > since_id) & (models.OutboxEffect.effect == "SendMessage")
    ).tuples().first()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def replies_since(since_id: int) -> dict[str, list[Message]]:
    """Trade pubkey -> the messages committed for it after row `since_id`, in commit order."""
    from actors import records_json
    from storage import models

    rows = models.OutboxEffect.select().where(
        (models.OutboxEffect.id > since_id) & (models.OutboxEffect.effect == "SendMessage")
    ).order_by(models.OutboxEffect.id)
    found: dict[str, list[Message]] = {}
    for row in rows:
        effect = records_json.loads(row.payload)
        found.setdefault(effect.recipient, []).append(effect.message)
    return found


def unanswered(requests: list[Request], replies: dict[str, list[Message]]) -> list[Request]:
    """Requests whose sender did not get the expected first reply (see FIRST_REPLY)."""
    missing = []
    for request in requests:
        wanted = FIRST_REPLY[request.action]
        got = replies.get(request.party.trade.public_hex, [])
        if not any(message.action is wanted for message in got):
            missing.append(request)
    return missing


def orders_by_maker() -> dict[str, str]:
    """Maker trade pubkey -> order id, for every order in the database."""
    from storage import models

    return {row.creator_pubkey: row.id
            for row in models.Order.select(models.Order.id, models.Order.creator_pubkey)}
