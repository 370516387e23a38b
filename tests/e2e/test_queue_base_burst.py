"""multiprocQueueBase under a burst: two top-level actors flooding each other must not stall.

Thespian's queue transport gives each actor a 10-message queue (the admin, which relays every
message between top-level actors, 40) and blocks a sender on a full one: a burst of requests
one way and replies the other way deadlocked the daemon (messages dropped after 20 s). The
project's thespian fix (actors/thespian_compat.py, installed by importing `actors`) makes the
queues unbounded; this checks the burst completes and nothing is lost.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import pytest
from thespian.actors import Actor, ActorSystem

import actors  # noqa: F401 - installs the thespian fixes before the system starts

BURST = 300


@dataclass(frozen=True)
class Go:
    peer: Any
    count: int


@dataclass(frozen=True)
class Ping:
    number: int


@dataclass(frozen=True)
class Pong:
    number: int


@dataclass(frozen=True)
class Done:
    pongs: tuple[int, ...]


class Pinger(Actor):
    def __init__(self) -> None:
        super().__init__()
        self._asker: Any = None
        self._expected = 0
        self._pongs: list[int] = []

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, Go):
            self._asker, self._expected = sender, message.count
            for number in range(message.count):  # all at once: the peer cannot keep up
                self.send(message.peer, Ping(number))
        elif isinstance(message, Pong):
            self._pongs.append(message.number)
            if len(self._pongs) == self._expected:
                self.send(self._asker, Done(tuple(self._pongs)))


class Ponger(Actor):
    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, Ping):
            self.send(sender, Pong(message.number))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.multiproc
def test_a_burst_between_two_actors_completes_in_order() -> None:
    system = ActorSystem("multiprocQueueBase", {"Admin Port": free_port()},
                         transientUnique=True)
    try:
        pinger, ponger = system.createActor(Pinger), system.createActor(Ponger)
        done = system.ask(pinger, Go(ponger, BURST), 15)
        assert isinstance(done, Done), done  # None: stalled (the bounded queues deadlocked)
        assert done.pongs == tuple(range(BURST))
    finally:
        system.shutdown()
