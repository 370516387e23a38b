"""Key parsing/signing helpers and the NIP-01 event value (ids, signatures, dict/JSON shapes)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.nostr import keys
from adapters.nostr.keys import KeyParseError
from adapters.nostr.nostr_event import EventError, NostrEvent

SHAPE_CASES = json.loads(
    (Path(__file__).resolve().parent / "data" / "event_shape_cases.json").read_text()
)["cases"]
KEY = keys.keypair("0000000000000000000000000000000000000000000000000000000000000001")
G_X = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"  # generator: pubkey of 1


def test_public_key_of_one_is_the_generator() -> None:
    assert KEY.public_hex == G_X == keys.public_key_hex(KEY.secret_hex)
    assert "0000000000000000000000000000000000000000000000000000000000000001" not in repr(KEY)


def test_sign_and_verify() -> None:
    digest = hashlib.sha256(b"mostro").digest()
    signature = KEY.sign(digest)
    assert keys.verify(signature, digest, G_X)
    assert keys.verify_hex(signature.hex(), digest, G_X)
    assert not keys.verify(signature, hashlib.sha256(b"other").digest(), G_X)
    assert not keys.verify(signature, digest, keys.generate_keypair().public_hex)
    assert not keys.verify(signature[:63], digest, G_X)
    assert not keys.verify(signature, digest, "ff" * 32)  # not on the curve
    assert not keys.verify_hex("zz" * 64, digest, G_X)
    assert KEY.sign(digest, bytes(32)) == KEY.sign(digest, bytes(32))  # aux fixes the signature


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "0000000000000000000000000000000000000000000000000000000000000001",
            "0000000000000000000000000000000000000000000000000000000000000001",
        ),
        (
            "  0000000000000000000000000000000000000000000000000000000000000001\n",
            "0000000000000000000000000000000000000000000000000000000000000001",
        ),
        (
            "00000000000000000000000000000000000000000000000000000000000000FF",
            "00000000000000000000000000000000000000000000000000000000000000ff",
        ),
        ("0000000000000000000000000000000000000000000000000000000000000000", None),
        ("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", None),
        ("abc", None),
        ("nsec1notreally", None),
    ],
)
def test_parse_secret_key(text: str, expected: str | None) -> None:
    result = keys.parse_secret_key(text)
    if expected is None:
        assert isinstance(result, KeyParseError)
    else:
        assert result == expected


def test_bech32_round_trip_and_refusals() -> None:
    npub, nsec = keys.npub_encode(G_X), keys.nsec_encode(KEY.secret_hex)
    assert npub.startswith("npub1") and nsec.startswith("nsec1")
    assert keys.parse_public_key(npub) == G_X
    assert keys.parse_secret_key(nsec) == KEY.secret_hex
    assert keys.parse_public_key(G_X.upper()) == G_X
    assert isinstance(
        keys.parse_public_key(npub[:-1] + ("q" if npub[-1] != "q" else "p")), KeyParseError
    )
    assert isinstance(keys.parse_public_key("ff" * 32), KeyParseError)  # no curve point
    assert isinstance(keys.parse_secret_key(npub), KeyParseError)


def test_ecdh_is_symmetric_and_refuses_bad_points() -> None:
    other = keys.generate_keypair()
    assert keys.ecdh_x(KEY.secret, other.public_hex) == keys.ecdh_x(other.secret, G_X)
    assert keys.ecdh_x(KEY.secret, "ff" * 32) is None
    assert keys.ecdh_x(b"\xff" * 32, G_X) is None


def _base_event() -> dict:
    return NostrEvent.signed(KEY, 1_700_000_000, 1, [["p", G_X]], "hello").to_dict()


@pytest.mark.parametrize("case", SHAPE_CASES, ids=[c["name"] for c in SHAPE_CASES])
def test_event_shapes(case: dict) -> None:
    data = _base_event()
    for field, value in case["patch"].items():
        if value is None:
            data.pop(field)
        else:
            data[field] = value
    result = NostrEvent.from_dict(data, require_sig=case.get("require_sig", True))
    if case["expected"] == "ok":
        assert isinstance(result, NostrEvent), result
        assert result.to_dict() == {
            k: v for k, v in data.items() if k != "sig" or v is not None
        } | {"id": result.id}
    else:
        assert isinstance(result, EventError) and result.reason.startswith(case["expected"]), result


def test_verify_detects_each_alteration() -> None:
    event = NostrEvent.from_dict(_base_event())
    assert event.verify()
    assert not replace(event, content="hellp").verify()
    assert not replace(event, created_at=event.created_at + 1).verify()
    assert not replace(event, tags=()).verify()
    assert not replace(event, sig=None).verify()
    other = keys.generate_keypair()
    assert not replace(event, pubkey=other.public_hex).verify()


def test_json_round_trip_and_garbage() -> None:
    event = NostrEvent.from_dict(_base_event())
    assert NostrEvent.from_json(event.to_json()) == event
    assert isinstance(NostrEvent.from_json("{"), EventError)
    assert isinstance(NostrEvent.from_json("[]"), EventError)
    assert isinstance(NostrEvent.from_json(b"\xff"), EventError)


def test_only_the_author_may_sign() -> None:
    unsigned = NostrEvent.unsigned(G_X, 1, 1, [], "x")
    with pytest.raises(ValueError):
        unsigned.sign(keys.generate_keypair())
    assert unsigned.sign(KEY).verify()
