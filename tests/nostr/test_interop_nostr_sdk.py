"""Interop with an independent implementation: rust-nostr's Python bindings (nostr-sdk 0.45).

NIP-44 both ways, NIP-59 gift wraps both ways, and the two Mostro transports built by one side and
opened by the other. nostr-sdk's sync API is used (no event loop needed).
"""

from __future__ import annotations

import json
import time

import nostr_sdk as sdk
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.nostr import keys, nip44, nip59
from adapters.nostr.nip59 import Unwrapped
from adapters.nostr.nostr_event import NostrEvent
from adapters.nostr.transport import (
    Inbound,
    unwrap_inbound,
    unwrap_reply,
    wrap_client_message,
    wrap_outbound,
)

PLAINTEXTS = [
    "a",
    "hello mostro",
    '[{"order":{"version":2,"id":null,"request_id":1,"trade_index":null,"action":"new-order","payload":null}},null,null]',
    "¡unicode! ✓ 🦄 \u0000 nul and \n newline",
    "x" * 65535,
    "🦄" * 16383,
]
# rust-nostr refuses to *encrypt* more than 65408 bytes (it decrypts the full 65535, tested below)
SDK_MAX_ENCRYPT_BYTES = 65408
SDK_PLAINTEXTS = [p for p in PLAINTEXTS if len(p.encode()) <= SDK_MAX_ENCRYPT_BYTES] + [
    "x" * SDK_MAX_ENCRYPT_BYTES,
    "🦄" * (SDK_MAX_ENCRYPT_BYTES // 4),
]


def _pair() -> tuple[keys.KeyPair, object]:
    ours = keys.generate_keypair()
    return ours, sdk.Keys.parse(ours.secret_hex)


# plain keys only at module level: nostr-sdk objects must not outlive the test (their finalizers
# fail noisily at interpreter shutdown)
ALICE, BOB = keys.generate_keypair(), keys.generate_keypair()


def _sdk_pub(hex_key: str) -> object:
    return sdk.PublicKey.parse(hex_key)


@pytest.mark.parametrize("plaintext", SDK_PLAINTEXTS, ids=lambda p: f"{len(p)}chars")
def test_nip44_sdk_encrypts_we_decrypt(plaintext: str) -> None:
    alice, alice_sdk = _pair()
    bob, _ = _pair()
    payload = sdk.nip44_encrypt(
        alice_sdk.secret_key(), _sdk_pub(bob.public_hex), plaintext, sdk.Nip44Version.V2
    )
    conv = nip44.conversation_key(bob.secret_hex, alice.public_hex)
    assert nip44.decrypt(payload, conv) == plaintext


@pytest.mark.parametrize("plaintext", PLAINTEXTS, ids=lambda p: f"{len(p)}chars")
def test_nip44_we_encrypt_sdk_decrypts(plaintext: str) -> None:
    alice, _ = _pair()
    bob, bob_sdk = _pair()
    payload = nip44.encrypt(plaintext, nip44.conversation_key(alice.secret_hex, bob.public_hex))
    assert sdk.nip44_decrypt(bob_sdk.secret_key(), _sdk_pub(alice.public_hex), payload) == plaintext


def test_sdk_rejects_our_tampered_payload_and_we_reject_theirs() -> None:
    alice, alice_sdk = _pair()
    bob, bob_sdk = _pair()
    ours = nip44.encrypt("tamper me", nip44.conversation_key(alice.secret_hex, bob.public_hex))
    tampered = ours[:50] + ("A" if ours[50] != "A" else "B") + ours[51:]
    with pytest.raises(Exception):  # noqa: B017 - the binding raises its own error type
        sdk.nip44_decrypt(bob_sdk.secret_key(), _sdk_pub(alice.public_hex), tampered)
    theirs = sdk.nip44_encrypt(
        alice_sdk.secret_key(), _sdk_pub(bob.public_hex), "tamper me", sdk.Nip44Version.V2
    )
    tampered = theirs[:50] + ("A" if theirs[50] != "A" else "B") + theirs[51:]
    assert isinstance(
        nip44.decrypt(tampered, nip44.conversation_key(bob.secret_hex, alice.public_hex)),
        nip44.Nip44Error,
    )


def _sdk_rumor(author_sdk: object, content: str, kind: int = 1) -> object:
    return sdk.EventBuilder(sdk.Kind(kind), content).finalize_unsigned(author_sdk.public_key())


def test_sdk_gift_wrap_unwraps_with_our_code() -> None:
    alice, alice_sdk = _pair()
    bob, _ = _pair()
    rumor = _sdk_rumor(alice_sdk, "from rust-nostr")
    wrap = sdk.nip59_make_gift_wrap(alice_sdk, _sdk_pub(bob.public_hex), rumor)
    event = NostrEvent.from_json(wrap.as_json())
    assert event.verify()
    opened = nip59.unwrap(event, bob.secret_hex, require_same_author=True)
    assert isinstance(opened, Unwrapped)
    assert opened.seal_pubkey == alice.public_hex
    assert opened.rumor.content == "from rust-nostr" and opened.rumor.pubkey == alice.public_hex
    assert opened.rumor.id == opened.rumor.computed_id()


def test_our_gift_wrap_unwraps_in_sdk() -> None:
    alice, _ = _pair()
    bob, bob_sdk = _pair()
    now = int(time.time())
    rumor = nip59.make_rumor(alice.public_hex, "from mostro-py", now)
    wrap = nip59.gift_wrap(rumor, alice, bob.public_hex, now, expiration=now + 3600, pow_bits=8)
    sdk_event = sdk.Event.from_json(wrap.to_json())
    assert sdk_event.verify() and sdk_event.id().to_hex() == wrap.id
    unwrapped = sdk.UnwrappedGift.from_gift_wrap(bob_sdk, sdk_event)
    assert unwrapped.sender().to_hex() == alice.public_hex
    assert unwrapped.rumor().content() == "from mostro-py"
    assert unwrapped.rumor().id().to_hex() == rumor.id
    assert json.loads(unwrapped.rumor().as_json())["created_at"] == now


def test_mostro_split_key_wrap_from_sdk_opens_in_our_transport() -> None:
    """What a nostr-sdk based Mostro client sends on v1: rumor by the trade key, seal by the identity."""
    node, _ = _pair()
    identity, identity_sdk = _pair()
    trade, trade_sdk = _pair()
    tuple_json = '[{"order":{"version":1,"id":null,"request_id":3,"trade_index":null,"action":"new-order","payload":null}},null]'
    rumor = _sdk_rumor(trade_sdk, tuple_json)
    wrap = sdk.nip59_make_gift_wrap(identity_sdk, _sdk_pub(node.public_hex), rumor)
    inbound = unwrap_inbound(
        json.loads(wrap.as_json()), node.secret_hex, "gift-wrap", int(time.time())
    )
    assert isinstance(inbound, Inbound)
    assert (inbound.sender, inbound.seal_pubkey, inbound.plaintext) == (
        trade.public_hex,
        identity.public_hex,
        tuple_json,
    )
    assert inbound.created_at == json.loads(rumor.as_json())["created_at"]


def test_our_split_key_wrap_opens_layer_by_layer_in_sdk() -> None:
    """nostr-sdk's UnwrappedGift refuses a seal signer ≠ rumor author ("sender mismatch"), as NIP-59
    says; Mostro v1 needs exactly that split, so peel our layers with the SDK's primitives instead."""
    node, node_sdk = _pair()
    identity, _ = _pair()
    trade, _ = _pair()
    event = wrap_client_message(
        "[1,null]",
        trade.secret_hex,
        identity.secret_hex,
        node.public_hex,
        "gift-wrap",
        int(time.time()),
        pow_bits=4,
    )
    sdk_wrap = sdk.Event.from_json(json.dumps(event))
    with pytest.raises(Exception, match="sender mismatch"):
        sdk.UnwrappedGift.from_gift_wrap(node_sdk, sdk_wrap)
    seal = sdk.Event.from_json(
        sdk.nip44_decrypt(node_sdk.secret_key(), sdk_wrap.author(), sdk_wrap.content())
    )
    assert (
        seal.verify()
        and seal.kind().as_u16() == 13
        and seal.author().to_hex() == identity.public_hex
    )
    rumor = sdk.UnsignedEvent.from_json(
        sdk.nip44_decrypt(node_sdk.secret_key(), seal.author(), seal.content())
    )
    assert rumor.author().to_hex() == trade.public_hex and rumor.content() == "[1,null]"


def test_our_v1_daemon_reply_unwraps_in_sdk() -> None:
    node, _ = _pair()
    trade, trade_sdk = _pair()
    now = int(time.time())
    event = wrap_outbound(
        '[{"order":{}},null]', trade.public_hex, node.secret_hex, "gift-wrap", now
    )
    unwrapped = sdk.UnwrappedGift.from_gift_wrap(trade_sdk, sdk.Event.from_json(json.dumps(event)))
    assert unwrapped.sender().to_hex() == node.public_hex
    assert unwrapped.rumor().content() == '[{"order":{}},null]'


def test_v2_kind14_from_sdk_opens_in_our_transport() -> None:
    node, _ = _pair()
    trade, trade_sdk = _pair()
    now = int(time.time())
    tuple_json = '[{"order":{"version":2,"action":"orders","payload":null}},null,null]'
    content = sdk.nip44_encrypt(
        trade_sdk.secret_key(), _sdk_pub(node.public_hex), tuple_json, sdk.Nip44Version.V2
    )
    tags = [
        sdk.Tag.public_key(_sdk_pub(node.public_hex)),
        sdk.Tag.expiration(sdk.Timestamp.from_secs(now + 600)),
    ]
    signed = (
        sdk.EventBuilder(sdk.Kind(14), content)
        .tags(tags)
        .custom_created_at(sdk.Timestamp.from_secs(now))
        .finalize(trade_sdk)
    )
    inbound = unwrap_inbound(json.loads(signed.as_json()), node.secret_hex, "nip44", now)
    assert inbound == Inbound(
        signed.id().to_hex(), "nip44", trade.public_hex, None, now, tuple_json
    )


def test_our_v2_events_verify_and_decrypt_in_sdk() -> None:
    node, node_sdk = _pair()
    trade, trade_sdk = _pair()
    now = int(time.time())
    client = wrap_client_message(
        "[0,null,null]", trade.secret_hex, None, node.public_hex, "nip44", now, pow_bits=8
    )
    client_sdk = sdk.Event.from_json(json.dumps(client))
    assert client_sdk.verify() and client_sdk.id().to_hex() == client["id"]
    assert (
        sdk.nip44_decrypt(node_sdk.secret_key(), client_sdk.author(), client_sdk.content())
        == "[0,null,null]"
    )
    reply = wrap_outbound("[1,null,null]", trade.public_hex, node.secret_hex, "nip44", now)
    reply_sdk = sdk.Event.from_json(json.dumps(reply))
    assert reply_sdk.verify() and not reply_sdk.is_expired()
    assert (
        sdk.nip44_decrypt(trade_sdk.secret_key(), reply_sdk.author(), reply_sdk.content())
        == "[1,null,null]"
    )
    assert unwrap_reply(reply, trade.secret_hex, "nip44", node.public_hex) == ("[1,null,null]", now)


TRICKY_CONTENTS = [
    "plain",
    'quote " backslash \\ slash / tab \t newline \n return \r',
    "controls \u0000 \u0001 \u001f \b \f del \u007f",
    "separators \u2028 \u2029 and non-BMP 🦄 and é",
    "",
]


@pytest.mark.parametrize("content", TRICKY_CONTENTS, ids=range(len(TRICKY_CONTENTS)))
def test_event_ids_agree_with_sdk_both_ways(content: str) -> None:
    """The id serialization (escaping!) must match rust-nostr's, or every signature check fails."""
    author, author_sdk = _pair()
    tags = [["p", author.public_hex], ["t", content]]
    ours = NostrEvent.signed(author, 1_700_000_000, 1, tags, content)
    theirs_view = sdk.Event.from_json(ours.to_json())
    assert theirs_view.verify() and theirs_view.id().to_hex() == ours.id
    built = (
        sdk.EventBuilder(sdk.Kind(1), content)
        .tags([sdk.Tag.parse(tag) for tag in tags])
        .custom_created_at(sdk.Timestamp.from_secs(1_700_000_000))
        .finalize(author_sdk)
    )
    parsed = NostrEvent.from_json(built.as_json())
    assert parsed.verify() and parsed.id == ours.id


def test_bech32_keys_agree_with_sdk() -> None:
    ours = keys.generate_keypair()
    theirs = sdk.Keys.parse(ours.secret_hex)
    assert keys.nsec_encode(ours.secret_hex) == theirs.secret_key().to_bech32()
    assert keys.npub_encode(ours.public_hex) == theirs.public_key().to_bech32()
    assert keys.parse_secret_key(theirs.secret_key().to_bech32()) == ours.secret_hex
    assert keys.parse_public_key(theirs.public_key().to_bech32()) == ours.public_hex
    assert (
        sdk.Keys.parse(keys.nsec_encode(ours.secret_hex)).public_key().to_hex() == ours.public_hex
    )


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_nip44_random_text_both_ways(plaintext: str) -> None:
    alice, alice_sdk = ALICE, sdk.Keys.parse(ALICE.secret_hex)
    bob, bob_sdk = BOB, sdk.Keys.parse(BOB.secret_hex)
    conv = nip44.cached_conversation_key(alice.secret_hex, bob.public_hex)
    ours = nip44.encrypt(plaintext, conv)
    assert sdk.nip44_decrypt(bob_sdk.secret_key(), _sdk_pub(alice.public_hex), ours) == plaintext
    theirs = sdk.nip44_encrypt(
        alice_sdk.secret_key(), _sdk_pub(bob.public_hex), plaintext, sdk.Nip44Version.V2
    )
    assert nip44.decrypt(theirs, conv) == plaintext
