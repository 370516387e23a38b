"""The thread→actor bridge: items put from threads are drained in order, the pipe wakes a
watcher, and on simpleSystemBase a put hands the actor a `WatchMessage` (no polling)."""

from __future__ import annotations

import select
import threading
import time

import pytest
from thespian.actors import Actor, WakeupMessage, WatchMessage

from actors.thespian_compat import thread_waker
from adapters.bridge import ThreadBridge


@pytest.mark.parametrize("can_watch", [True, False])
def test_items_from_many_threads_are_all_drained(can_watch: bool) -> None:
    bridge = ThreadBridge(can_watch)
    per_thread = 500

    def producer(tag: int) -> None:
        for i in range(per_thread):
            bridge.put((tag, i))

    threads = [threading.Thread(target=producer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items = bridge.drain()
    assert len(items) == 4 * per_thread
    for tag in range(4):
        assert [i for t, i in items if t == tag] == list(range(per_thread))
    assert bridge.drain() == []
    bridge.close()


def test_put_makes_the_watched_pipe_readable_until_drained() -> None:
    bridge = ThreadBridge(can_watch=True)
    watch = bridge.watch()
    assert watch is not None
    (fd,) = watch.filenos
    assert select.select([fd], [], [], 0)[0] == []
    threading.Thread(target=bridge.put, args=("hello",)).start()
    assert select.select([fd], [], [], 5.0)[0] == [fd]
    assert bridge.drain() == ["hello"]
    assert select.select([fd], [], [], 0)[0] == []
    bridge.close()


def test_without_watch_support_the_actor_is_told_to_poll() -> None:
    bridge = ThreadBridge.for_actor({})
    assert bridge.watch() is None
    assert not bridge.can_watch


class BridgeOwner(Actor):
    """On "start" makes a bridge and a thread that puts three items; forwards what it drains."""

    def __init__(self) -> None:
        super().__init__()
        self.bridge = ThreadBridge(can_watch=False)
        self.listener: object = None

    def receiveMessage(self, message: object, sender: object) -> None:
        if message == "start":
            self.listener = sender
            self.bridge.attach(self)
            self.send(sender, ("wakes on put", self.bridge.wakes_on_put))
            threading.Thread(target=lambda: [self.bridge.put(i) for i in "abc"]).start()
        elif isinstance(message, WatchMessage):
            for item in self.bridge.drain():
                self.send(self.listener, item)
        elif isinstance(message, WakeupMessage):
            self.send(self.listener, "polled")  # never asked for: must not happen


def test_on_the_simple_base_a_put_wakes_the_actor_without_polling(simple_system) -> None:
    owner = simple_system.createActor(BridgeOwner)
    assert simple_system.ask(owner, "start", 5) == ("wakes on put", True)
    got = []
    deadline = time.monotonic() + 10
    while len(got) < 3 and time.monotonic() < deadline:
        answer = simple_system.listen(0.5)
        if answer is not None:
            got.append(answer)
    assert got == ["a", "b", "c"]
    assert simple_system.listen(0.05) is None  # nothing else: no poll, no spare wake-up left


def test_other_bases_get_no_waker() -> None:
    assert thread_waker(object()) is None  # no simpleSystemBase behind it
    bridge = ThreadBridge(can_watch=True)
    bridge.attach(object())
    assert bridge.wakes_on_put and bridge.watch() is not None  # the pipe does the waking
    bridge.close()
    polling = ThreadBridge(can_watch=False)
    polling.attach(object())
    assert not polling.wakes_on_put
