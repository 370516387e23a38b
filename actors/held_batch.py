"""Items an actor holds for a few milliseconds after the first, then sends as one message.

On a multiprocess base every message is a transport hop that costs more CPU than the work it
carries, so the directory (committed effects for the outbox) and the outbox (publications for
the Nostr adapter) gather what a burst produces. On simpleSystemBase a message costs little and
nothing is held. The actor owns the wake-up: it calls `take` when its `wakeupAfter` with
`payload` comes back, and before it exits (held items are committed and due).

This module sends nothing itself and knows nothing of what the items are.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Generic, TypeVar

T = TypeVar("T")

HOLD = timedelta(milliseconds=10)


def holds_on(settings: Any) -> bool:
    """Whether the actor system `settings` describe gathers messages (every multiprocess base)."""
    return getattr(getattr(settings, "actors", None), "base", "simpleSystemBase") != "simpleSystemBase"


class HeldBatch(Generic[T]):
    def __init__(self, payload: str) -> None:
        self.payload = payload
        self.holding = False  # set once the actor knows its base
        self._items: list[T] = []

    def add(self, actor: Any, items: Iterable[T]) -> list[T]:
        """What to send now: `items` when not holding, else nothing (the first held item arms
        the actor's wake-up, which then calls `take`)."""
        if not self.holding:
            return list(items)
        if not self._items:
            actor.wakeupAfter(HOLD, payload=self.payload)
        self._items.extend(items)
        return []

    def take(self) -> list[T]:
        items, self._items = self._items, []
        return items
