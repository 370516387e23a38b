"""Every refusal (and every silent ignore) of a client request, as data (trap 12: reasons differ per handler).

A refused request changes nothing: the Decision holds the same state and
exactly one ``cant-do`` to the sender with the handler's reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.order_logic.decide import decide
from actors.order_logic.model import Decision, OrderState, PriceSnapshot
from actors.order_logic.replies import cant_do
from adapters.nostr.protocol.enums import Action, CantDoReason, Kind, Status
from adapters.nostr.protocol.payloads import Amount, OrderPayload, PaymentRequest, RatingUser

from . import kit

DATA = Path(__file__).resolve().parent / "data"
SYMBOLS = {"BUYER": kit.BUYER, "SELLER": kit.SELLER, "STRANGER": kit.STRANGER}
STALE = PriceSnapshot({"USD": 50_000.0}, taken_at=kit.NOW - 1801)


def cases(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text())["cases"]


def build_order(spec: dict):
    base = kit.pending_order if spec["base"] == "pending" else kit.taken_order
    fields = {
        k: SYMBOLS.get(v, v) if isinstance(v, str) else v for k, v in spec.get("fields", {}).items()
    }
    if "status" in fields:
        fields["status"] = Status(fields["status"])
    return base(Kind(spec["kind"]), **fields)


def build_payload(spec: dict | None):
    if spec is None:
        return None
    if spec["type"] == "amount":
        return Amount(spec["value"])
    if spec["type"] == "rating":
        return RatingUser(spec["value"])
    if spec["type"] == "raw_invoice":
        return PaymentRequest(None, spec["value"], None)
    options = {k: spec[k] for k in ("timestamp", "expiry", "currency") if k in spec}
    return PaymentRequest(None, kit.invoice(spec["amount_sat"], **options), None)


@pytest.mark.parametrize("case", cases("refusals.json"), ids=lambda c: c["name"])
def test_order_action_refusals(case: dict) -> None:
    state = OrderState(build_order(case["order"]))
    request = kit.request(
        Action(case["action"]),
        SYMBOLS[case["sender"]],
        payload=build_payload(case.get("payload")),
        trade_index=case.get("trade_index", 9),
        pending_take_exists=case.get("pending_take_exists", False),
    )
    ctx = kit.ctx(prices=STALE if case.get("prices") == "stale" else kit.PRICES)
    decision = decide(state, request, ctx)
    expected = () if case["reason"] is None else (cant_do(request, CantDoReason(case["reason"])),)
    assert decision == Decision(state, expected)


@pytest.mark.parametrize("case", cases("new_order_refusals.json"), ids=lambda c: c["name"])
def test_new_order_refusals(case: dict) -> None:
    kind = None if case["kind"] is None else Kind(case["kind"])
    fields = dict(case["order"])
    if "invoice_sat" in case:
        fields["buyer_invoice"] = kit.invoice(case["invoice_sat"])
    request = kit.request(
        Action.NEW_ORDER,
        kit.BUYER if kind == Kind.BUY else kit.SELLER,
        order_id=None,
        payload=OrderPayload(kit.small_order(kind, **fields)),
        trade_index=case.get("trade_index", 1),
    )
    ctx = kit.ctx(prices=STALE if case.get("prices") == "stale" else kit.PRICES)
    decision = decide(None, request, ctx)
    assert decision == Decision(None, (cant_do(request, CantDoReason(case["reason"])),))


def test_client_action_without_an_order_is_not_found() -> None:
    request = kit.request(Action.FIAT_SENT, kit.BUYER)
    assert decide(None, request, kit.ctx()) == Decision(
        None, (cant_do(request, CantDoReason.NOT_FOUND),)
    )


def test_new_order_without_order_payload_is_invalid_payload() -> None:
    request = kit.request(Action.NEW_ORDER, kit.SELLER, order_id=None, trade_index=1)
    assert decide(None, request, kit.ctx()) == Decision(
        None, (cant_do(request, CantDoReason.INVALID_PAYLOAD),)
    )
