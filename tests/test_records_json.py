"""Journal/outbox JSON gives back exactly the values that were stored."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from actors import records_json
from actors.order_logic.model import (
    BondRecord,
    BondRole,
    BondState,
    ClientRequest,
    Deadline,
    DeadlineKind,
    DeadlineReached,
    OrderRecord,
    OrderState,
    SendMessage,
)
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import Message, PaymentRequest, SmallOrder


def test_state_event_and_effect_round_trip() -> None:
    order = OrderRecord(
        id="7dd204d2-d06c-4406-a3d9-4415f4a8b9c9",
        kind=Kind.SELL,
        status=Status.WAITING_TAKER_BOND,
        creator_pubkey="a" * 64,
        fiat_code="EUR",
        payment_method="SEPA",
        amount=10_000,
    )
    bond = BondRecord(
        id="b1",
        order_id=order.id,
        pubkey="b" * 64,
        role=BondRole.TAKER,
        amount_sats=1000,
        state=BondState.REQUESTED,
        hash="c" * 64,
        preimage="d" * 64,
        created_at=5,
        taker_fiat_amount=100,
    )
    state = OrderState(order=order, bonds=(bond,))
    small = SmallOrder(amount=1000, fiat_code="EUR", fiat_amount=100, payment_method="SEPA", premium=0)
    effect = SendMessage("b" * 64, Message(Action.PAY_BOND_INVOICE, id=order.id,
                                           payload=PaymentRequest(small, "lnbcrt1", None)))
    event = ClientRequest(Message(Action.TAKE_SELL, id=order.id), "b" * 64, "e" * 64)
    timer = DeadlineReached(Deadline(DeadlineKind.BOND_EXPIRY, 99, "b1"))
    for value in (state, effect, event, timer, (effect, timer), b"\x00\x01"):
        assert records_json.loads(records_json.dumps(value)) == value


# what a stored value can hold: any JSON scalar the standard library writes, nested
_SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text())
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4).map(tuple)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_text_is_the_standard_librarys(value: object) -> None:
    """A re-delivered event is recognised by comparing its text with the stored one (written by
    any earlier version), so the fast encoder must write exactly what `json` writes: floats with
    tiny exponents, NaN, integers beyond 64 bits and lone surrogates included."""
    standard = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    assert records_json.dumps(value) == standard.encode(value)
    effect = SendMessage("b" * 64, Message(Action.CANCEL, id="o", payload=value))
    tagged = records_json.dumps(effect)
    assert tagged.endswith(',"payload":' + standard.encode(value) + "}}")


def test_edge_values_match_the_standard_library() -> None:
    edges = (1e-07, 1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, -1.5e15, 5e-324,
             1.7976931348623157e308, -0.0, float("nan"), float("inf"), 2 ** 64, -(2 ** 63) - 1,
             "\ud800", "\u2028\x00é")
    for value in edges:
        assert records_json.dumps(value) == json.dumps(value, separators=(",", ":"),
                                                       ensure_ascii=False)
