"""The Clock actor: turns the deadlines each order asks for into ``DeadlineReached`` events.

Orders send the complete set of deadlines they want after every decision, so a
restart only needs each order's state to rebuild the schedule. Deadlines fire
through the directory like every other order event. In manual mode (tests) time
moves only by ``SetManualTime``; otherwise wall time and ``wakeupAfter``.
This actor decides nothing about orders: a stale deadline is the order's to ignore.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from datetime import timedelta

from thespian.actors import Actor, WakeupMessage

from .messages import (
    RouteToOrder,
    RuntimeConfig,
    ScheduleBatch,
    ScheduleDeadlines,
    SetManualTime,
)
from .order_logic.model import Deadline, DeadlineReached

log = logging.getLogger(__name__)

MAX_SLEEP_SECONDS = 60.0


class DeadlineSchedule:
    """Pending deadlines per order, with the earliest first; no actor machinery here."""

    def __init__(self) -> None:
        self._by_order: dict[str, frozenset[Deadline]] = {}
        # (at, insertion number, order, deadline): the number breaks ties, because two
        # deadlines of one order due in the same second cannot be compared themselves
        self._heap: list[tuple[int, int, str, Deadline]] = []
        self._pushed = itertools.count()

    def replace(self, order_id: str, deadlines: tuple[Deadline, ...]) -> None:
        wanted = frozenset(deadlines)
        if self._by_order.get(order_id, frozenset()) == wanted:
            return
        if wanted:
            self._by_order[order_id] = wanted
        else:
            self._by_order.pop(order_id, None)
        for deadline in wanted:
            heapq.heappush(self._heap, (deadline.at, next(self._pushed), order_id, deadline))

    def pop_due(self, now: int) -> list[tuple[str, Deadline]]:
        due: list[tuple[str, Deadline]] = []
        while self._heap and self._heap[0][0] <= now:
            _, _, order_id, deadline = heapq.heappop(self._heap)
            current = self._by_order.get(order_id)
            if current is None or deadline not in current:
                continue  # superseded by a later ScheduleDeadlines
            remaining = current - {deadline}
            if remaining:
                self._by_order[order_id] = remaining
            else:
                del self._by_order[order_id]
            due.append((order_id, deadline))
        return due

    def next_at(self) -> int | None:
        while self._heap:
            at, _, order_id, deadline = self._heap[0]
            if deadline in self._by_order.get(order_id, frozenset()):
                return at
            heapq.heappop(self._heap)
        return None

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_order.values())


class ClockActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self._schedule = DeadlineSchedule()
        self._directory = None
        self._manual_now: int | None = None
        self._armed: set[float] = set()  # wall times of the wakeups asked for and not yet seen

    def receiveMessage(self, msg: object, sender: object) -> None:
        if isinstance(msg, RuntimeConfig):
            self._directory = msg.peers.directory
            self.send(sender, msg)
        elif isinstance(msg, ScheduleDeadlines):
            self._schedule.replace(msg.order_id, msg.deadlines)
            self._fire_due()
        elif isinstance(msg, ScheduleBatch):
            for schedule in msg.schedules:
                self._schedule.replace(schedule.order_id, schedule.deadlines)
            self._fire_due()
        elif isinstance(msg, SetManualTime):
            self._manual_now = msg.now
            self._fire_due()
            self.send(sender, msg)
        elif isinstance(msg, WakeupMessage):
            self._armed.discard(msg.payload)
            self._fire_due()

    def _now(self) -> int:
        return self._manual_now if self._manual_now is not None else int(time.time())

    def _fire_due(self) -> None:
        now = self._now()
        for order_id, deadline in self._schedule.pop_due(now):
            if self._directory is None:
                log.warning("deadline for order %s fired before the clock was configured", order_id)
                continue
            stamp = now if self._manual_now is not None else None
            self.send(self._directory, RouteToOrder(order_id, DeadlineReached(deadline), stamp))
        self._arm()

    def _arm(self) -> None:
        """Make sure a wakeup comes no later than the earliest deadline.

        A wakeup already asked for a later time does not count: a deadline
        scheduled after it (a 2-second waiting timeout while the clock sleeps
        towards a day-long expiry) must not wait for it. Wakeups cannot be
        canceled, so a superseded one simply finds nothing due.
        """
        if self._manual_now is not None:
            return
        next_at = self._schedule.next_at()
        if next_at is None:
            return
        now = time.time()
        wake_at = min(max(float(next_at), now), now + MAX_SLEEP_SECONDS) + 0.05
        if any(armed <= wake_at for armed in self._armed):
            return
        self._armed.add(wake_at)
        self.wakeupAfter(timedelta(seconds=wake_at - now), payload=wake_at)
