"""`mostro-py decode` through its main(): real stdin/stdout text streams."""

from __future__ import annotations

import io
import json

import coincurve

from adapters.nostr.protocol import Action, Message, Transport, build_content
from adapters.nostr.protocol.decode_tool import main

TRADE_SECRET = "110e43647eae221ab1da33ddc17fd6ff423f2b2f49d809b9ffa40794a2ab996c"
IDENTITY_SECRET = "3fa9c5ad07d8bf3b5f9c7a38e8b0d3c2ee24b3ac6ad54e0ba8a3d1e1fa2c4b57"
TRADE_PUB = coincurve.PrivateKey(bytes.fromhex(TRADE_SECRET)).public_key_xonly.format().hex()
ORDER_ID = "308e1272-d5f4-47e6-bd97-3504baea9c23"
CANONICAL = (
    '{"order":{"version":1,"request_id":1,"trade_index":null,'
    '"id":"7dd204d2-d06c-4406-a3d9-4415f4a8b9c9","action":"fiat-sent","payload":null}}'
)


def _run(argv: list[str], lines: list[str]) -> tuple[int, list[str]]:
    stdout = io.StringIO()
    code = main(argv, io.StringIO("".join(line + "\n" for line in lines)), stdout)
    return code, stdout.getvalue().splitlines()


def test_messages_are_printed_canonically() -> None:
    loose = json.dumps(json.loads(CANONICAL)["order"] | {"extra": 1}, indent=None)
    code, out = _run([], [CANONICAL, '{"order": ' + loose + "}", ""])
    assert code == 0
    assert out == [CANONICAL, CANONICAL]


def test_errors_are_reported_per_line_and_set_exit_code() -> None:
    code, out = _run([], [CANONICAL, "{nope", '{"order":{"version":2,"action":"teleport"}}'])
    assert code == 1
    assert out[0] == CANONICAL
    assert out[1].startswith("error: invalid JSON")
    assert out[2] == "error: order.action: unknown action 'teleport'"


def test_tuples_are_re_serialized_by_length() -> None:
    v1 = f"[{CANONICAL}, null]"
    v2 = f"[ {CANONICAL},null , null]"
    code, out = _run([], [v1, v2, f"[{CANONICAL}]"])
    assert out[:2] == [f"[{CANONICAL},null]", f"[{CANONICAL},null,null]"]
    assert out[2] == "error: expected 2 (v1) or 3 (v2) elements, got 1"
    assert code == 1


def test_verify_checks_signatures_with_the_trade_pubkey() -> None:
    message = Message(action=Action.RELEASE, version=2, id=ORDER_ID, trade_index=4)
    signed = build_content(message, Transport.NIP44, TRADE_SECRET, IDENTITY_SECRET)
    tampered = signed.replace('"trade_index":4', '"trade_index":5')
    code, out = _run(["--verify", "--trade-pubkey", TRADE_PUB], [signed, tampered])
    assert code == 1
    assert out[0] == signed
    assert out[1] == "error: trade signature does not verify"


def test_verify_needs_the_trade_pubkey_for_signed_tuples() -> None:
    message = Message(action=Action.RELEASE, version=1, id=ORDER_ID)
    signed = build_content(message, Transport.GIFT_WRAP, TRADE_SECRET)
    unsigned = build_content(message, Transport.GIFT_WRAP)
    code, out = _run(["--verify"], [signed, unsigned])
    assert code == 1
    assert out == ["error: --trade-pubkey is required to verify this tuple's signatures", unsigned]


def test_verify_applies_mostro_core_verify_rules() -> None:
    no_id = '{"order":{"version":2,"action":"take-sell","payload":null}}'
    code, out = _run(["--verify"], [no_id])
    assert (code, out) == (1, ["error: verify: take-sell requires an id"])
    code, out = _run([], [no_id])
    assert code == 0


def test_bad_arguments_exit_2() -> None:
    stdout = io.StringIO()
    assert main(["--bogus"], io.StringIO(""), stdout) == 2
