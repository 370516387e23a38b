"""Group commit: the decisions the actors' thread makes in one burst share one transaction.

On simpleSystemBase every actor runs on one thread, one message after another, and each order
decision was its own transaction. Its COMMIT appends every page the decision touched to the
WAL (the order row and its indexes, the journal, the outbox and theirs), and that was a third of
the thread's time in benchmark (2). The thread now keeps one transaction open while messages
keep coming and commits it when its queue runs dry, or once `MAX_MEMBERS` decisions joined:
pages that several decisions touch are written once. A decision writes straight into that
transaction (`writes`): a savepoint around each one cost two statements of the decision's nine
(an eighth of the order actors' SQL time in benchmark (2)). So a decision whose writes fail part
way takes the group down with it (`abort`): the transaction is rolled back and every member
that joined hears why, as when the COMMIT fails. A decision tried again after that writes
`isolated()`ly, in a savepoint of its own, so one that fails every time is undone alone on its
second try and cannot take another group down.

The outbox rule is unchanged: whatever a decision sets off (its effects, its deadlines, the
directory told it was handled) runs only after its rows are committed. A member hands that over
as its `committed` callback. If the COMMIT fails, nothing of the group is stored, and every
member's `failed` callback runs instead (the order actor puts its state back and decides the
event again later).

Callbacks run on the same thread, between two deliveries, never while an actor handles a message.
What they would send one message each for, they may `gather` under a key instead: once every
callback ran, each key's items go out together through the first gatherer's `send`, so a burst
costs one message to the outbox (and one to the clock) instead of one per decision.
Where no thread batches (a multiprocess base runs one order actor per process), `current()`
is None and a decision commits at once, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from storage.database import database_proxy

log = logging.getLogger(__name__)

# enough to share the hot pages among a burst's decisions; small enough that the write lock and
# the decisions' answers are not held back long (≈ 10 ms of decisions)
MAX_MEMBERS = 32

Committed = Callable[[], None]
Failed = Callable[[Exception], None]
Send = Callable[[list[Any]], None]


class CommitGroup:
    """One open transaction and the members that wrote into it, oldest first."""

    def __init__(self) -> None:
        self._transaction: Any = None
        self._members: list[tuple[Committed, Failed]] = []
        self._gathered: dict[Any, tuple[Send, list[Any]]] = {}
        self._aborted_by: BaseException | None = None

    @property
    def size(self) -> int:
        return len(self._members)

    def open(self) -> None:
        """Begin the group's transaction unless it is open: call it before a member writes
        (`writes`), so that its writes land in the group. Raises what BEGIN raises."""
        if self._transaction is None:
            self._aborted_by = None  # asked right after an abort, not later: let it go
            transaction = database_proxy.atomic()
            transaction.__enter__()
            self._transaction = transaction

    def join(self, committed: Committed, failed: Failed) -> None:
        """A member whose writes are in the open transaction; one of its callbacks will run."""
        self._members.append((committed, failed))

    @property
    def is_open(self) -> bool:
        return self._transaction is not None

    def aborted_by(self, error: BaseException) -> bool:
        """True if `error` made this group roll back (`abort`)."""
        return self._aborted_by is error

    def abort(self, error: BaseException) -> None:
        """A member's writes failed part way: roll the open transaction back and run the
        `failed` callback of every member that joined (nothing of the group is stored)."""
        transaction, self._transaction = self._transaction, None
        members, self._members = self._members, []
        self._gathered = {}
        self._aborted_by = error
        if transaction is None:
            return
        log.error("a decision's writes failed (%s): rolling back the group of %d decisions",
                  error, len(members))
        try:
            transaction.__exit__(type(error), error, error.__traceback__)  # rolls back
        except Exception:  # noqa: BLE001 - the members must hear of it all the same
            log.exception("rolling back the group failed")
        if isinstance(error, Exception):  # not on KeyboardInterrupt/SystemExit: the thread ends
            for _, failed in members:
                _run(failed, error)

    def gather(self, key: Any, item: Any, send: Send) -> None:
        """From a `committed` callback: hand `item` to the send of `key` made once every
        callback of this flush ran (`send` of the first item gathered under `key` gets them all,
        in order)."""
        self._gathered.setdefault(key, (send, []))[1].append(item)

    def flush(self) -> None:
        """Commit, then run the members' `committed` callbacks in the order they joined and
        send what they gathered (or, if the COMMIT fails, run their `failed` callbacks: the
        transaction was rolled back)."""
        transaction, self._transaction = self._transaction, None
        members, self._members = self._members, []
        if transaction is None:
            return
        try:
            transaction.__exit__(None, None, None)  # commits; rolls back and raises if it cannot
        except Exception as error:  # noqa: BLE001 - every member hears of it, none is lost
            log.error("group commit of %d decisions failed: %s", len(members), error)
            for _, failed in members:
                _run(failed, error)
            return
        for committed, _ in members:
            _run(committed)
        gathered, self._gathered = self._gathered, {}
        for send, items in gathered.values():
            _run(send, items)


def _run(callback: Callable[..., None], *args: Any) -> None:
    try:
        callback(*args)
    except Exception:  # noqa: BLE001 - one member's bug must not cost the others their answers
        log.exception("group commit callback failed")


_local = threading.local()


def current() -> CommitGroup | None:
    """The group of this thread while it batches, else None (commit at once)."""
    return getattr(_local, "group", None)


@contextmanager
def batching() -> Iterator[CommitGroup]:
    """Make this thread batch its decisions until the block ends (then commit what is open).
    Re-entering on the same thread keeps the outer group."""
    group = current()
    if group is not None:
        yield group
        return
    group = _local.group = CommitGroup()
    try:
        yield group
    finally:
        _local.group = None
        group.flush()


@contextmanager
def writes() -> Iterator[None]:
    """Where a decision writes: straight into this thread's open group transaction (its
    failure aborts the group, see the module docstring), else in a transaction of its own (a
    savepoint when `isolated` or when a transaction is already open)."""
    group = current()
    if group is None or not group.is_open or getattr(_local, "isolated", False):
        with database_proxy.atomic():
            yield
        return
    try:
        yield
    except BaseException as error:
        group.abort(error)
        raise


@contextmanager
def isolated() -> Iterator[None]:
    """Decisions made in this block write in savepoints of their own (`writes`)."""
    before = getattr(_local, "isolated", False)
    _local.isolated = True
    try:
        yield
    finally:
        _local.isolated = before


def delivered(more: bool) -> None:
    """One message was handled on this thread: commit if no other is waiting (`more`) or the
    group is full."""
    group = current()
    if group is not None and (not more or group.size >= MAX_MEMBERS):
        group.flush()
