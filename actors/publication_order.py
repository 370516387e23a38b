"""Which order/dispute publications are stale, and how late the next one must be stamped.

Order (38383) and dispute events are addressable: relays keep the one with the
newest `created_at` (the lowest id on a tie). The outbox stamps an event when it
sends it, so a publication retried after a newer one went out (a relay refused it,
the Nostr adapter was not started yet after a restart) would come out newer and put
an old status back on the relays. Effects of one order are committed in decision
order and their outbox ids grow with it, so an effect older than one already sent
or confirmed for the same subject is superseded: the outbox marks it done instead
of publishing it. After a restart the history comes from the outbox table, and the
next event is stamped after the last confirmed one (two statuses of one order in
the same second would otherwise tie).

It decides nothing else: messages to users (SendMessage) are never superseded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .order_logic import model

# (effect name, order id) -> (newest confirmed effect id, latest done_at) or None
History = Callable[[str, str], "tuple[int, int] | None"]


def subject_of(effect: Any) -> tuple[str, str] | None:
    """(effect name, order id) of an addressable publication, or None for other effects."""
    if isinstance(effect, model.PublishOrder):
        return "PublishOrder", effect.order.id
    if isinstance(effect, model.PublishDispute):
        return "PublishDispute", effect.dispute.order_id
    return None


def _no_history(_effect: str, _order_id: str) -> None:
    return None


class PublicationOrder:
    """The newest effect id sent per subject, seeded from the outbox table on first sight."""

    def __init__(self, history: History = _no_history) -> None:
        self._history = history
        self._newest: dict[tuple[str, str], int] = {}
        self._floor: dict[tuple[str, str], int] = {}

    def _seed(self, subject: tuple[str, str]) -> None:
        if subject in self._newest or subject in self._floor:
            return
        known = self._history(*subject)
        self._floor[subject] = known[1] if known else 0
        if known:
            self._newest[subject] = known[0]

    def new_order(self, order_id: str) -> None:
        """`order_id` was just created: it has no history to read (one query less per new
        order)."""
        subject = ("PublishOrder", order_id)
        if subject not in self._newest:
            self._floor.setdefault(subject, 0)

    def superseded(self, effect_id: int | None, effect: Any) -> bool:
        """True when a newer publication of the same subject was already sent or confirmed;
        otherwise records this one as the newest."""
        subject = subject_of(effect)
        if subject is None or effect_id is None:
            return False
        self._seed(subject)
        if effect_id < self._newest.get(subject, effect_id):
            return True
        self._newest[subject] = effect_id
        return False

    def stamped_after(self, effect: Any) -> int:
        """The newest confirmation time of an earlier publication of this subject (0 if none):
        its event must be stamped later than this."""
        subject = subject_of(effect)
        if subject is None:
            return 0
        self._seed(subject)
        return self._floor.get(subject, 0)
