"""The merging selector thespian's TCP transport uses (actors/thespian_compat.py).

Real sockets and pipes: a socket wanted twice must be reported once with both
events (epoll raised KeyError there and killed the actor), a closed descriptor
must still fail with EBADF (thespian's loop relies on it), and a real
multiprocTCPBase system must run with it installed.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
from thespian.actors import Actor, ActorSystem
from thespian.system.transport import TCPTransport

from actors import thespian_compat
from actors.thespian_compat import MergingPollSelector


def test_installed_by_importing_actors() -> None:
    assert TCPTransport.selectors.DefaultSelector is MergingPollSelector


def test_the_plain_selector_refuses_a_second_registration() -> None:
    """What thespian 4.0.1 hit: proves the merge below is needed."""
    left, right = socket.socketpair()
    with left, right:
        plain = selectors.DefaultSelector()
        plain.register(left.fileno(), selectors.EVENT_READ)
        with pytest.raises(KeyError):
            plain.register(left.fileno(), selectors.EVENT_WRITE)
        plain.close()


def test_a_descriptor_registered_twice_reports_both_events_once() -> None:
    left, right = socket.socketpair()
    fd = left.fileno()
    with left, right:
        right.sendall(b"x")
        selector = MergingPollSelector()
        selector.register(left.fileno(), selectors.EVENT_READ)
        selector.register(left.fileno(), selectors.EVENT_WRITE)
        selector.register(left.fileno(), selectors.EVENT_READ)
        ready = selector.select(1.0)
        selector.close()
    assert len(ready) == 1
    key, events = ready[0]
    assert key.fd == fd
    assert events == selectors.EVENT_READ | selectors.EVENT_WRITE


def test_only_the_registered_events_are_reported() -> None:
    left, right = socket.socketpair()
    fd = left.fileno()
    with left, right:
        selector = MergingPollSelector()
        selector.register(fd, selectors.EVENT_READ)
        assert selector.select(0) == []  # writable, but nobody asked
        right.sendall(b"x")
        (key, events), = selector.select(1.0)
    assert (key.fd, events) == (fd, selectors.EVENT_READ)


def test_a_closed_descriptor_fails_with_ebadf() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    os.close(write_fd)
    selector = MergingPollSelector()
    selector.register(read_fd, selectors.EVENT_READ)
    with pytest.raises(OSError) as failure:
        selector.select(0)
    assert failure.value.errno == errno.EBADF
    with pytest.raises(ValueError):
        MergingPollSelector().register(-1, selectors.EVENT_READ)


def test_a_timeout_with_nothing_ready_returns_nothing() -> None:
    read_fd, write_fd = os.pipe()
    try:
        selector = MergingPollSelector()
        selector.register(read_fd, selectors.EVENT_READ)
        assert selector.select(0.01) == []
    finally:
        os.close(read_fd)
        os.close(write_fd)


class Echo(Actor):
    def receiveMessage(self, message: object, sender: object) -> None:
        if isinstance(message, int):
            self.send(sender, message + 1)


@pytest.fixture
def tcp_system():
    thespian_compat.install()  # idempotent
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    system = ActorSystem("multiprocTCPBase", {"Admin Port": port})
    yield system
    system.shutdown()


@pytest.mark.multiproc
def test_a_tcp_actor_system_runs_on_it(tcp_system) -> None:
    echo = tcp_system.createActor(Echo)
    assert [tcp_system.ask(echo, n, 10) for n in range(50)] == list(range(1, 51))


@dataclass(frozen=True)
class Loud:
    """A message that notes in a file each time something formats it."""

    marker: str

    def __str__(self) -> str:
        with open(self.marker, "a") as notes:
            notes.write("formatted\n")
        return "Loud"


class Mirror(Actor):
    def receiveMessage(self, message, sender):  # type: ignore[no-untyped-def]
        if isinstance(message, Loud):
            self.send(sender, message)


@pytest.mark.multiproc
def test_sending_does_not_format_the_message_for_a_debug_line_nobody_writes(
        tmp_path: Path, tcp_system) -> None:
    """thespian 4.0.1 builds str(message) before every send for a DEBUG line its logger drops
    (the full repr of a batch of effects, 8-13 % of a busy actor's CPU)."""
    marker = tmp_path / "formatted"
    mirror = tcp_system.createActor(Mirror)
    replies = [tcp_system.ask(mirror, Loud(str(marker)), 10) for _ in range(5)]
    assert replies == [Loud(str(marker))] * 5
    assert not marker.exists() or marker.read_text() == ""



class _WantsCapabilities(Actor):
    def __init__(self, capabilities: dict | None = None) -> None:
        super().__init__()
        self.capabilities = dict(capabilities or {})

    def receiveMessage(self, msg: object, sender: object) -> None:
        if msg == "capabilities":
            self.send(sender, self.capabilities)


class _WantsNothing(Actor):
    def receiveMessage(self, msg: object, sender: object) -> None:
        if msg == "hello":
            self.send(sender, "hello")


def test_actors_still_get_the_init_arguments_they_name_with_the_signature_cached() -> None:
    from thespian.system.utilis import withPossibleInitArgs

    assert getattr(withPossibleInitArgs.create, "_mostro_compat", False)
    system = ActorSystem("simpleSystemBase", {"marker": "yes"}, transientUnique=True)
    try:
        for _ in range(2):  # the second creation of each class uses the cached parameter names
            wants = system.createActor(_WantsCapabilities)
            assert system.ask(wants, "capabilities", 5).get("marker") == "yes"
            plain = system.createActor(_WantsNothing)
            assert system.ask(plain, "hello", 5) == "hello"
    finally:
        system.shutdown()
