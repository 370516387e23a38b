"""Codec: examples round-trip byte for byte, bad inputs give precise errors, verify() rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.nostr.protocol import (
    Action,
    Content,
    Message,
    ParseError,
    Transport,
    format_f64,
    parse_content,
    parse_message,
    serialize_message,
    verify_message,
)
from adapters.nostr.protocol.content import serialize_content

_DATA = Path(__file__).resolve().parent / "data"


def _rows(name: str) -> list[dict]:
    return [
        json.loads(line)
        for line in (_DATA / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def _expand(row: dict) -> str:
    text = row["input"]
    for placeholder, piece, count in row.get("expand", []):
        text = text.replace(placeholder, piece * count)
    return text


EXAMPLES = _rows("examples.jsonl")
BAD = _rows("bad.jsonl")


def _parse_any(text: str, lenient: bool = True) -> Message | Content | ParseError:
    if text.lstrip().startswith("["):
        return parse_content(text, None, lenient)
    return parse_message(text, lenient)


def _serialize_any(value: Message | Content) -> str:
    return serialize_content(value) if isinstance(value, Content) else serialize_message(value)


def _message_of(value: Message | Content) -> Message:
    return value.message if isinstance(value, Content) else value


@pytest.mark.parametrize("row", EXAMPLES, ids=lambda r: r["source"][-40:])
def test_example_parses_to_its_canonical_form(row: dict) -> None:
    parsed = _parse_any(row["input"])
    if "error" in row:
        assert isinstance(parsed, ParseError)
        assert row["error"] in str(parsed)
        return
    assert not isinstance(parsed, ParseError), str(parsed)
    assert _serialize_any(parsed) == row["canonical"]
    if "verify_ok" in row:
        assert (verify_message(_message_of(parsed)) is None) == row["verify_ok"]
    strict = _parse_any(row["input"], lenient=False)
    assert isinstance(strict, ParseError) == bool(row.get("lenient_only"))


@pytest.mark.parametrize(
    "row", [r for r in EXAMPLES if "canonical" in r], ids=lambda r: r["source"][-40:]
)
def test_canonical_form_round_trips_byte_for_byte(row: dict) -> None:
    parsed = _parse_any(row["canonical"], lenient=False)
    assert not isinstance(parsed, ParseError), str(parsed)
    assert _serialize_any(parsed) == row["canonical"]


def test_examples_cover_spec_lines_and_every_wrapper() -> None:
    spec = [r for r in EXAMPLES if r["source"].startswith("PROTOCOL.md §")]
    assert len(spec) >= 4
    wrappers = {
        _message_of(_parse_any(r["canonical"])).wrapper.value for r in EXAMPLES if "canonical" in r
    }
    assert {"order", "cant-do", "restore", "dm", "dispute"} <= wrappers
    lenient = [r for r in EXAMPLES if r.get("lenient_only")]
    assert lenient, "the docs' 2-element payment_request / bare dispute forms must be covered"


@pytest.mark.parametrize("row", BAD, ids=lambda r: r["case"])
def test_bad_input_is_refused_with_a_precise_error(row: dict) -> None:
    text = _expand(row)
    kind = row["kind"]
    if kind == "verify":
        parsed = parse_message(text)
        assert isinstance(parsed, Message), str(parsed)
        problem = verify_message(parsed)
        assert problem is not None and row["error"] in problem, problem
        return
    if kind == "message":
        result = parse_message(text)
    else:
        result = parse_content(text, Transport.GIFT_WRAP if kind == "v1" else Transport.NIP44)
    assert isinstance(result, ParseError), f"accepted: {result!r}"
    assert row["error"] in str(result), str(result)


def test_parse_accepts_a_decoded_object_and_bytes() -> None:
    text = '{"order":{"version":1,"id":"7dd204d2-d06c-4406-a3d9-4415f4a8b9c9","action":"release"}}'
    from_obj = parse_message(json.loads(text))
    from_bytes = parse_message(text.encode())
    assert from_obj == from_bytes == parse_message(text)
    assert isinstance(from_obj, Message) and from_obj.action is Action.RELEASE
    assert parse_message(b"\xff\xfe") == ParseError("", "invalid UTF-8: invalid start byte")


def test_unknown_body_keys_are_ignored_and_dropped() -> None:
    parsed = parse_message(
        '{"order":{"version":2,"pubkey":"x","id":"7dd204d2-d06c-4406-a3d9-4415f4a8b9c9",'
        '"action":"fiat-sent","extra":{"a":[1]}}}'
    )
    assert isinstance(parsed, Message)
    assert "pubkey" not in serialize_message(parsed)


def test_never_raises_on_odd_python_objects() -> None:
    for value in (None, 3, 2.5, "x", [], {"order": None}, {"order": {"version": 2**70}}, object()):
        assert isinstance(parse_message(value), ParseError)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (4.5, "4.5"),
        (4.0, "4.0"),
        (2.0, "2.0"),
        (0.1, "0.1"),
        (123456789.0, "123456789.0"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e16"),
        (1.5e17, "1.5e17"),
        (0.0001, "0.0001"),
        (1e-5, "0.00001"),
        (1e-6, "1e-6"),
        (1.25e-7, "1.25e-7"),
        (-3.75, "-3.75"),
        (float("inf"), "null"),
    ],
)
def test_floats_are_written_like_serde_json(value: float, text: str) -> None:
    assert format_f64(value) == text


@pytest.mark.parametrize(
    ("form", "ok"),
    [
        ("308e1272-d5f4-47e6-bd97-3504baea9c23", True),
        ("308E1272-D5F4-47E6-BD97-3504BAEA9C23", True),
        ("308e1272d5f447e6bd973504baea9c23", True),
        ("{308e1272-d5f4-47e6-bd97-3504baea9c23}", True),
        ("urn:uuid:308e1272-d5f4-47e6-bd97-3504baea9c23", True),
        ("{308e1272d5f447e6bd973504baea9c23}", False),
        ("308e1272-d5f4-47e6-bd97-3504baea9c2", False),
        ("308e1272-d5f447e6-bd97-3504baea9c23", False),
        ("g08e1272-d5f4-47e6-bd97-3504baea9c23", False),
        (" 308e1272-d5f4-47e6-bd97-3504baea9c23", False),
    ],
)
def test_uuid_forms_match_the_rust_uuid_crate(form: str, ok: bool) -> None:
    parsed = parse_message({"order": {"version": 1, "id": form, "action": "cancel"}})
    if ok:
        assert isinstance(parsed, Message)
        assert parsed.id == "308e1272-d5f4-47e6-bd97-3504baea9c23"
    else:
        assert isinstance(parsed, ParseError) and parsed.path == "order.id"


def test_raw_lone_surrogate_in_a_str_is_refused() -> None:
    text = '{"dm":{"version":2,"action":"send-dm","payload":{"text_message":"\ud800"}}}'
    assert parse_message(text) == ParseError("", "invalid UTF-8: lone surrogate")
    assert isinstance(parse_content(f"[{text},null]", Transport.GIFT_WRAP), ParseError)
