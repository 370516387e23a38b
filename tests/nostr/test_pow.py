"""NIP-13: difficulty counting and nonce mining (cases in data/pow_cases.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.nostr import keys
from adapters.nostr.nostr_event import NostrEvent, compute_id
from adapters.nostr.pow import has_pow, mine, pow_bits

CASES = json.loads((Path(__file__).resolve().parent / "data" / "pow_cases.json").read_text())
AUTHOR = keys.keypair("0000000000000000000000000000000000000000000000000000000000000003")


@pytest.mark.parametrize("case", CASES["ids"], ids=[c["note"] for c in CASES["ids"]])
def test_pow_bits(case: dict) -> None:
    assert pow_bits(case["id"]) == case["bits"]
    assert has_pow(case["id"], case["bits"])
    if case["bits"] < 256 and len(case["id"]) == 64:
        assert not has_pow(case["id"], case["bits"] + 1)


@pytest.mark.parametrize("case", CASES["events"], ids=[c["note"] for c in CASES["events"]])
def test_published_example_events(case: dict) -> None:
    event_id = compute_id(
        case["pubkey"], case["created_at"], case["kind"], case["tags"], case["content"]
    )
    assert event_id == case["id"]
    assert pow_bits(event_id) == case["bits"]


@pytest.mark.parametrize("case", CASES["mining"], ids=[str(c["target"]) for c in CASES["mining"]])
def test_mine_reaches_target_and_keeps_a_valid_id(case: dict) -> None:
    mined = mine(
        AUTHOR.public_hex,
        1_800_000_000,
        case["kind"],
        case["tags"],
        case["content"],
        case["target"],
    )
    assert pow_bits(mined.id) >= case["target"]
    assert mined.has_valid_id()
    nonce_tags = [tag for tag in mined.tags if tag[0] == "nonce"]
    assert len(nonce_tags) == 1 and nonce_tags[0][2] == str(case["target"])
    assert mined.tags[-1] == nonce_tags[0]
    kept = [tuple(tag) for tag in case["tags"] if tag[0] != "nonce"]
    assert list(mined.tags[:-1]) == kept
    signed = mined.sign(AUTHOR)
    assert signed.verify()
    again = NostrEvent.from_json(signed.to_json())
    assert again == signed and again.verify()


def test_zero_target_adds_no_nonce_tag() -> None:
    event = mine(AUTHOR.public_hex, 1, 1, [], "plain", 0)
    assert event.tags == () and event.has_valid_id()
