"""NIP-44 v2 against every section of the official vectors (paulmillr/nip44), read from shared/testdata."""

from __future__ import annotations

import base64
import hmac
import json
from hashlib import sha256
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.nostr import keys, nip44
from adapters.nostr.nip44 import Nip44Error, Nip44Reason

VECTORS_PATH = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "nip44.vectors.json"
)
REASONS_PATH = Path(__file__).resolve().parent / "data" / "nip44_invalid_decrypt_reasons.json"
VECTORS = json.loads(VECTORS_PATH.read_text())["v2"]
VALID, INVALID = VECTORS["valid"], VECTORS["invalid"]


def _ids(cases: list, key: str = "note") -> list[str]:
    return [
        str(case.get(key, index)) if isinstance(case, dict) else str(case)
        for index, case in enumerate(cases)
    ]


def test_vector_file_is_the_pinned_one() -> None:
    digest = sha256(VECTORS_PATH.read_bytes()).hexdigest()
    assert digest == "269ed0f69e4c192512cc779e78c555090cebc7c785b609e338a62afc3ce25040"


@pytest.mark.parametrize(
    "case", VALID["get_conversation_key"], ids=_ids(VALID["get_conversation_key"], "pub2")
)
def test_get_conversation_key(case: dict) -> None:
    assert nip44.conversation_key(case["sec1"], case["pub2"]).hex() == case["conversation_key"]


@pytest.mark.parametrize(
    "case", VALID["get_message_keys"]["keys"], ids=_ids(VALID["get_message_keys"]["keys"], "nonce")
)
def test_get_message_keys(case: dict) -> None:
    conv = bytes.fromhex(VALID["get_message_keys"]["conversation_key"])
    chacha_key, chacha_nonce, hmac_key = nip44.message_keys(conv, bytes.fromhex(case["nonce"]))
    assert (chacha_key.hex(), chacha_nonce.hex(), hmac_key.hex()) == (
        case["chacha_key"],
        case["chacha_nonce"],
        case["hmac_key"],
    )


@pytest.mark.parametrize("case", VALID["calc_padded_len"], ids=_ids(VALID["calc_padded_len"]))
def test_calc_padded_len(case: list[int]) -> None:
    unpadded, padded = case
    assert nip44.calc_padded_len(unpadded) == padded


@pytest.mark.parametrize(
    "case", VALID["encrypt_decrypt"], ids=_ids(VALID["encrypt_decrypt"], "nonce")
)
def test_encrypt_decrypt(case: dict) -> None:
    conv = nip44.conversation_key(case["sec1"], keys.public_key_hex(case["sec2"]))
    assert conv.hex() == case["conversation_key"]
    # symmetric: the other side derives the same key
    assert nip44.conversation_key(case["sec2"], keys.public_key_hex(case["sec1"])) == conv
    payload = nip44.encrypt(case["plaintext"], conv, bytes.fromhex(case["nonce"]))
    assert payload == case["payload"]
    assert nip44.decrypt(case["payload"], conv) == case["plaintext"]


@pytest.mark.parametrize(
    "case",
    VALID["encrypt_decrypt_long_msg"],
    ids=_ids(VALID["encrypt_decrypt_long_msg"], "pattern"),
)
def test_encrypt_decrypt_long_msg(case: dict) -> None:
    plaintext = case["pattern"] * case["repeat"]
    assert sha256(plaintext.encode()).hexdigest() == case["plaintext_sha256"]
    conv = bytes.fromhex(case["conversation_key"])
    payload = nip44.encrypt(plaintext, conv, bytes.fromhex(case["nonce"]))
    assert sha256(payload.encode()).hexdigest() == case["payload_sha256"]
    assert nip44.decrypt(payload, conv) == plaintext


@pytest.mark.parametrize("length", INVALID["encrypt_msg_lengths"])
def test_invalid_encrypt_msg_lengths(length: int) -> None:
    with pytest.raises(Nip44Error) as refused:
        nip44.encrypt("a" * length, bytes(32))
    assert refused.value.reason is Nip44Reason.INVALID_PLAINTEXT_LENGTH


@pytest.mark.parametrize(
    "case", INVALID["get_conversation_key"], ids=_ids(INVALID["get_conversation_key"])
)
def test_invalid_get_conversation_key(case: dict) -> None:
    result = nip44.conversation_key(case["sec1"], case["pub2"])
    assert isinstance(result, Nip44Error)
    assert result.reason in {Nip44Reason.INVALID_SECRET_KEY, Nip44Reason.INVALID_PUBLIC_KEY}


def _expected_reason(note: str) -> Nip44Reason:
    table = {k: v for k, v in json.loads(REASONS_PATH.read_text()).items() if not k.startswith("_")}
    matches = [reason for prefix, reason in table.items() if note.startswith(prefix)]
    assert matches, f"no reason mapped for vector note {note!r}"
    return Nip44Reason(matches[0])


@pytest.mark.parametrize("case", INVALID["decrypt"], ids=_ids(INVALID["decrypt"]))
def test_invalid_decrypt(case: dict) -> None:
    result = nip44.decrypt(case["payload"], bytes.fromhex(case["conversation_key"]))
    assert isinstance(result, Nip44Error)
    assert result.reason is _expected_reason(case["note"])


def test_cached_conversation_key_matches_uncached() -> None:
    case = VALID["get_conversation_key"][0]
    assert nip44.cached_conversation_key(case["sec1"], case["pub2"]) == nip44.conversation_key(
        case["sec1"], case["pub2"]
    )


@pytest.mark.parametrize("garbage", ["", "A" * 131, "!" * 200, None, 12])
def test_decrypt_never_raises_on_garbage(garbage: object) -> None:
    assert isinstance(nip44.decrypt(garbage, bytes(32)), Nip44Error)  # type: ignore[arg-type]


def test_invalid_utf8_plaintext_is_a_value() -> None:
    # hand-build a correctly MACed payload whose plaintext bytes are not UTF-8
    conv, nonce = bytes(range(32)), bytes(32)
    chacha_key, chacha_nonce, hmac_key = nip44.message_keys(conv, nonce)
    padded = (2).to_bytes(2, "big") + b"\xff\xfe" + bytes(30)
    ciphertext = nip44._chacha20(chacha_key, chacha_nonce, padded)
    mac = hmac.digest(hmac_key, nonce + ciphertext, "sha256")
    payload = base64.b64encode(b"\x02" + nonce + ciphertext + mac).decode()
    result = nip44.decrypt(payload, conv)
    assert isinstance(result, Nip44Error) and result.reason is Nip44Reason.INVALID_UTF8


def test_random_nonce_round_trip_differs_each_time() -> None:
    conv = bytes(range(32))
    first, second = nip44.encrypt("hello", conv), nip44.encrypt("hello", conv)
    assert first != second
    assert nip44.decrypt(first, conv) == nip44.decrypt(second, conv) == "hello"


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=65535))
def test_padding_is_a_chunk_multiple_that_fits(length: int) -> None:
    padded = nip44.calc_padded_len(length)
    assert padded >= max(length, 32)
    assert padded == 32 or padded % 32 == 0
    assert padded < 2 * max(length, 32)  # never more than double


@settings(max_examples=150, deadline=None)
@given(
    st.text(min_size=1, max_size=400),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
)
def test_round_trip_and_single_bit_flips_are_caught(
    plaintext: str, conv: bytes, nonce: bytes
) -> None:
    payload = nip44.encrypt(plaintext, conv, nonce)
    assert nip44.decrypt(payload, conv) == plaintext
    raw = bytearray(base64.b64decode(payload))
    raw[len(raw) // 2] ^= 0x01
    flipped = nip44.decrypt(base64.b64encode(bytes(raw)).decode(), conv)
    assert isinstance(flipped, Nip44Error) and flipped.reason is Nip44Reason.INVALID_MAC
    wrong_key = nip44.decrypt(payload, bytes(b ^ 0xFF for b in conv))
    assert isinstance(wrong_key, Nip44Error) and wrong_key.reason is Nip44Reason.INVALID_MAC
