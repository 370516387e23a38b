"""A retried order publication must not put an older status back (actors/publication_order.py).

The outbox stamps events when it sends them, so without this rule a "pending"
publication retried after "success" went out would be the newest on the relays.
"""

from __future__ import annotations

import dataclasses

from actors.order_logic.model import (
    DisputeRecord,
    OrderRecord,
    PublishDispute,
    PublishOrder,
    SendMessage,
)
from actors.publication_order import PublicationOrder, subject_of
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import Message

ORDER = OrderRecord(id="7dd204d2-d06c-4406-a3d9-4415f4a8b9c9", kind=Kind.SELL, status=Status.PENDING,
                    creator_pubkey="a" * 64, fiat_code="EUR", payment_method="SEPA", amount=10_000)
OTHER = dataclasses.replace(ORDER, id="0b0f0c55-70f4-4d6b-9a3c-6f1b0e0c1a2b")


def publish(order: OrderRecord, status: Status) -> PublishOrder:
    return PublishOrder(dataclasses.replace(order, status=status), str(status))


def test_a_retry_of_an_older_status_is_superseded_by_a_newer_one_sent() -> None:
    publications = PublicationOrder()
    assert not publications.superseded(10, publish(ORDER, Status.PENDING))
    assert not publications.superseded(12, publish(ORDER, Status.SUCCESS))
    assert publications.superseded(10, publish(ORDER, Status.PENDING))  # the retry
    assert not publications.superseded(12, publish(ORDER, Status.SUCCESS))  # its own retry
    assert not publications.superseded(13, publish(ORDER, Status.SUCCESS))


def test_orders_and_disputes_are_tracked_apart() -> None:
    publications = PublicationOrder()
    assert not publications.superseded(20, publish(ORDER, Status.ACTIVE))
    assert not publications.superseded(5, publish(OTHER, Status.PENDING))
    dispute = DisputeRecord("d1", ORDER.id, "initiated", "active", 1)
    assert not publications.superseded(6, PublishDispute(dispute, "a" * 64))
    assert publications.superseded(4, PublishDispute(dispute, "a" * 64))
    assert subject_of(PublishDispute(dispute, "a" * 64)) == ("PublishDispute", ORDER.id)
    assert subject_of(publish(ORDER, Status.ACTIVE)) == ("PublishOrder", ORDER.id)


def test_messages_and_transient_effects_are_never_superseded() -> None:
    publications = PublicationOrder()
    message = SendMessage("b" * 64, Message(Action.CANCELED, id=ORDER.id))
    assert not publications.superseded(30, publish(ORDER, Status.CANCELED))
    assert not publications.superseded(1, message)
    assert subject_of(message) is None
    assert not publications.superseded(None, publish(ORDER, Status.PENDING))


def test_after_a_restart_the_history_comes_from_the_outbox_table() -> None:
    """The table says effect 12 (success) was confirmed at 1,700,000,050: a re-sent 10
    (pending) is stale, and a later publication is stamped after the confirmation."""
    asked: list[tuple[str, str]] = []

    def history(effect: str, order_id: str) -> tuple[int, int] | None:
        asked.append((effect, order_id))
        return (12, 1_700_000_050) if order_id == ORDER.id and effect == "PublishOrder" else None

    publications = PublicationOrder(history)
    assert publications.superseded(10, publish(ORDER, Status.PENDING))
    assert not publications.superseded(14, publish(ORDER, Status.SUCCESS))
    assert publications.stamped_after(publish(ORDER, Status.SUCCESS)) == 1_700_000_050
    assert publications.stamped_after(publish(OTHER, Status.PENDING)) == 0
    assert not publications.superseded(3, publish(OTHER, Status.PENDING))
    assert asked == [("PublishOrder", ORDER.id), ("PublishOrder", OTHER.id)]  # once each


def test_a_new_order_is_not_looked_up_in_the_history() -> None:
    asked: list[tuple[str, str]] = []

    def history(effect: str, order_id: str) -> tuple[int, int] | None:
        asked.append((effect, order_id))
        return None

    publications = PublicationOrder(history)
    publications.new_order(ORDER.id)
    assert not publications.superseded(40, publish(ORDER, Status.PENDING))
    assert publications.stamped_after(publish(ORDER, Status.PENDING)) == 0
    assert asked == []
    assert not publications.superseded(7, publish(OTHER, Status.PENDING))  # not new: looked up
    assert asked == [("PublishOrder", OTHER.id)]
    publications.new_order(ORDER.id)  # said again later: what was sent still counts
    assert publications.superseded(39, publish(ORDER, Status.PENDING))
