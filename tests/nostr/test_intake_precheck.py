"""The intake's split into pure checks (`actors.intake_precheck`) and the database stage, on a
real migrated SQLite database.

Only the Nostr adapter may say an event's outer signature was verified (its relay pool did); a
forged event handed to the intake any other way is still dropped. A precheck computed elsewhere
(the adapter's check worker) gives the same outcomes in the same order: the replay guard still
sits after unwrap, so a replayed event that fails its parse or signatures counts as replayed.
"""

from __future__ import annotations

import pickle
import time
import uuid
from typing import Any

import pytest

from actors.intake import Intake, IntakeHandlerFactory, IntakeResult
from actors.intake_precheck import IntakePrecheck, Precheck
from adapters.nostr import transport
from adapters.nostr.adapter_messages import InboundEvent
from adapters.nostr.keys import generate_keypair
from adapters.nostr.protocol.content import build_content
from adapters.nostr.protocol.enums import Action, Transport
from adapters.nostr.protocol.payloads import Message
from config.examples import EXAMPLE_PUBKEY_HEX, example_settings

SETTINGS = example_settings(mostro={"transport": "nip44"})


def take_sell(now: int, plaintext: str | None = None) -> dict[str, Any]:
    trade, identity = generate_keypair(), generate_keypair()
    message = Message(action=Action.TAKE_SELL, version=2, request_id=1, trade_index=1,
                      id=str(uuid.uuid4()))
    if plaintext is None:
        plaintext = build_content(message, Transport.NIP44, trade.secret_hex, identity.secret_hex)
    return transport.wrap_client_message(plaintext, trade.secret_hex, identity.secret_hex,
                                         EXAMPLE_PUBKEY_HEX, "nip44", now)


def forged(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "sig": ("0" if event["sig"][0] != "0" else "1") + event["sig"][1:]}


def worker_precheck(event: dict[str, Any], now: int) -> Precheck:
    """What the adapter's check worker hands back for an event its pool delivered."""
    check = pickle.loads(pickle.dumps(IntakePrecheck.from_settings(SETTINGS)))()
    return pickle.loads(pickle.dumps(check(event, now)))


def test_a_forged_event_handed_to_the_intake_directly_is_dropped(database_url: str) -> None:
    now = int(time.time())
    event = forged(take_sell(now))
    intake = Intake(SETTINGS)
    assert intake.handle(event, now) == IntakeResult(dropped="transport:bad_event_signature")
    # the handler too, for an InboundEvent nobody marked as verified by the pool
    handler = IntakeHandlerFactory(SETTINGS, database_url, "directory")()
    assert handler.handle_batch([InboundEvent(event, "ws://relay", time.time())]) == []
    assert handler.intake.dropped["transport:bad_event_signature"] == 1


def test_verified_skips_only_the_outer_signature(database_url: str) -> None:
    """Why only the adapter may set it: with it, the outer signature is not looked at again."""
    now = int(time.time())
    event = forged(take_sell(now))
    result = Intake(SETTINGS).handle(event, now, verified=True)
    assert result.dropped is None and result.route is not None
    undecryptable = {**forged(take_sell(now)), "content": "AAAA"}
    assert Intake(SETTINGS).handle(undecryptable, now, verified=True).dropped == (
        "transport:not_for_us")


def test_a_precheck_routes_like_the_inline_checks(database_url: str) -> None:
    now = int(time.time())
    event = take_sell(now)
    precheck = worker_precheck(event, now)
    assert precheck.content is None and precheck.identity and precheck.refused is None
    result = Intake(SETTINGS).handle(event, now, verified=True, precheck=precheck)
    assert result.dropped is None and result.route is not None
    assert result.route.event.sender == event["pubkey"]
    assert result.route.event.identity == precheck.identity


@pytest.mark.parametrize("use_precheck", [False, True], ids=["inline", "worker"])
def test_a_replayed_event_that_fails_its_parse_counts_as_replayed(
    database_url: str, use_precheck: bool
) -> None:
    now = int(time.time())
    event = take_sell(now, plaintext='[{"order":{"version":2}},null,null]')
    intake = Intake(SETTINGS)
    for expected in ("parse:", "replayed-event", "replayed-event"):
        precheck = worker_precheck(event, now) if use_precheck else None
        result = intake.handle(event, now, verified=use_precheck, precheck=precheck)
        assert result.dropped is not None and result.dropped.startswith(expected), result


def test_a_stale_event_is_stale_before_its_signatures_are_judged(database_url: str) -> None:
    now = int(time.time())
    old = now - 60
    trade = generate_keypair()
    message = Message(action=Action.TAKE_SELL, version=2, request_id=1, trade_index=1,
                      id=str(uuid.uuid4()))
    content = build_content(message, Transport.NIP44, trade.secret_hex, None)
    impostor = generate_keypair()  # the tuple's trade signature is not the author's
    event = transport.wrap_client_message(content, impostor.secret_hex, None,
                                          EXAMPLE_PUBKEY_HEX, "nip44", old)
    precheck = worker_precheck(event, now)
    assert precheck.refused is not None and precheck.refused.startswith("signature:")
    result = Intake(SETTINGS).handle(event, now, verified=True, precheck=precheck)
    assert result == IntakeResult(dropped="stale")


def test_a_precheck_for_another_event_is_not_trusted(database_url: str) -> None:
    now = int(time.time())
    good, bad = take_sell(now), forged(take_sell(now))
    result = Intake(SETTINGS).handle(bad, now, precheck=worker_precheck(good, now))
    assert result == IntakeResult(dropped="transport:bad_event_signature")


def test_inline_a_replay_costs_no_content_signature_checks(database_url: str, monkeypatch) -> None:
    """Without a worker result the content checks run after the replay guard, as before."""
    from actors import intake_precheck

    calls = []
    original = intake_precheck.verify_content
    monkeypatch.setattr(intake_precheck, "verify_content",
                        lambda *args: (calls.append(args), original(*args))[1])
    now = int(time.time())
    event = take_sell(now)
    intake = Intake(SETTINGS)
    assert intake.handle(event, now).route is not None
    assert intake.handle(event, now) == IntakeResult(dropped="replayed-event")
    assert len(calls) == 1


def test_an_opened_request_carries_the_key_its_reply_is_encrypted_with() -> None:
    """The check hands back the node's conversation key with the sender (the reply's), never
    printed; a gift wrap sealed by another key than the sender's carries none (that key was not
    computed), and neither does a dropped event."""
    from adapters.nostr import nip44

    node_secret = SETTINGS.nostr.secret_key_hex()
    now = int(time.time())
    event = take_sell(now)
    result = worker_precheck(event, now)
    assert result.conversation_key == nip44.conversation_key(node_secret, event["pubkey"])
    assert result.conversation_key.hex() not in repr(result)
    assert worker_precheck(forged(event), now).conversation_key is None

    v1 = example_settings(mostro={"transport": "gift-wrap"})
    check = IntakePrecheck.from_settings(v1).check
    trade, identity = generate_keypair(), generate_keypair()
    message = Message(action=Action.TAKE_SELL, version=1, request_id=1, trade_index=1,
                      id=str(uuid.uuid4()))
    reply_key = nip44.conversation_key(node_secret, trade.public_hex)
    for sealer, expected in ((trade, reply_key), (identity, None)):
        plaintext = build_content(message, Transport.GIFT_WRAP, trade.secret_hex, sealer.secret_hex)
        wrapped = transport.wrap_client_message(plaintext, trade.secret_hex, sealer.secret_hex,
                                                EXAMPLE_PUBKEY_HEX, "gift-wrap", now)
        opened = check(wrapped, now)
        assert opened.authentic and opened.sender == trade.public_hex
        assert opened.conversation_key == expected
