"""simpleSystemBase with `thespian_compat.fast_simple_base` installed (by importing `actors`).

A real simpleSystemBase system: messages still arrive in the order they were sent, wake-ups
still fire, exited children are forgotten by their parent, and `listen(slice)` with the next
wake-up beyond the slice waits out the slice instead of returning at once (callers listening
in a loop spun on that, holding the GIL from the relay and Lightning threads), unless another
thread hands the system a message meanwhile: that wakes it at once.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import timedelta

from thespian.actors import Actor, ActorExitRequest, ChildActorExited, WakeupMessage

import actors  # noqa: F401 - installs the fixes
from actors.thespian_compat import _Children, _PendingSends
from tests.conftest import wait_until


class Recorder(Actor):
    """Keeps what it gets; answers "log" with it, asks for a wake-up on "wake"."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[object] = []

    def receiveMessage(self, message: object, sender: object) -> None:
        if message == "log":
            self.send(sender, list(self.seen))
        elif isinstance(message, tuple) and message[0] == "wake":
            self.wakeupAfter(timedelta(seconds=message[1]), payload="woke")
        elif isinstance(message, WakeupMessage):
            self.seen.append(message.payload)
        elif message == "register":
            self.listener = sender
        elif message == "ping":
            self.send(self.listener, "pong")
        else:
            self.seen.append(message)


class Parent(Actor):
    """Makes children on demand, retires them all on "retire", counts their exits."""

    def __init__(self) -> None:
        super().__init__()
        self.children: list[object] = []
        self.exited = 0

    def receiveMessage(self, message: object, sender: object) -> None:
        if isinstance(message, int):
            self.children += [self.createActor(Recorder) for _ in range(message)]
        elif message == "retire":
            for child in self.children:
                self.send(child, ActorExitRequest())
            self.children = []
        elif isinstance(message, ChildActorExited):
            self.exited += 1
        elif message == "count":
            self.send(sender, self.exited)



def test_the_pending_sends_are_a_fifo(simple_system) -> None:
    assert isinstance(simple_system._systemBase._pendingSends, _PendingSends)
    recorder = simple_system.createActor(Recorder)
    for number in range(500):
        simple_system.tell(recorder, number)
    assert simple_system.ask(recorder, "log", 5) == list(range(500))


def test_the_pending_sends_can_grow_while_they_are_listed() -> None:
    pending = _PendingSends([1, 2])
    seen = []
    for item in pending:  # as a status request lists them, while a thread appends
        seen.append(item)
        pending.append(item + 10)
    assert seen == [1, 2] and list(pending) == [1, 2, 11, 12]
    assert pending.pop(0) == 1


def test_a_wakeup_still_fires(simple_system) -> None:
    recorder = simple_system.createActor(Recorder)
    simple_system.tell(recorder, ("wake", 0.05))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and simple_system.ask(recorder, "log", 1) != ["woke"]:
        simple_system.listen(0.02)
    assert simple_system.ask(recorder, "log", 1) == ["woke"]


def test_a_slice_ending_before_the_next_wakeup_is_waited_out(simple_system) -> None:
    recorder = simple_system.createActor(Recorder)
    simple_system.tell(recorder, ("wake", 30))
    started = time.monotonic()
    simple_system.listen(0.2)
    assert time.monotonic() - started >= 0.15  # thespian returned at once
    assert simple_system.ask(recorder, "log", 1) == []  # and the far wake-up is not due


def test_a_message_from_another_thread_wakes_the_listening_thread(simple_system) -> None:
    recorder = simple_system.createActor(Recorder)
    simple_system.tell(recorder, "register")  # answers go to this thread's listen
    simple_system.tell(recorder, ("wake", 60))  # so the listen below has a slice to wait out

    listening = threading.get_ident()

    def ping() -> None:
        # only once the listen below is in its slice with nothing to do (else no test)
        wait_until(lambda: _idle_in_a_slice(simple_system, listening), what="listen idle")
        with simple_system.private() as other_thread:
            other_thread.tell(recorder, "ping")

    threading.Thread(target=ping).start()
    # Slept through, the slice would end with the ping unhandled and listen would say None.
    assert simple_system.listen(10) == "pong"


def _idle_in_a_slice(system, thread_id: int) -> bool:
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code.co_name == "run_sends_batching":
            return not system._systemBase._pendingSends
        frame = frame.f_back
    return False


def test_exited_children_are_forgotten(simple_system) -> None:
    parent = simple_system.createActor(Parent)
    simple_system.tell(parent, 300)
    registry = simple_system._systemBase.actorRegistry
    children = registry[parent.actorAddressString]._yung
    assert isinstance(children, _Children) and len(children) == 300
    simple_system.tell(parent, "retire")
    assert simple_system.ask(parent, "count", 5) == 300
    assert len(children) == 0
    simple_system.tell(parent, 1)  # still makes children
    assert len(children) == 1


def test_deliveries_are_logged_only_when_thespian_debug_is_on(simple_system, caplog) -> None:
    import logging

    recorder = simple_system.createActor(Recorder)
    with caplog.at_level(logging.INFO, logger="Thespian"):
        simple_system.tell(recorder, "quiet")
    assert not [r for r in caplog.records if "got message" in r.getMessage()]
    with caplog.at_level(logging.DEBUG, logger="Thespian"):
        simple_system.tell(recorder, "loud")
    assert any("got message" in r.getMessage() and "loud" in r.getMessage()
               for r in caplog.records)
    assert simple_system.ask(recorder, "log", 5) == ["quiet", "loud"]
