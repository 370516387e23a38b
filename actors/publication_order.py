"""Which order/dispute publications are stale: an older status must never replace a newer one.

Order (38383) and dispute events are addressable: relays keep the one with the
newest `created_at`. The outbox stamps an event when it sends it, so a publication
retried after a newer one went out (a relay refused it, the Nostr adapter was not
started yet after a restart) would come out newer and put an old status back on
the relays. Effects of one order are committed in decision order and their outbox
ids grow with it, so an effect older than one already sent for the same subject is
superseded: the outbox marks it done instead of publishing it.

It decides nothing else: messages to users (SendMessage) are never superseded.
"""

from __future__ import annotations

from typing import Any

from .order_logic import model


def subject_of(effect: Any) -> str | None:
    """The addressable event an effect replaces (its `d` tag), or None for other effects."""
    if isinstance(effect, model.PublishOrder):
        return f"order:{effect.order.id}"
    if isinstance(effect, model.PublishDispute):
        return f"dispute:{effect.dispute.id}"
    return None


class PublicationOrder:
    """The newest effect id sent per subject, in this outbox's lifetime."""

    def __init__(self) -> None:
        self._newest: dict[str, int] = {}

    def superseded(self, effect_id: int | None, effect: Any) -> bool:
        """True when a newer publication of the same subject was already sent; otherwise
        records this one as the newest."""
        subject = subject_of(effect)
        if subject is None or effect_id is None:
            return False
        if effect_id < self._newest.get(subject, effect_id):
            return True
        self._newest[subject] = effect_id
        return False
