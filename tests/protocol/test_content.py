"""Content tuples: parsing, raw element 0, trade signatures and v2 identity proofs (real keys)."""

from __future__ import annotations

import hashlib
import json

import coincurve
import pytest

from adapters.nostr.protocol import (
    Action,
    Content,
    Message,
    ParseError,
    SignatureError,
    Transport,
    WrapperKey,
    build_content,
    parse_content,
    serialize_message,
    sign_text,
    stamp_version,
    verify_content,
)
from adapters.nostr.protocol.content import serialize_content

TRADE_SECRET = "110e43647eae221ab1da33ddc17fd6ff423f2b2f49d809b9ffa40794a2ab996c"
IDENTITY_SECRET = "3fa9c5ad07d8bf3b5f9c7a38e8b0d3c2ee24b3ac6ad54e0ba8a3d1e1fa2c4b57"
OTHER_SECRET = "7f6e5d4c3b2a19081726354453627180a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4"
ORDER_ID = "308e1272-d5f4-47e6-bd97-3504baea9c23"


def _xonly(secret_hex: str) -> str:
    return coincurve.PrivateKey(bytes.fromhex(secret_hex)).public_key_xonly.format().hex()


TRADE_PUB = _xonly(TRADE_SECRET)
IDENTITY_PUB = _xonly(IDENTITY_SECRET)
OTHER_PUB = _xonly(OTHER_SECRET)

MESSAGE = Message(action=Action.FIAT_SENT, version=2, request_id=7, trade_index=3, id=ORDER_ID)


def _coincurve_sign(secret_hex: str, text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return coincurve.PrivateKey(bytes.fromhex(secret_hex)).sign_schnorr(digest).hex()


def _parsed(text: str, transport: Transport) -> Content:
    content = parse_content(text, transport)
    assert isinstance(content, Content), str(content)
    return content


def test_daemon_tuples_are_unsigned() -> None:
    json_text = serialize_message(MESSAGE)
    assert build_content(MESSAGE, Transport.GIFT_WRAP) == f"[{json_text},null]"
    assert build_content(MESSAGE, Transport.NIP44) == f"[{json_text},null,null]"


def test_stamp_version_follows_the_transport() -> None:
    assert stamp_version(MESSAGE, Transport.GIFT_WRAP).version == 1
    assert stamp_version(MESSAGE, Transport.NIP44).version == 2
    assert stamp_version(MESSAGE, Transport.NIP44) is MESSAGE


def test_sign_text_is_bip340_over_sha256_of_the_text() -> None:
    text = serialize_message(MESSAGE)
    signature = bytes.fromhex(sign_text(text, TRADE_SECRET))
    digest = hashlib.sha256(text.encode()).digest()
    assert coincurve.PublicKeyXOnly(bytes.fromhex(TRADE_PUB)).verify(signature, digest)


def test_v1_signed_tuple_verifies_and_identity_is_the_seal_signer() -> None:
    content = _parsed(
        build_content(MESSAGE, Transport.GIFT_WRAP, TRADE_SECRET), Transport.GIFT_WRAP
    )
    assert content.message == MESSAGE
    assert verify_content(content, TRADE_PUB) == TRADE_PUB
    assert verify_content(content, TRADE_PUB, seal_pubkey=IDENTITY_PUB) == IDENTITY_PUB
    assert verify_content(content, OTHER_PUB) == SignatureError("trade signature does not verify")


def test_v2_identity_proof_binds_identity_to_the_trade_key() -> None:
    text = build_content(MESSAGE, Transport.NIP44, TRADE_SECRET, IDENTITY_SECRET)
    content = _parsed(text, Transport.NIP44)
    assert content.identity_proof is not None
    assert content.identity_proof.pubkey == IDENTITY_PUB
    assert verify_content(content, TRADE_PUB) == IDENTITY_PUB
    # the proof is domain-tagged with the trade key: independent check with coincurve
    payload = f"mostro-transport-v2-identity:{TRADE_PUB}:{serialize_message(MESSAGE)}"
    digest = hashlib.sha256(payload.encode()).digest()
    assert coincurve.PublicKeyXOnly(bytes.fromhex(IDENTITY_PUB)).verify(
        bytes.fromhex(content.identity_proof.signature), digest
    )


def test_v2_proof_grafted_onto_another_author_is_refused() -> None:
    signed = json.loads(build_content(MESSAGE, Transport.NIP44, TRADE_SECRET, IDENTITY_SECRET))
    other_sig = sign_text(serialize_message(MESSAGE), OTHER_SECRET)
    grafted = json.dumps([signed[0], other_sig, signed[2]], separators=(",", ":"))
    result = verify_content(_parsed(grafted, Transport.NIP44), OTHER_PUB)
    assert result == SignatureError("identity signature does not verify against identity pubkey")


def test_v2_full_privacy_identity_is_the_trade_key() -> None:
    text = build_content(MESSAGE, Transport.NIP44, TRADE_SECRET)
    assert text.endswith(",null]")
    assert verify_content(_parsed(text, Transport.NIP44), TRADE_PUB) == TRADE_PUB
    same_key = build_content(MESSAGE, Transport.NIP44, TRADE_SECRET, TRADE_SECRET)
    assert json.loads(same_key)[2] is None  # identity == trade key: no proof, like mostro-core


def test_unsigned_tuple_has_identity_of_sender() -> None:
    content = _parsed(build_content(MESSAGE, Transport.NIP44), Transport.NIP44)
    assert verify_content(content, TRADE_PUB) == TRADE_PUB


def test_signature_over_raw_non_canonical_bytes_is_accepted() -> None:
    raw = (
        '{"order": {"version": 2, "id": "308e1272-d5f4-47e6-bd97-3504baea9c23", '
        '"action": "new-order", "payload": {"order": {"kind": "sell", "amount": 0, '
        '"fiat_code": "VES", "fiat_amount": 100, "payment_method": "face to face", "premium": 1}}}}'
    )
    text = f'[ {raw} , "{_coincurve_sign(TRADE_SECRET, raw)}", null ]'
    content = _parsed(text, Transport.NIP44)
    assert content.message_json == raw
    assert serialize_message(content.message) != raw
    assert verify_content(content, TRADE_PUB) == TRADE_PUB


def test_signature_over_canonical_form_of_a_doc_form_message_is_accepted() -> None:
    raw = (
        '{"order":{"version":2,"id":"308e1272-d5f4-47e6-bd97-3504baea9c23",'
        '"action":"add-invoice","payload":{"payment_request":[null,"lnbcrt1"]}}}'
    )
    content_probe = _parsed(f"[{raw},null,null]", Transport.NIP44)
    canonical = serialize_message(content_probe.message)
    assert '"payment_request":[null,"lnbcrt1",null]' in canonical
    text = f'[{raw},"{_coincurve_sign(TRADE_SECRET, canonical)}",null]'
    assert verify_content(_parsed(text, Transport.NIP44), TRADE_PUB) == TRADE_PUB


def test_tampered_message_is_refused() -> None:
    signed = build_content(MESSAGE, Transport.GIFT_WRAP, TRADE_SECRET)
    tampered = signed.replace('"request_id":7', '"request_id":8')
    content = _parsed(tampered, Transport.GIFT_WRAP)
    assert verify_content(content, TRADE_PUB) == SignatureError("trade signature does not verify")


@pytest.mark.parametrize(
    ("sig", "proof", "reason"),
    [
        ('"abcd"', "null", "malformed trade signature"),
        ('"' + "zz" * 64 + '"', "null", "malformed trade signature"),
        ("null", '["nothex","' + "00" * 64 + '"]', "malformed identity pubkey"),
        ("null", f'["{IDENTITY_PUB}","12"]', "malformed identity signature"),
    ],
)
def test_malformed_signatures_are_errors(sig: str, proof: str, reason: str) -> None:
    text = f"[{serialize_message(MESSAGE)},{sig},{proof}]"
    assert verify_content(_parsed(text, Transport.NIP44), TRADE_PUB) == SignatureError(reason)


def test_uppercase_hex_signature_is_accepted_like_rust() -> None:
    text = build_content(MESSAGE, Transport.GIFT_WRAP, TRADE_SECRET)
    items = json.loads(text)
    upper = f'[{serialize_message(MESSAGE)},"{items[1].upper()}"]'
    assert verify_content(_parsed(upper, Transport.GIFT_WRAP), TRADE_PUB.upper()) == TRADE_PUB


def test_tuple_length_must_match_the_transport() -> None:
    v1 = build_content(MESSAGE, Transport.GIFT_WRAP)
    v2 = build_content(MESSAGE, Transport.NIP44)
    assert isinstance(parse_content(v1, Transport.NIP44), ParseError)
    assert isinstance(parse_content(v2, Transport.GIFT_WRAP), ParseError)
    assert _parsed(v1, Transport.GIFT_WRAP).transport is Transport.GIFT_WRAP
    auto = parse_content(v2, None)
    assert isinstance(auto, Content) and auto.transport is Transport.NIP44


def test_serialize_content_is_canonical() -> None:
    raw = '[ {"dm":{"version":2,"id":"308E1272-D5F4-47E6-BD97-3504BAEA9C23","action":"send-dm"}} , null , null ]'
    content = _parsed(raw, Transport.NIP44)
    assert content.message.wrapper is WrapperKey.DM
    assert serialize_content(content) == (
        '[{"dm":{"version":2,"request_id":null,"trade_index":null,'
        '"id":"308e1272-d5f4-47e6-bd97-3504baea9c23","action":"send-dm","payload":null}},null,null]'
    )


def test_identity_proof_needs_a_trade_key() -> None:
    with pytest.raises(ValueError):
        build_content(MESSAGE, Transport.NIP44, None, IDENTITY_SECRET)
