"""Property: any Message the types allow serializes canonically and parses back equal."""

from __future__ import annotations

import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.nostr.protocol import (
    Action,
    Amount,
    BondPayoutRequest,
    BondResolution,
    CantDo,
    CantDoReason,
    CashuLockProof,
    CashuSignature,
    CashuSignatures,
    DisputeInitiator,
    DisputePayload,
    Ids,
    Kind,
    Message,
    NextTrade,
    OrderPayload,
    Orders,
    PaymentFailed,
    PaymentRequest,
    Peer,
    RatingUser,
    RestoreData,
    RestoredDisputeInfo,
    RestoredOrderInfo,
    SmallOrder,
    SolverDisputeInfo,
    Status,
    TextMessage,
    UserInfo,
    WrapperKey,
    parse_message,
    serialize_message,
)

i64 = st.integers(-(2**63), 2**63 - 1)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
uuids = st.builds(lambda: str(uuid.uuid4())) | st.uuids().map(str)


def _opt(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


small_orders = st.builds(
    SmallOrder,
    amount=i64,
    fiat_code=text,
    fiat_amount=i64,
    payment_method=text,
    premium=i64,
    id=_opt(uuids),
    kind=_opt(st.sampled_from(Kind)),
    status=_opt(st.sampled_from(Status)),
    min_amount=_opt(i64),
    max_amount=_opt(i64),
    buyer_trade_pubkey=_opt(text),
    seller_trade_pubkey=_opt(text),
    buyer_invoice=_opt(text),
    created_at=_opt(i64),
    expires_at=_opt(i64),
)
user_infos = st.builds(
    UserInfo,
    rating=st.floats(allow_nan=False, allow_infinity=False),
    reviews=i64,
    operating_days=u64,
)
solver_infos = st.builds(
    SolverDisputeInfo,
    id=uuids,
    kind=text,
    status=text,
    hash=_opt(text),
    preimage=_opt(text),
    order_previous_status=text,
    initiator_pubkey=text,
    buyer_pubkey=_opt(text),
    seller_pubkey=_opt(text),
    initiator_full_privacy=st.booleans(),
    counterpart_full_privacy=st.booleans(),
    initiator_info=_opt(user_infos),
    counterpart_info=_opt(user_infos),
    premium=i64,
    payment_method=text,
    amount=i64,
    fiat_amount=i64,
    fee=i64,
    routing_fee=i64,
    buyer_invoice=_opt(text),
    invoice_held_at=i64,
    taken_at=i64,
    created_at=i64,
)
payloads = st.one_of(
    st.builds(OrderPayload, small_orders),
    st.builds(PaymentRequest, _opt(small_orders), text, _opt(i64)),
    st.builds(TextMessage, text),
    st.builds(Peer, text, _opt(user_infos)),
    st.builds(RatingUser, st.integers(0, 255)),
    st.builds(Amount, i64),
    st.builds(DisputePayload, uuids, _opt(solver_infos)),
    st.builds(CantDo, _opt(st.sampled_from(CantDoReason))),
    st.builds(NextTrade, text, u32),
    st.builds(PaymentFailed, u32, u32),
    st.builds(
        RestoreData,
        st.lists(st.builds(RestoredOrderInfo, uuids, i64, text), max_size=3).map(tuple),
        st.lists(
            st.builds(
                RestoredDisputeInfo,
                uuids,
                uuids,
                i64,
                text,
                _opt(st.sampled_from(DisputeInitiator)),
                _opt(text),
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(Ids, st.lists(uuids, max_size=4).map(tuple)),
    st.builds(Orders, st.lists(small_orders, max_size=3).map(tuple)),
    st.builds(BondResolution, st.booleans(), st.booleans()),
    st.builds(BondPayoutRequest, small_orders, i64),
    st.builds(CashuLockProof, text, text, text, text, text, _opt(text)),
    st.builds(
        CashuSignatures, st.lists(st.builds(CashuSignature, text, text), max_size=3).map(tuple)
    ),
)
messages = st.builds(
    Message,
    action=st.sampled_from(Action),
    wrapper=st.sampled_from(WrapperKey),
    version=st.integers(0, 255),
    request_id=_opt(u64),
    trade_index=_opt(i64),
    id=_opt(uuids),
    payload=_opt(payloads),
)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messages)
def test_any_message_round_trips(message: Message) -> None:
    text_form = serialize_message(message)
    parsed = parse_message(text_form, lenient=False)
    assert parsed == message
    assert serialize_message(parsed) == text_form


@settings(max_examples=100, deadline=None)
@given(messages)
def test_serialization_is_json_with_the_canonical_key_order(message: Message) -> None:
    decoded = json.loads(serialize_message(message))
    assert list(decoded) == [message.wrapper.value]
    expected = ["version", "request_id", "trade_index", "id", "action", "payload"]
    if message.id is None:
        expected.remove("id")
    assert list(decoded[message.wrapper.value]) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["order", "version", "action", "payload", "id", "amount", "x"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.sampled_from(list(Action)))
def test_parsing_is_total_on_arbitrary_json(value: object, action: Action) -> None:
    from adapters.nostr.protocol import ParseError, Transport, parse_content

    for candidate in (
        value,
        {"order": value},
        {"dm": {"version": 1, "action": action.value, "payload": value}},
    ):
        result = parse_message(candidate)
        assert isinstance(result, Message | ParseError)
        text = json.dumps(candidate)
        assert isinstance(parse_message(text), Message | ParseError)
        for transport in (Transport.NIP44, Transport.GIFT_WRAP, None):
            assert parse_content(f"[{text},null,null]", transport) is not None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parsing_is_total_on_arbitrary_text(text: str) -> None:
    from adapters.nostr.protocol import ParseError, Transport, parse_content

    assert isinstance(parse_message(text), Message | ParseError)
    assert parse_content(text, Transport.NIP44) is not None
