"""The thread→actor bridge: items put from threads are drained in order, and the pipe wakes a watcher."""

from __future__ import annotations

import select
import threading

import pytest

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
