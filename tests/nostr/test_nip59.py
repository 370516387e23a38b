"""NIP-59 gift wrap: layers, randomized timestamps, determinism, and every unwrap check."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.nostr import keys, nip44, nip59
from adapters.nostr.nip59 import Nip59Error, Nip59Reason, SeededEntropy, Unwrapped
from adapters.nostr.nostr_event import NostrEvent
from adapters.nostr.pow import pow_bits

LAYER_CASES = json.loads(
    (Path(__file__).resolve().parent / "data" / "nip59_layer_cases.json").read_text()
)["cases"]
NOW = 1_800_000_000
TWO_DAYS = 172_800

RECIPIENT = keys.keypair("0000000000000000000000000000000000000000000000000000000000000001")
IDENTITY = keys.keypair("0000000000000000000000000000000000000000000000000000000000000002")
TRADE = keys.keypair("0000000000000000000000000000000000000000000000000000000000000003")
STRANGER = keys.keypair("0000000000000000000000000000000000000000000000000000000000000004")


def _rumor(content: str = '[{"order":{"version":1,"action":"new-order"}},null]') -> NostrEvent:
    return nip59.make_rumor(TRADE.public_hex, content, NOW)


def test_round_trip_with_split_identity_and_trade_keys() -> None:
    rumor = _rumor()
    wrap = nip59.gift_wrap(rumor, IDENTITY, RECIPIENT.public_hex, NOW)
    assert wrap.kind == 1059 and wrap.verify()
    assert wrap.pubkey not in {IDENTITY.public_hex, TRADE.public_hex, RECIPIENT.public_hex}
    assert wrap.tags == (("p", RECIPIENT.public_hex),)
    opened = nip59.unwrap(wrap, RECIPIENT.secret_hex)
    assert opened == Unwrapped(wrap_id=wrap.id, seal_pubkey=IDENTITY.public_hex, rumor=rumor)


def test_nip59_same_author_rule_is_optional() -> None:
    wrap = nip59.gift_wrap(_rumor(), IDENTITY, RECIPIENT.public_hex, NOW)
    refused = nip59.unwrap(wrap, RECIPIENT.secret_hex, require_same_author=True)
    assert refused == Nip59Error(Nip59Reason.SENDER_MISMATCH)
    same = nip59.gift_wrap(_rumor(), TRADE, RECIPIENT.public_hex, NOW)
    assert isinstance(nip59.unwrap(same, RECIPIENT.secret_hex, require_same_author=True), Unwrapped)


@pytest.mark.parametrize("seed", range(20))
def test_timestamps_are_tweaked_into_the_past_only(seed: int) -> None:
    entropy = SeededEntropy(seed)
    rumor = _rumor()
    seal = nip59.make_seal(rumor, IDENTITY, RECIPIENT.public_hex, NOW, entropy)
    wrap = nip59.make_gift_wrap(seal, RECIPIENT.public_hex, NOW, entropy)
    assert rumor.created_at == NOW
    assert NOW - TWO_DAYS < seal.created_at <= NOW
    assert NOW - TWO_DAYS < wrap.created_at <= NOW
    assert seal.tags == () and seal.kind == 13 and seal.verify()


def test_timestamps_actually_vary() -> None:
    stamps = {
        nip59.gift_wrap(_rumor(), IDENTITY, RECIPIENT.public_hex, NOW).created_at for _ in range(8)
    }
    assert len(stamps) > 1


def test_seeded_entropy_makes_byte_exact_wraps() -> None:
    first = nip59.gift_wrap(_rumor(), IDENTITY, RECIPIENT.public_hex, NOW, SeededEntropy(7))
    second = nip59.gift_wrap(_rumor(), IDENTITY, RECIPIENT.public_hex, NOW, SeededEntropy(7))
    other = nip59.gift_wrap(_rumor(), IDENTITY, RECIPIENT.public_hex, NOW, SeededEntropy(8))
    assert first.to_json() == second.to_json()
    assert other.id != first.id and other.pubkey != first.pubkey


def test_expiration_and_pow_go_on_the_wrap() -> None:
    wrap = nip59.gift_wrap(
        _rumor(), IDENTITY, RECIPIENT.public_hex, NOW, expiration=NOW + 60, pow_bits=10
    )
    assert wrap.tag_values("expiration") == [str(NOW + 60)]
    assert wrap.tag_values("p") == [RECIPIENT.public_hex]
    assert pow_bits(wrap.id) >= 10 and wrap.verify()
    assert isinstance(nip59.unwrap(wrap, RECIPIENT.secret_hex), Unwrapped)


def test_wrong_recipient_is_not_for_us() -> None:
    wrap = nip59.gift_wrap(_rumor(), IDENTITY, RECIPIENT.public_hex, NOW)
    result = nip59.unwrap(wrap, STRANGER.secret_hex)
    assert isinstance(result, Nip59Error) and result.reason is Nip59Reason.WRAP_NOT_FOR_US


def test_wrong_kind_and_bad_outer_signature() -> None:
    wrap = nip59.gift_wrap(_rumor(), IDENTITY, RECIPIENT.public_hex, NOW)
    assert (
        nip59.unwrap(replace(wrap, kind=14), RECIPIENT.secret_hex).reason
        is Nip59Reason.NOT_A_GIFT_WRAP
    )
    flipped = wrap.sig[:-1] + ("0" if wrap.sig[-1] != "0" else "1")
    forged = replace(wrap, sig=flipped)
    assert nip59.unwrap(forged, RECIPIENT.secret_hex).reason is Nip59Reason.BAD_WRAP_SIGNATURE
    # a caller that verified the outer event itself may skip the check
    assert isinstance(nip59.unwrap(forged, RECIPIENT.secret_hex, verify_wrap=False), Unwrapped)


def _build_case(case: dict) -> NostrEvent:
    """Build a gift wrap by hand so one layer can be altered."""
    rumor = _rumor().to_dict()
    for field, value in case.get("rumor_patch", {}).items():
        if value is None:
            rumor.pop(field, None)
        else:
            rumor[field] = value
    seal_plaintext = case.get("seal_plaintext", json.dumps(rumor, separators=(",", ":")))
    seal_to = STRANGER if case.get("seal_to") == "stranger" else RECIPIENT
    seal_content = nip44.encrypt(
        seal_plaintext, nip44.conversation_key(IDENTITY.secret_hex, seal_to.public_hex)
    )
    seal = NostrEvent.signed(IDENTITY, NOW - 5, case.get("seal_kind", 13), [], seal_content)
    if case.get("corrupt_seal_sig"):
        seal = replace(
            seal, sig=seal.sig[:10] + ("a" if seal.sig[10] != "a" else "b") + seal.sig[11:]
        )
    wrap_plaintext = case.get("wrap_plaintext", seal.to_json())
    ephemeral = keys.generate_keypair()
    wrap_content = nip44.encrypt(
        wrap_plaintext, nip44.conversation_key(ephemeral.secret_hex, RECIPIENT.public_hex)
    )
    return NostrEvent.signed(ephemeral, NOW - 7, 1059, [["p", RECIPIENT.public_hex]], wrap_content)


@pytest.mark.parametrize("case", LAYER_CASES, ids=[c["name"] for c in LAYER_CASES])
def test_layer_checks(case: dict) -> None:
    wrap = _build_case(case)
    options = {"rumor_kind": case["rumor_kind"]} if "rumor_kind" in case else {}
    result = nip59.unwrap(wrap, RECIPIENT.secret_hex, **options)
    if case["expected"] == "ok":
        assert isinstance(result, Unwrapped), result
        assert result.seal_pubkey == IDENTITY.public_hex
        assert result.rumor.pubkey == TRADE.public_hex and result.rumor.has_valid_id()
    else:
        assert isinstance(result, Nip59Error), result
        assert result.reason is Nip59Reason(case["expected"])
