"""Drive a real order through the real order actor's processor (decide + commit) from a
step list in data/, so the journal under test is one the daemon itself would write."""

from __future__ import annotations

import hashlib
from typing import Any

import bolt11
from bolt11 import Bolt11, MilliSatoshi
from bolt11.models.tags import TagChar, Tags

from actors.messages import RuntimeConfig
from actors.order_actor import OrderProcessor
from actors.order_logic.deadlines import deadlines_of
from actors.order_logic.model import (
    ClientRequest,
    DeadlineReached,
    HoldInvoiceCreated,
    InvoiceAccepted,
    OrderEvent,
    OrderState,
    PaymentSucceeded,
)
from adapters.nostr.protocol.enums import Action, Kind
from adapters.nostr.protocol.payloads import (
    Amount,
    Message,
    NextTrade,
    OrderPayload,
    PaymentRequest,
    RatingUser,
    SmallOrder,
)

INVOICE_SIGNING_KEY = "01" * 32
# the id the directory gives a new-order request before the logic names the order
REQUEST_ORDER_ID = "99999999-9999-4999-8999-999999999999"


def buyer_invoice(amount_sat: int | None, now: int) -> str:
    """A signed regtest BOLT11 for the payout (the logic validates it)."""
    tags = Tags()
    tags.add(TagChar.payment_hash, hashlib.sha256(b"operating payout").hexdigest())
    tags.add(TagChar.payment_secret, "11" * 32)
    tags.add(TagChar.description, "operating test payout")
    tags.add(TagChar.expire_time, 7200)
    tags.add(TagChar.min_final_cltv_expiry, 40)
    return bolt11.encode(
        Bolt11(currency="bcrt", date=now, tags=tags,
               amount_msat=MilliSatoshi(amount_sat * 1000) if amount_sat else None),
        private_key=INVOICE_SIGNING_KEY,
    )


def _request(step: dict[str, Any], script: dict[str, Any], order_id: str | None, now: int) -> ClientRequest:
    party = script["parties"][step["from"]]
    action = Action(step["request"])
    payload: Any = None
    if action == Action.NEW_ORDER:
        order = dict(script["order"])
        payload = OrderPayload(SmallOrder(**{**order, "kind": Kind(order["kind"])}))
    elif action == Action.ADD_INVOICE:
        payload = PaymentRequest(None, buyer_invoice(step.get("invoice_sats"), now))
    elif "fiat_amount" in step:  # a take of a range order
        payload = Amount(step["fiat_amount"])
    elif "next_trade" in step:  # a range maker's release: where the child order goes
        payload = NextTrade(step["next_trade"]["pubkey"], step["next_trade"]["index"])
    elif action == Action.RATE_USER:
        payload = RatingUser(step["rating"])
    message = Message(action=action, request_id=int(step["at"]) + 1,
                      trade_index=step.get("trade_index"), id=order_id, payload=payload)
    return ClientRequest(message=message, sender=party["trade"], identity=party["identity"])


def _event(step: dict[str, Any], script: dict[str, Any], state: OrderState | None,
           settings: Any, now: int) -> OrderEvent:
    if "request" in step:
        return _request(step, script, state.order.id if state else None, now)
    assert state is not None
    if "deadline" in step:
        wanted = next(d for d in deadlines_of(state, settings) if d.kind.value == step["deadline"])
        return DeadlineReached(wanted)
    order = state.order
    if step["lnd"] == "hold-invoice-created":
        return HoldInvoiceCreated(order.hash, "lnbcrt-hold-invoice")
    if step["lnd"] == "invoice-accepted":
        return InvoiceAccepted(order.hash, order.amount + order.fee)
    if step["lnd"] == "payment-succeeded":
        return PaymentSucceeded(order.payout_payment_hash, fee_sat=3)
    raise ValueError(f"unknown step {step}")


def run_script(script: dict[str, Any], settings: Any) -> list[str]:
    """Run every step against the bound database; return the ids of the orders, the first
    first, then each range child in the order it was created (steps with `"order": "child"`
    go to the latest child)."""
    config = RuntimeConfig(settings, settings.database.url)
    processors: list[OrderProcessor] = []
    for step in script["steps"]:
        now = script["start"] + step["at"]
        processor = processors[-1] if step.get("order") == "child" else \
            (processors[0] if processors else None)
        state = processor.state if processor else None
        event = _event(step, script, state, settings, now)
        if processor is None:
            first = OrderProcessor(REQUEST_ORDER_ID, config)
            first.handle(event, now)
            assert first.state is not None, f"new-order refused: {step}"
            processor = OrderProcessor(first.state.order.id, config)
            processors.append(processor)
        else:
            _, changed = processor.handle(event, now)
            for created in changed[1:]:
                processors.append(OrderProcessor(created.order.id, config))
        state = processor.state
        assert state is not None and state.order.status.value == step["expect"], (step, state)
    return [p.order_id for p in processors]
