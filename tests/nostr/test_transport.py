"""Mostro transports v1 (gift wrap) and v2 (NIP-44 kind 14): client → daemon → client, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.nostr import keys, nip44, nip59
from adapters.nostr.nip59 import SeededEntropy
from adapters.nostr.nostr_event import NostrEvent
from adapters.nostr.pow import pow_bits
from adapters.nostr.transport import (
    Inbound,
    TransportError,
    TransportReason,
    subscription_filter,
    unwrap_inbound,
    unwrap_reply,
    wrap_client_message,
    wrap_outbound,
)

PLAINTEXTS = json.loads(
    (Path(__file__).resolve().parent / "data" / "transport_plaintexts.json").read_text()
)["cases"]
NOW = 1_800_000_000
NODE = keys.keypair("1111111111111111111111111111111111111111111111111111111111111111")
IDENTITY = keys.keypair("2222222222222222222222222222222222222222222222222222222222222222")
TRADE = keys.keypair("3333333333333333333333333333333333333333333333333333333333333333")
STRANGER = keys.keypair("4444444444444444444444444444444444444444444444444444444444444444")
V2_TUPLE = PLAINTEXTS[0]["plaintext"]
V1_TUPLE = PLAINTEXTS[3]["plaintext"]


def _client(mode: str, plaintext: str, **options) -> dict:
    return wrap_client_message(
        plaintext, TRADE.secret_hex, IDENTITY.secret_hex, NODE.public_hex, mode, NOW, **options
    )


@pytest.mark.parametrize("case", PLAINTEXTS, ids=[c["name"] for c in PLAINTEXTS])
def test_client_message_opens_at_the_node(case: dict) -> None:
    mode = case["mode"]
    event = _client(mode, case["plaintext"], pow_bits=6)
    assert pow_bits(event["id"]) >= 6
    inbound = unwrap_inbound(event, NODE.secret_hex, mode, NOW)
    assert inbound == Inbound(
        event_id=event["id"],
        mode=mode,
        sender=TRADE.public_hex,
        seal_pubkey=IDENTITY.public_hex if mode == "gift-wrap" else None,
        created_at=NOW,
        plaintext=case["plaintext"],
    )


def test_v2_client_event_shape() -> None:
    event = _client("nip44", V2_TUPLE, pow_bits=4)
    assert (
        event["kind"] == 14 and event["pubkey"] == TRADE.public_hex and event["created_at"] == NOW
    )
    assert event["tags"][:2] == [["p", NODE.public_hex], ["expiration", str(NOW + 30 * 86400)]]
    assert event["tags"][2][0] == "nonce"
    conv = nip44.conversation_key(NODE.secret_hex, TRADE.public_hex)
    assert nip44.decrypt(event["content"], conv) == V2_TUPLE


def test_v1_full_privacy_seal_is_the_trade_key() -> None:
    event = wrap_client_message(V1_TUPLE, TRADE.secret_hex, None, NODE.public_hex, "gift-wrap", NOW)
    inbound = unwrap_inbound(event, NODE.secret_hex, "gift-wrap", NOW)
    assert isinstance(inbound, Inbound)
    assert inbound.sender == inbound.seal_pubkey == TRADE.public_hex


def test_v1_client_wrap_shape() -> None:
    event = _client("gift-wrap", V1_TUPLE, pow_bits=3, expiration=NOW + 600)
    assert event["kind"] == 1059 and event["pubkey"] not in {TRADE.public_hex, IDENTITY.public_hex}
    assert event["tags"][:2] == [["p", NODE.public_hex], ["expiration", str(NOW + 600)]]
    assert NOW - 172_800 < event["created_at"] <= NOW


def test_v2_daemon_reply() -> None:
    reply_tuple = '[{"order":{"version":2,"id":null,"request_id":1,"trade_index":null,"action":"new-order","payload":null}},null,null]'
    event = wrap_outbound(reply_tuple, TRADE.public_hex, NODE.secret_hex, "nip44", NOW, dm_days=3)
    assert event["kind"] == 14 and event["pubkey"] == NODE.public_hex and event["created_at"] == NOW
    assert event["tags"] == [["p", TRADE.public_hex], ["expiration", str(NOW + 3 * 86400)]]
    assert NostrEvent.from_dict(event).verify()
    assert unwrap_reply(event, TRADE.secret_hex, "nip44", NODE.public_hex) == (reply_tuple, NOW)


def test_v1_daemon_reply() -> None:
    reply_tuple = '[{"order":{"version":1,"id":null,"request_id":1,"trade_index":null,"action":"new-order","payload":null}},null]'
    event = wrap_outbound(reply_tuple, TRADE.public_hex, NODE.secret_hex, "gift-wrap", NOW)
    assert event["kind"] == 1059 and event["tags"] == [
        ["p", TRADE.public_hex]
    ]  # no PoW, no expiration
    opened = nip59.unwrap(NostrEvent.from_dict(event), TRADE.secret_hex)
    assert opened.seal_pubkey == NODE.public_hex and opened.rumor.pubkey == NODE.public_hex
    assert opened.rumor.kind == 1 and opened.rumor.created_at == NOW
    assert unwrap_reply(event, TRADE.secret_hex, "gift-wrap", NODE.public_hex) == (reply_tuple, NOW)


@pytest.mark.parametrize("mode", ["nip44", "gift-wrap"])
def test_reply_from_someone_else_is_refused(mode: str) -> None:
    event = wrap_outbound(V2_TUPLE, TRADE.public_hex, STRANGER.secret_hex, mode, NOW)
    refused = unwrap_reply(event, TRADE.secret_hex, mode, NODE.public_hex)
    assert (
        isinstance(refused, TransportError) and refused.reason is TransportReason.UNEXPECTED_SENDER
    )


@pytest.mark.parametrize("mode", ["nip44", "gift-wrap"])
def test_seeded_entropy_gives_identical_replies(mode: str) -> None:
    first = wrap_outbound(
        V2_TUPLE, TRADE.public_hex, NODE.secret_hex, mode, NOW, entropy=SeededEntropy(1)
    )
    second = wrap_outbound(
        V2_TUPLE, TRADE.public_hex, NODE.secret_hex, mode, NOW, entropy=SeededEntropy(1)
    )
    assert first == second


def _reason(result: object) -> TransportReason:
    assert isinstance(result, TransportError), result
    return result.reason


@pytest.mark.parametrize(("sent_as", "opened_as"), [("nip44", "gift-wrap"), ("gift-wrap", "nip44")])
def test_other_mode_kind_is_dropped(sent_as: str, opened_as: str) -> None:
    event = _client(sent_as, V2_TUPLE)
    assert (
        _reason(unwrap_inbound(event, NODE.secret_hex, opened_as, NOW))
        is TransportReason.WRONG_KIND
    )


def test_unknown_mode() -> None:
    event = _client("nip44", V2_TUPLE)
    assert (
        _reason(unwrap_inbound(event, NODE.secret_hex, "nip04", NOW))
        is TransportReason.UNKNOWN_MODE
    )  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        wrap_outbound(V2_TUPLE, TRADE.public_hex, NODE.secret_hex, "nip04", NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "patch",
    [
        {"id": None},
        {"sig": "zz"},
        {"kind": "14"},
        {"tags": [["p", 5]]},
        {"content": None},
        {"created_at": 1.5},
        {"pubkey": "ab"},
    ],
    ids=[
        "no id",
        "bad sig",
        "kind string",
        "tag not string",
        "no content",
        "float time",
        "short pubkey",
    ],
)
def test_malformed_events(patch: dict) -> None:
    event = _client("nip44", V2_TUPLE)
    event.update(patch)
    assert (
        _reason(unwrap_inbound(event, NODE.secret_hex, "nip44", NOW))
        is TransportReason.MALFORMED_EVENT
    )
    assert (
        _reason(unwrap_inbound([event], NODE.secret_hex, "nip44", NOW))
        is TransportReason.MALFORMED_EVENT
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["nip44", "gift-wrap"])
@pytest.mark.parametrize("field", ["content", "created_at", "sig", "tags"])
def test_tampered_outer_event_fails_signature(mode: str, field: str) -> None:
    event = _client(mode, V2_TUPLE)
    altered = {
        "content": event["content"][:-4] + "AAA=",
        "created_at": event["created_at"] + 1,
        "sig": event["sig"][:-2] + ("00" if event["sig"][-2:] != "00" else "11"),
        "tags": [*event["tags"], ["t", "x"]],
    }[field]
    event[field] = altered
    assert (
        _reason(unwrap_inbound(event, NODE.secret_hex, mode, NOW))
        is TransportReason.BAD_EVENT_SIGNATURE
    )


@pytest.mark.parametrize("mode", ["nip44", "gift-wrap"])
def test_event_for_someone_else_is_not_for_us(mode: str) -> None:
    event = wrap_client_message(
        V2_TUPLE, TRADE.secret_hex, IDENTITY.secret_hex, STRANGER.public_hex, mode, NOW
    )
    assert _reason(unwrap_inbound(event, NODE.secret_hex, mode, NOW)) is TransportReason.NOT_FOR_US


def test_signed_v2_event_with_garbage_content_is_not_for_us() -> None:
    event = NostrEvent.signed(
        TRADE, NOW, 14, [["p", NODE.public_hex]], "hello, not NIP-44"
    ).to_dict()
    assert (
        _reason(unwrap_inbound(event, NODE.secret_hex, "nip44", NOW)) is TransportReason.NOT_FOR_US
    )


def test_v1_seal_problems_surface_with_transport_reasons() -> None:
    # a gift wrap whose seal is kind 14: built by hand
    rumor = nip59.make_rumor(TRADE.public_hex, V1_TUPLE, NOW)
    seal_conv = nip44.conversation_key(IDENTITY.secret_hex, NODE.public_hex)
    bad_seal = NostrEvent.signed(IDENTITY, NOW, 14, [], nip44.encrypt(rumor.to_json(), seal_conv))
    wrap = nip59.make_gift_wrap(bad_seal, NODE.public_hex, NOW)
    assert (
        _reason(unwrap_inbound(wrap.to_dict(), NODE.secret_hex, "gift-wrap", NOW))
        is TransportReason.BAD_SEAL_KIND
    )
    # rumor of kind 14 inside a proper seal
    kind14 = nip59.make_rumor(TRADE.public_hex, V1_TUPLE, NOW, kind=14)
    wrap = nip59.gift_wrap(kind14, IDENTITY, NODE.public_hex, NOW)
    assert (
        _reason(unwrap_inbound(wrap, NODE.secret_hex, "gift-wrap", NOW))
        is TransportReason.BAD_RUMOR_KIND
    )


@pytest.mark.parametrize("mode", ["nip44", "gift-wrap"])
def test_expired_events_are_dropped_only_when_now_is_given(mode: str) -> None:
    event = _client(mode, V2_TUPLE, expiration=NOW + 10)
    assert isinstance(unwrap_inbound(event, NODE.secret_hex, mode, NOW + 9), Inbound)
    assert isinstance(unwrap_inbound(event, NODE.secret_hex, mode), Inbound)
    assert (
        _reason(unwrap_inbound(event, NODE.secret_hex, mode, NOW + 10)) is TransportReason.EXPIRED
    )


def test_unwrap_accepts_a_parsed_event_and_dict_alike() -> None:
    event = _client("nip44", V2_TUPLE)
    parsed = NostrEvent.from_dict(event)
    assert unwrap_inbound(parsed, NODE.secret_hex, "nip44", NOW) == unwrap_inbound(
        event, NODE.secret_hex, "nip44", NOW
    )


def test_subscription_filter() -> None:
    assert subscription_filter("nip44", NODE.public_hex) == {
        "kinds": [14],
        "#p": [NODE.public_hex],
        "limit": 0,
    }
    assert subscription_filter("gift-wrap", NODE.public_hex)["kinds"] == [1059]
