"""Opening a dispute, and what a dispute still allows (ORDER_FLOW.md §4.11, trap 13/14)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from actors.order_logic.decide import decide
from actors.order_logic.model import (
    Decision,
    DisputeRecord,
    OrderState,
    PublishDispute,
    SettleHoldInvoice,
    derive_bytes,
)
from actors.order_logic.replies import notify
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import DisputePayload

from . import kit
from .kit import BUYER, NOW, ORDER_ID, SELLER

ENTROPY = b"\x0d" * 32
DISPUTE_ID = str(uuid.UUID(bytes=derive_bytes(ENTROPY, f"dispute:{ORDER_ID}")[:16], version=4))


def test_seller_opens_a_dispute_from_active():
    order = kit.taken_order(Kind.SELL, status=Status.ACTIVE, hash="ab" * 32, preimage="cd" * 32)
    d = decide(
        OrderState(order),
        kit.request(Action.DISPUTE, SELLER, request_id=3),
        kit.ctx(entropy=ENTROPY),
    )
    dispute = DisputeRecord(DISPUTE_ID, ORDER_ID, "initiated", "active", NOW)
    disputed = replace(order, status=Status.DISPUTE, seller_dispute=True)
    # no order event is published (trap 14)
    assert d == Decision(
        OrderState(disputed, dispute=dispute),
        (
            notify(BUYER, Action.DISPUTE_INITIATED_BY_PEER, ORDER_ID, DisputePayload(DISPUTE_ID)),
            notify(
                SELLER,
                Action.DISPUTE_INITIATED_BY_YOU,
                ORDER_ID,
                DisputePayload(DISPUTE_ID),
                request_id=3,
            ),
            PublishDispute(dispute, "seller"),
        ),
    )


def test_release_during_a_dispute_settles_it():
    order = kit.taken_order(
        Kind.SELL,
        status=Status.DISPUTE,
        buyer_dispute=True,
        hash="ab" * 32,
        preimage="cd" * 32,
        buyer_invoice=kit.invoice(199_400),
    )
    dispute = DisputeRecord(DISPUTE_ID, ORDER_ID, "initiated", "fiat-sent", NOW - 10)
    d = decide(OrderState(order, dispute=dispute), kit.request(Action.RELEASE, SELLER), kit.ctx())
    settled = replace(dispute, status="settled")
    assert d.state.dispute == settled
    assert d.state.order.status == Status.SETTLED_HOLD_INVOICE
    assert d.effects[:2] == (
        SettleHoldInvoice("ab" * 32, "cd" * 32),
        PublishDispute(settled, "buyer"),
    )


def test_fiat_sent_is_frozen_in_dispute():
    order = kit.taken_order(Kind.SELL, status=Status.DISPUTE, buyer_dispute=True)
    request = kit.request(Action.FIAT_SENT, BUYER)
    d = decide(OrderState(order), request, kit.ctx())
    assert d.state.order == order
    assert d.effects[0].message.payload.reason == "invalid_order_status"
