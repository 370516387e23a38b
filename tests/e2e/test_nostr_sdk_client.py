"""An independent Mostro client: rust-nostr's Python bindings (nostr-sdk 0.45) against the daemon.

The client uses none of our Nostr code: it builds the v1 content tuple by hand, gift-wraps it
with nostr-sdk (full privacy: the trade key seals its own rumor), publishes it through the real
relay, and opens the daemon's gift-wrapped `new-order` reply with nostr-sdk's unwrapper.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import nostr_sdk as sdk

from tests.e2e.conftest import Stack

REPLY_TIMEOUT_SECONDS = 30.0
# PROTOCOL.md §1.2 canonical key order; v1 (gift wrap) tuple: [message, trade_sig|null]
NEW_ORDER_TUPLE = (
    '[{"order":{"version":1,"request_id":11,"trade_index":null,"action":"new-order",'
    '"payload":{"order":{"kind":"sell","status":"pending","amount":20000,"fiat_code":"USD",'
    '"min_amount":null,"max_amount":null,"fiat_amount":10,"payment_method":"SEPA","premium":0,'
    '"created_at":null,"expires_at":null}}}},null]'
)


async def _new_order_round_trip(stack: Stack) -> tuple[str, list[Any]]:
    """Send the new-order and return (reply sender, reply content tuple)."""
    trade = sdk.Keys.generate()
    node = sdk.PublicKey.parse(stack.node_pubkey)
    client = sdk.Client()
    try:
        await client.add_relay(sdk.RelayUrl.parse(stack.relay.url))
        await client.connect()
        rumor = sdk.EventBuilder(sdk.Kind(1), NEW_ORDER_TUPLE).finalize_unsigned(trade.public_key())
        wrap = await sdk.nip59_make_gift_wrap_async(trade, node, rumor)
        sent = await client.send_event(wrap)
        assert sent.success, f"relay refused the gift wrap: {sent.failed}"
        replies = sdk.ReqTarget.auto([
            sdk.Filter().kind(sdk.Kind(1059)).pubkey(trade.public_key())])
        deadline = time.monotonic() + REPLY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            stack.pump()  # simpleSystemBase runs the actors only while the test thread calls in
            for event in await client.fetch_events(replies, timedelta(milliseconds=200)):
                opened = await sdk.UnwrappedGift.from_gift_wrap_async(trade, event)
                return opened.sender().to_hex(), json.loads(opened.rumor().content())
        raise AssertionError(f"no reply within {REPLY_TIMEOUT_SECONDS} s")
    finally:
        await client.shutdown()


def test_nostr_sdk_client_creates_an_order(stack_factory: Callable[..., Stack]) -> None:
    stack = stack_factory(mostro={"transport": "gift-wrap"})
    sender, reply = asyncio.run(_new_order_round_trip(stack))
    assert sender == stack.node_pubkey
    assert len(reply) == 2 and reply[1] is None  # the daemon signs nothing inside the tuple
    message = reply[0]["order"]
    assert message["action"] == "new-order"
    assert message["version"] == 1 and message["request_id"] == 11
    order = message["payload"]["order"]
    assert isinstance(order["id"], str) and len(order["id"]) == 36
    assert message["id"] == order["id"]
    assert (order["kind"], order["status"], order["amount"], order["fiat_code"],
            order["fiat_amount"], order["payment_method"]) == (
        "sell", "pending", 20000, "USD", 10, "SEPA")
