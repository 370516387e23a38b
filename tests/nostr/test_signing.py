"""Signing the node's publications beside the actors (adapters/nostr/signing.py).

A real relay pool against a real `nostr-relay` (which checks every id and signature), the
sign worker a real child process: what goes in as descriptions comes out as events the relay
accepts and the recipient can open, in order; a worker killed mid-run or switched off changes
nothing but where the signing happens; what cannot be signed is reported, not lost.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator

import pytest

from adapters.nostr import transport
from adapters.nostr.events import EventTemplate
from adapters.nostr.keys import generate_keypair
from adapters.nostr.relay_pool import PoolSettings, RelayPool, Subscription
from adapters.nostr.signing import Signing
from adapters.nostr.unsigned import SignerFactory, UnsignedReply
from tests.conftest import wait_until

FAST = PoolSettings(publish_timeout=3.0, backoff_initial=0.05, backoff_cap=0.5, connect_timeout=2.0)
NODE = generate_keypair()
NOW = int(time.time())  # relays refuse events from the future


@pytest.fixture
def pool(session_relay, recorder) -> Iterator[RelayPool]:
    pool = RelayPool([session_relay.url], recorder.on_event, recorder.on_published,
                     recorder.on_status, settings=FAST)
    pool.start()
    wait_until(lambda: pool.connected_relays() == {session_relay.url})
    try:
        yield pool
    finally:
        pool.stop()


def _replies(recipient: str, count: int, tag: str) -> list[tuple[UnsignedReply, str]]:
    return [(UnsignedReply(recipient, f'[{{"order":{{"tag":"{tag}-{i}"}}}},null]',
                           NOW - i, 1, transport.MODE_NIP44), f"{tag}-reply-{i}")
            for i in range(count)]


def _notes(count: int, tag: str) -> list[tuple[EventTemplate, str]]:
    return [(EventTemplate(1, NOW, (("t", tag),), f"note {i}"), f"{tag}-note-{i}")
            for i in range(count)]


def _accepted(recorder, tokens: list[str]) -> bool:
    by_token = {outcome.token: outcome for outcome in list(recorder.outcomes)}
    return all(token in by_token and by_token[token].accepted for token in tokens)


@pytest.mark.parametrize("worker", [True, False], ids=["worker", "inline"])
def test_descriptions_become_events_the_relay_accepts_and_the_recipient_opens(
        pool, recorder, worker: bool) -> None:
    client = generate_keypair()
    pool.subscribe(Subscription("signed", ({"kinds": [14], "#p": [client.public_hex]},),
                                since_ago=10 ** 9))
    signing = Signing(SignerFactory(NODE.secret_hex), pool, recorder.on_published, worker=worker)
    try:
        items = [*_replies(client.public_hex, 3, "a"), *_notes(2, "a")]
        signing.publish(items)
        wait_until(lambda: _accepted(recorder, [token for _, token in items]), timeout=20)
        assert (signing.worker_pid is not None) is worker
        wait_until(lambda: len(recorder.events) >= 3, timeout=10)
        opened = sorted(transport.unwrap_reply(event, client.secret_hex, transport.MODE_NIP44,
                                               expected_sender=NODE.public_hex)
                        for event, _ in recorder.events)
        assert [created_at for _, created_at in opened] == [NOW - i for i in range(3)]
        assert [text for text, _ in opened] == [item.plaintext for item, _ in items[:3]]
    finally:
        signing.stop()


def test_a_killed_worker_leaves_the_signing_to_the_adapter(pool, recorder) -> None:
    signing = Signing(SignerFactory(NODE.secret_hex), pool, recorder.on_published)
    try:
        first = _notes(2, "before-kill")
        signing.publish(first)
        wait_until(lambda: _accepted(recorder, [token for _, token in first]), timeout=20)
        pid = signing.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        then = _notes(3, "after-kill")
        signing.publish(then)
        wait_until(lambda: _accepted(recorder, [token for _, token in then]), timeout=20)
        assert signing.worker_pid is None
    finally:
        signing.stop()


def test_what_cannot_be_signed_is_reported_and_the_rest_goes_out(pool, recorder) -> None:
    signing = Signing(SignerFactory(NODE.secret_hex), pool, recorder.on_published)
    try:
        bad = (UnsignedReply("not-a-key", "[]", NOW, 1, transport.MODE_NIP44), "bad")
        good = _notes(2, "beside-bad")
        signing.publish([bad, *good])
        wait_until(lambda: _accepted(recorder, [token for _, token in good]), timeout=20)
        wait_until(lambda: any(o.token == "bad" for o in list(recorder.outcomes)), timeout=10)
        refused = next(o for o in recorder.outcomes if o.token == "bad")
        assert not refused.accepted and "could not sign" in refused.rejected[0][1]
    finally:
        signing.stop()


def test_the_signer_hands_back_the_relay_message_ready_to_send() -> None:
    """What the worker returns is the `["EVENT", event]` text of a correctly signed event: the
    daemon's process passes it to the relays as it is."""
    from adapters.nostr.relay_pool import Rendered, verify_event

    sign_one = SignerFactory(NODE.secret_hex)()
    (reply, _), = _replies(NODE.public_hex, 1, "rendered")
    (note, _), = _notes(1, "rendered")
    for item in (reply, note):
        out = sign_one(item, 0)
        assert isinstance(out, Rendered)
        verb, event = json.loads(out.message)
        assert verb == "EVENT" and event["id"] == out.event_id
        assert verify_event(event)
        assert event["pubkey"] == NODE.public_hex


@pytest.mark.parametrize("mode", [transport.MODE_NIP44, transport.MODE_GIFT_WRAP])
def test_a_reply_with_its_conversation_key_is_encrypted_with_it(mode: str) -> None:
    """Given the key, signing a reply computes none (no ECDH with the recipient) and the
    recipient opens it; given a wrong one, the recipient cannot: the key is what is used."""
    from dataclasses import replace

    from adapters.nostr import nip44
    from adapters.nostr.unsigned import sign

    client = generate_keypair()
    reply = UnsignedReply(client.public_hex, '[{"order":null},null]', NOW, 1, mode)
    key = nip44.conversation_key(NODE.secret_hex, client.public_hex)
    nip44.cached_conversation_key.cache_clear()
    event = sign(replace(reply, conversation_key=key), NODE.secret_hex)
    assert nip44.cached_conversation_key.cache_info().misses == 0
    assert transport.unwrap_reply(event, client.secret_hex, mode,
                                  expected_sender=NODE.public_hex) == (reply.plaintext, NOW)
    wrong = nip44.conversation_key(NODE.secret_hex, generate_keypair().public_hex)
    event = sign(replace(reply, conversation_key=wrong), NODE.secret_hex)
    assert isinstance(transport.unwrap_reply(event, client.secret_hex, mode),
                      transport.TransportError)


def test_conversation_keys_ride_on_replies_to_known_clients_only() -> None:
    from adapters.nostr.unsigned import ConversationKeys

    keys = ConversationKeys(capacity=2)
    keys.remember([("a", b"ka"), ("b", None), ("c", b"kc")])
    assert len(keys) == 2
    to_a, to_b, to_c = (UnsignedReply(who, "x", NOW, 1, transport.MODE_NIP44) for who in "abc")
    preset = UnsignedReply("a", "y", NOW, 1, transport.MODE_NIP44, conversation_key=b"own")
    note = EventTemplate(1, NOW, (), "note")
    out = keys.attach([(to_a, 1), (to_b, 2), (to_c, 3), (preset, 4), (note, 5)])
    assert [token for _, token in out] == [1, 2, 3, 4, 5]
    assert [getattr(item, "conversation_key", None) for item, _ in out] == [
        b"ka", None, b"kc", b"own", None]
    assert out[0][0] == to_a  # the key is not part of what the reply says
    keys.remember([("a", b"ka2"), ("d", b"kd")])  # c is now the oldest: dropped
    assert [getattr(item, "conversation_key", None) for item, _ in keys.attach(
        [(to_a, 1), (to_c, 3)])] == [b"ka2", None]
