"""RelayPool against real `nostr-relay` processes: subscribe, publish with OK tracking,
de-duplication across relays, addressable replacement, and reconnect after a relay dies."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from adapters.nostr.keys import generate_keypair
from adapters.nostr.relay_pool import (
    PoolSettings,
    RelayPool,
    SeenIds,
    Subscription,
    backoff_delay,
)
from tests.conftest import wait_until
from tests.fixtures.ws_server import ThreadedServer

FAST = PoolSettings(publish_timeout=3.0, backoff_initial=0.05, backoff_cap=0.5, connect_timeout=2.0)


@pytest.fixture
def pools() -> Iterator[list[RelayPool]]:
    """Pools made by a test; all are stopped at teardown."""
    made: list[RelayPool] = []
    try:
        yield made
    finally:
        for pool in made:
            pool.stop()


def start_pool(pools, recorder, urls, settings=FAST, **kw) -> RelayPool:
    pool = RelayPool(
        urls, recorder.on_event, recorder.on_published, recorder.on_status, settings=settings, **kw
    )
    pools.append(pool)
    pool.start()
    return pool


def inbox(pubkey: str, sub_id: str = "inbox") -> Subscription:
    return Subscription(sub_id, ({"kinds": [14], "#p": [pubkey]},), since_ago=60)


# --- pure parts ----------------------------------------------------------------------------


def test_backoff_grows_is_capped_and_jittered():
    settings = PoolSettings(backoff_initial=0.25, backoff_cap=4.0, backoff_jitter=0.5)
    rng = random.Random(7)
    delays = [backoff_delay(attempt, settings, rng) for attempt in range(12)]
    ceilings = [min(4.0, 0.25 * 2**attempt) for attempt in range(12)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays) <= 4.0
    assert len({round(d, 6) for d in delays[6:]}) > 1  # capped delays still differ


def test_seen_ids_forget_the_oldest_first():
    seen = SeenIds(capacity=3)
    for event_id in "abcd":
        seen.add(event_id)
    assert "a" not in seen and all(e in seen for e in "bcd") and len(seen) == 3


def test_subscription_recomputes_since_on_every_request():
    sub = Subscription("s", ({"kinds": [1059], "#p": ["ab"]},), since_ago=100)
    assert sub.request(1_000) == '["REQ","s",{"kinds":[1059],"#p":["ab"],"since":900}]'
    assert '"since":1900' in sub.request(2_000)
    assert "since" not in Subscription("s", ({"kinds": [1]},)).request(2_000)


# --- against real relays ---------------------------------------------------------------------


def test_published_event_comes_back_through_the_subscription(
    session_relay, pools, recorder, make_event
):
    node = generate_keypair().public_hex
    pool = start_pool(pools, recorder, [session_relay.url])
    pool.subscribe(inbox(node))
    wait_until(lambda: pool.connected_relays() == {session_relay.url})
    assert any(s.connected and s.url == session_relay.url for s in recorder.statuses)

    event = make_event(kind=14, tags=[["p", node]], content="hello")
    assert pool.publish(event, token="outbox-1") == event["id"]

    outcome = wait_until(lambda: recorder.outcome_for(event["id"]))
    assert outcome.token == "outbox-1"
    assert outcome.accepted and outcome.accepted_by == (session_relay.url,)
    assert outcome.rejected == () and outcome.timed_out == ()
    wait_until(lambda: event["id"] in recorder.event_ids())
    received, url = recorder.events[0]
    assert received == event and url == session_relay.url


def test_subscription_only_delivers_matching_events(session_relay, pools, recorder, make_event):
    node, other = generate_keypair().public_hex, generate_keypair().public_hex
    pool = start_pool(pools, recorder, [session_relay.url])
    pool.subscribe(inbox(node))
    wait_until(lambda: pool.connected_relays())
    for_other = make_event(kind=14, tags=[["p", other]])
    for_node = make_event(kind=14, tags=[["p", node]])
    pool.publish(for_other)
    pool.publish(for_node)
    wait_until(lambda: for_node["id"] in recorder.event_ids())
    wait_until(lambda: recorder.outcome_for(for_other["id"]))
    assert recorder.event_ids() == [for_node["id"]]


def test_event_reaching_two_relays_is_delivered_once(
    session_relay, relay, pools, recorder, make_event
):
    node = generate_keypair().public_hex
    pool = start_pool(pools, recorder, [session_relay.url, relay.url])
    pool.subscribe(inbox(node))
    wait_until(lambda: len(pool.connected_relays()) == 2)
    event = make_event(kind=14, tags=[["p", node]])
    pool.publish(event)
    outcome = wait_until(lambda: recorder.outcome_for(event["id"]))
    assert set(outcome.accepted_by) == {session_relay.url, relay.url}
    wait_until(lambda: pool.stats["duplicates"] == 1)  # the second copy arrived and was dropped
    assert recorder.event_ids() == [event["id"]]


def test_seen_hook_suppresses_events_the_owner_already_handled(
    session_relay, pools, recorder, make_event
):
    node = generate_keypair().public_hex
    old = make_event(kind=14, tags=[["p", node]], content="handled before a restart")
    new = make_event(kind=14, tags=[["p", node]], content="new")
    asked: list[str] = []

    def seen(event_id: str) -> bool:
        asked.append(event_id)
        return event_id == old["id"]

    pool = start_pool(pools, recorder, [session_relay.url], seen=seen)
    pool.subscribe(inbox(node))
    pool.publish(old)
    pool.publish(new)
    wait_until(lambda: new["id"] in recorder.event_ids())
    wait_until(lambda: old["id"] in asked)
    assert recorder.event_ids() == [new["id"]]


def test_invalid_event_is_reported_rejected_and_valid_one_accepted(
    relay, pools, recorder, make_event
):
    pool = start_pool(pools, recorder, [relay.url])
    good = make_event(kind=1, content="fine")
    forged = make_event(kind=1, content="forged")
    forged["sig"] = good["sig"]  # a real signature, over another id
    pool.publish(good, token="good")
    good_outcome = wait_until(lambda: recorder.outcome_for(good["id"]))
    assert good_outcome.accepted_by == (relay.url,)

    pool.publish(forged, token="forged")
    outcome = wait_until(lambda: recorder.outcome_for(forged["id"]))
    assert not outcome.accepted and outcome.timed_out == ()
    assert [url for url, _ in outcome.rejected] == [relay.url]
    assert "invalid" in outcome.rejected[0][1]
    assert [e["id"] for e in relay.query([{"ids": [good["id"], forged["id"]]}])] == [good["id"]]


def test_republishing_a_stored_event_counts_as_accepted(session_relay, pools, recorder, make_event):
    event = make_event(kind=1, content="twice")
    assert session_relay.publish(event).accepted
    pool = start_pool(pools, recorder, [session_relay.url])
    pool.publish(event, token="again")
    outcome = wait_until(lambda: recorder.outcome_for(event["id"]))
    assert outcome.accepted_by == (session_relay.url,)  # "duplicate:" means the relay has it


def test_addressable_event_republished_with_same_d_tag_leaves_one(
    session_relay, pools, recorder, make_event, author
):
    order_id = generate_keypair().public_hex  # a unique d tag
    now = int(time.time())
    # nostr-relay 1.14 replaces only strictly older versions: the second is a second newer
    first = make_event(kind=38383, tags=[["d", order_id], ["s", "pending"]], created_at=now - 1)
    second = make_event(kind=38383, tags=[["d", order_id], ["s", "canceled"]], created_at=now)
    pool = start_pool(pools, recorder, [session_relay.url])
    for event in (first, second):
        pool.publish(event)
        assert wait_until(lambda e=event: recorder.outcome_for(e["id"])).accepted

    stored = session_relay.query(
        [{"kinds": [38383], "authors": [author.public_hex], "#d": [order_id]}]
    )
    assert [e["id"] for e in stored] == [second["id"]]


def test_publication_times_out_when_no_relay_answers(relay_factory, pools, recorder, make_event):
    down = relay_factory(start=False)  # nothing listens on its port
    pool = start_pool(pools, recorder, [down.url], settings=PoolSettings(publish_timeout=0.3))
    event = make_event(kind=1)
    pool.publish(event, token=7)
    outcome = wait_until(lambda: recorder.outcome_for(event["id"]))
    assert outcome.token == 7 and not outcome.accepted and outcome.timed_out == (down.url,)
    assert pool.connected_relays() == frozenset()
    assert any(not s.connected and s.error for s in recorder.statuses)


def test_publications_time_out_each_at_its_own_deadline(relay_factory, pools, recorder,
                                                        make_event):
    """One timer serves every open publication: each still times out a full `publish_timeout`
    after it was handed over, in the order they were, and not at an earlier one's deadline."""
    down = relay_factory(start=False)
    timeout = 0.4
    pool = start_pool(pools, recorder, [down.url], settings=PoolSettings(publish_timeout=timeout))
    events = [make_event(kind=1, content=str(index)) for index in range(3)]
    published_at: dict[str, float] = {}
    for event in events:
        published_at[event["id"]] = time.monotonic()
        pool.publish(event, token=event["id"])
        time.sleep(timeout / 4)  # spacing the deadlines apart is what is tested, not a wait
    wait_until(lambda: len(recorder.outcomes) == 3, timeout=10)
    reported_at = time.monotonic()
    assert [outcome.token for outcome in recorder.outcomes] == [e["id"] for e in events]
    assert all(outcome.timed_out == (down.url,) for outcome in recorder.outcomes)
    # the last one's deadline had to pass before all three were reported
    assert reported_at - published_at[events[-1]["id"]] >= timeout


def test_relay_killed_mid_test_then_restarted(relay_factory, pools, recorder, make_event):
    steady, flaky = relay_factory(), relay_factory()
    node = generate_keypair().public_hex
    settings = PoolSettings(publish_timeout=1.0, backoff_initial=0.05, backoff_cap=0.5)
    pool = start_pool(pools, recorder, [steady.url, flaky.url], settings=settings)
    pool.subscribe(inbox(node))
    wait_until(lambda: len(pool.connected_relays()) == 2)

    flaky.kill()
    wait_until(lambda: pool.connected_relays() == {steady.url})
    while_down = make_event(kind=14, tags=[["p", node]], content="while down")
    pool.publish(while_down, token="down")
    outcome = wait_until(lambda: recorder.outcome_for(while_down["id"]))
    assert outcome.accepted_by == (steady.url,) and outcome.timed_out == (flaky.url,)
    wait_until(lambda: while_down["id"] in recorder.event_ids())  # delivered by the live relay

    flaky.start()  # same port, same database
    wait_until(lambda: len(pool.connected_relays()) == 2, timeout=15)
    # the queued publication reached the restarted relay after the reconnect
    wait_until(lambda: flaky.query([{"ids": [while_down["id"]]}]), timeout=10)
    # and the subscription was re-sent: an event stored only on the restarted relay arrives
    only_flaky = make_event(kind=14, tags=[["p", node]], content="only on the restarted relay")
    assert flaky.publish(only_flaky).accepted
    wait_until(lambda: only_flaky["id"] in recorder.event_ids())
    assert recorder.events[-1][1] == flaky.url
    assert recorder.event_ids().count(while_down["id"]) == 1


def test_stop_ends_the_thread_and_refuses_new_work(session_relay, recorder, make_event):
    pool = RelayPool([session_relay.url], recorder.on_event, recorder.on_published)
    pool.start()
    wait_until(lambda: pool.connected_relays())
    pool.stop()
    assert not pool.running
    with pytest.raises(RuntimeError):
        pool.publish(make_event())


# --- a scripted relay, for answers nostr-relay never gives -------------------------------------


class ScriptedRelay:
    """A websocket server on 127.0.0.1 that answers each client message with `script(message)`."""

    def __init__(self, script) -> None:
        self.received: list[list] = []
        self._script = script
        self._server = ThreadedServer(self._handle)
        self.url = self._server.url

    def _handle(self, ws) -> None:
        for text in ws:
            message = json.loads(text)
            self.received.append(message)
            for answer in self._script(message):
                ws.send(answer if isinstance(answer, str) else json.dumps(answer))

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedRelay]]:
    made: list[ScriptedRelay] = []

    def make(script) -> ScriptedRelay:
        made.append(ScriptedRelay(script))
        return made[-1]

    try:
        yield make
    finally:
        for server in made:
            server.close()


def test_rate_limited_event_is_retried_until_accepted(scripted, pools, recorder, make_event):
    answers = iter([False, False, True])

    def script(message):
        if message[0] == "EVENT":
            if next(answers):
                return [["OK", message[1]["id"], True, ""]]
            return [["OK", message[1]["id"], False, "rate-limited: slow down"]]
        return []

    server = scripted(script)
    pool = start_pool(pools, recorder, [server.url])
    event = make_event()
    pool.publish(event, token="t")
    outcome = wait_until(lambda: recorder.outcome_for(event["id"]))
    assert outcome.accepted_by == (server.url,) and outcome.rejected == ()
    assert [m[0] for m in server.received] == ["EVENT", "EVENT", "EVENT"]


def test_rejection_with_an_empty_id_is_matched_to_the_oldest_unanswered(
    scripted, pools, recorder, make_event
):
    def script(message):
        if message[0] != "EVENT":
            return []
        if message[1]["content"] == "bad":
            return [["OK", "", False, "invalid: nope"]]
        return [["OK", message[1]["id"], True, ""]]

    server = scripted(script)
    pool = start_pool(pools, recorder, [server.url])
    bad, good = make_event(content="bad"), make_event(content="good")
    pool.publish(bad)
    pool.publish(good)
    assert wait_until(lambda: recorder.outcome_for(bad["id"])).rejected == (
        (server.url, "invalid: nope"),
    )
    assert wait_until(lambda: recorder.outcome_for(good["id"])).accepted_by == (server.url,)


def test_relay_chatter_is_survived_and_only_valid_events_delivered(
    scripted, pools, recorder, make_event
):
    valid = make_event(kind=14, content="valid")
    forged = dict(make_event(kind=14, content="forged"), content="tampered")

    def script(message):
        if message[0] != "REQ":
            return []
        sub = message[1]
        return [
            "not json",
            # JSON the pool's parser refuses (orjson): each is dropped like "not json"
            f'["EVENT", "{sub}", {{"id": NaN}}]',
            '["NOTICE", "\\ud800"]',  # a lone surrogate
            f'["EVENT", "{sub}", {{"kind": 123456789012345678901234567890}}]',
            '{"an": "object"}',
            ["NOTICE", "hello"],
            ["AUTH", "challenge"],
            ["EVENT", "someone-else", valid],
            ["EVENT", sub, forged],
            ["EVENT", sub, {"no": "id"}],
            ["EOSE", sub],
            ["CLOSED", sub, "error: shutting down"],
            ["EVENT", sub, valid],
        ]

    server = scripted(script)
    pool = start_pool(pools, recorder, [server.url])
    pool.subscribe(Subscription("sub", ({"kinds": [14]},)))
    wait_until(lambda: recorder.event_ids() == [valid["id"]])
    assert pool.stats["invalid"] == 1
    wait_until(
        lambda: any(s.error and "error: shutting down" in s.error for s in recorder.statuses)
    )
    assert pool.connected_relays() == {server.url}


def test_relay_that_never_answers_the_handshake_times_out(pools, recorder, make_event):
    with socket.socket() as listener:  # accepts TCP (kernel backlog), never speaks websocket
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"ws://127.0.0.1:{listener.getsockname()[1]}"
        settings = PoolSettings(connect_timeout=0.3, publish_timeout=0.5, backoff_cap=0.2)
        pool = start_pool(pools, recorder, [url], settings=settings)
        event = make_event()
        pool.publish(event)
        status = wait_until(lambda: next((s for s in recorder.statuses if s.error), None))
        assert status.url == url and not status.connected
        assert wait_until(lambda: recorder.outcome_for(event["id"])).timed_out == (url,)


def test_hung_relay_is_detected_by_pings_and_reconnected(relay, pools, recorder, make_event):
    settings = PoolSettings(ping_interval=0.3, backoff_initial=0.05, backoff_cap=0.3)
    pool = start_pool(pools, recorder, [relay.url], settings=settings)
    wait_until(lambda: pool.connected_relays() == {relay.url})
    relay.pause()
    try:
        # at most two silent ping intervals (0.6 s) before the ping that goes unanswered
        wait_until(lambda: pool.connected_relays() == frozenset(), timeout=10)
    finally:
        relay.resume()
    wait_until(lambda: pool.connected_relays() == {relay.url}, timeout=10)
    event = make_event()
    pool.publish(event)
    assert wait_until(lambda: recorder.outcome_for(event["id"])).accepted_by == (relay.url,)


# --- batches: events of one loop iteration, publications with one wake-up ---------------------


class BatchRecorder:
    """`on_events` calls, each as the list of event ids it carried."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[list[str]] = []

    def __call__(self, events: list[tuple[dict, str]]) -> None:
        with self.lock:
            self.batches.append([event["id"] for event, _ in events])

    def ids(self) -> list[str]:
        with self.lock:
            return [event_id for batch in self.batches for event_id in batch]


def start_batching_pool(pools, recorder, url: str) -> tuple[RelayPool, BatchRecorder, str]:
    """A started pool on `url` whose events go to a `BatchRecorder`, subscribed to the inbox
    of a fresh node key (returned last)."""
    node = generate_keypair().public_hex
    batches = BatchRecorder()
    pool = RelayPool([url], None, recorder.on_published, recorder.on_status,
                     on_events=batches, settings=FAST)
    pools.append(pool)
    pool.start()
    pool.subscribe(inbox(node))
    return pool, batches, node


def test_events_fed_together_reach_on_events_in_one_call_in_order(
    session_relay, pools, recorder, make_event
):
    pool, batches, node = start_batching_pool(pools, recorder, session_relay.url)
    events = [make_event(kind=14, tags=[["p", node]], content=str(i)) for i in range(6)]
    duplicate = json.dumps(["EVENT", "inbox", events[0]])
    gate = threading.Event()
    assert pool._loop is not None
    pool._loop.call_soon_threadsafe(gate.wait, 10)  # hold the loop while the feeds queue up
    for text in [json.dumps(["EVENT", "inbox", e]) for e in events] + [duplicate]:
        pool.feed(session_relay.url, text)
    gate.set()  # the loop's next iteration reads all seven
    wait_until(lambda: len(batches.ids()) == 6)
    assert batches.batches == [[e["id"] for e in events]]
    assert recorder.events == []


def test_texts_fed_in_one_call_arrive_as_one_batch_without_holding_the_loop(
    session_relay, pools, recorder, make_event
):
    pool, batches, node = start_batching_pool(pools, recorder, session_relay.url)
    events = [make_event(kind=14, tags=[["p", node]], content=str(i)) for i in range(5)]
    pool.feed(session_relay.url, *[json.dumps(["EVENT", "inbox", e]) for e in events])
    wait_until(lambda: len(batches.ids()) == 5)
    assert batches.batches == [[e["id"] for e in events]]


def test_a_pool_needs_exactly_one_event_callback(recorder):
    with pytest.raises(ValueError):  # a seen hook must only ever see verified ids
        RelayPool(["ws://127.0.0.1:1"], recorder.on_event, recorder.on_published,
                  seen=lambda event_id: False, verify=None)
    with pytest.raises(ValueError):
        RelayPool(["ws://127.0.0.1:1"], None, recorder.on_published)
    with pytest.raises(ValueError):
        RelayPool(["ws://127.0.0.1:1"], recorder.on_event, recorder.on_published,
                  on_events=lambda events: None)


def test_publish_many_sends_every_event_with_one_wake_up(
    session_relay, pools, recorder, make_event, monkeypatch
):
    pool = start_pool(pools, recorder, [session_relay.url])
    wait_until(lambda: pool.connected_relays() == {session_relay.url})
    events = [make_event(kind=1, content=f"many {i}") for i in range(5)]
    wake_ups = []
    loop = pool._loop
    assert loop is not None
    original = loop.call_soon_threadsafe
    monkeypatch.setattr(loop, "call_soon_threadsafe",
                        lambda *args: (wake_ups.append(args[0]), original(*args))[1])
    ids = pool.publish_many((event, f"token-{i}") for i, event in enumerate(events))
    assert ids == [event["id"] for event in events]
    assert len(wake_ups) == 1
    for i, event in enumerate(events):
        outcome = wait_until(lambda event=event: recorder.outcome_for(event["id"]))
        assert outcome.accepted and outcome.token == f"token-{i}"


def test_publish_many_refuses_the_whole_batch_for_an_event_without_id(
    session_relay, pools, recorder, make_event
):
    pool = start_pool(pools, recorder, [session_relay.url])
    good = make_event(kind=1, content="never sent")
    incomplete = {k: v for k, v in make_event(kind=1).items() if k != "id"}
    with pytest.raises(ValueError):
        pool.publish_many([(good, 1), (incomplete, 2)])
    marker = make_event(kind=1, content="marker")
    pool.publish(marker, token="marker")
    wait_until(lambda: recorder.outcome_for(marker["id"]))
    assert recorder.outcome_for(good["id"]) is None


def test_a_burst_beyond_the_queue_limit_is_sent_whole_to_a_connected_relay(
    session_relay, pools, recorder, make_event, monkeypatch
):
    """A connected relay gets a burst in one write per queue-full: nothing is dropped for
    exceeding `max_queued_per_relay`, which bounds only what waits for a relay that is down."""
    settings = PoolSettings(publish_timeout=5.0, max_queued_per_relay=8, connect_timeout=2.0)
    pool = start_pool(pools, recorder, [session_relay.url], settings=settings)
    wait_until(lambda: pool.connected_relays() == {session_relay.url})
    socket = pool._relays[session_relay.url].ws
    writes = []
    original = socket.write
    monkeypatch.setattr(socket, "write", lambda data: (writes.append(len(data)), original(data))[1])
    events = [make_event(kind=1, content=f"burst {i}") for i in range(20)]
    pool.publish_many((event, i) for i, event in enumerate(events))
    for event in events:
        outcome = wait_until(lambda event=event: recorder.outcome_for(event["id"]), timeout=10)
        assert outcome.accepted
    assert len(writes) == 3  # 8 + 8 + the last 4
