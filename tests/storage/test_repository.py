"""Repository helpers: bonds scoped by order, pubkey, role and state; open invoices; outbox; journal; seen ids."""

from __future__ import annotations

import peewee
import pytest

import storage
from storage import repository

ORDER_A = "aaaaaaaa-0000-4000-8000-000000000001"
ORDER_B = "bbbbbbbb-0000-4000-8000-000000000002"
T1, T2, T3, MAKER = ("11" * 32, "22" * 32, "33" * 32, "99" * 32)


def _order(rows: dict, order_id: str, status: str = "pending", payment_hash: str | None = None,
           created_at: int = 100) -> dict:
    return dict(rows["order"], id=order_id, status=status, hash=payment_hash, created_at=created_at)


def _bond(rows: dict, n: int, order_id: str, pubkey: str, state: str, created_at: int,
          role: str = "taker") -> dict:
    return dict(
        rows["bond"], id=f"00000000-0000-4000-8000-{n:012d}", order_id=order_id, pubkey=pubkey,
        state=state, created_at=created_at, role=role, hash=f"{n:064x}", parent_bond_id=None,
    )


@pytest.fixture
def race(db: peewee.Database, rows: dict) -> dict[str, dict]:
    """Order A with three racing takers (one already released) and a maker bond; order B with one."""
    repository.upsert_order(_order(rows, ORDER_A, "waiting-taker-bond", created_at=100))
    repository.upsert_order(_order(rows, ORDER_B, "pending", created_at=200))
    bonds = {
        "t2_a": _bond(rows, 2, ORDER_A, T2, "requested", created_at=120),
        "t1_a_old": _bond(rows, 1, ORDER_A, T1, "released", created_at=105),
        "t1_a": _bond(rows, 3, ORDER_A, T1, "requested", created_at=130),
        "maker_a": _bond(rows, 4, ORDER_A, MAKER, "locked", created_at=101, role="maker"),
        "t1_b": _bond(rows, 5, ORDER_B, T1, "locked", created_at=110),
        "t3_b_done": _bond(rows, 6, ORDER_B, T3, "slashed", created_at=111),
    }
    with storage.write_transaction():
        for row in bonds.values():
            repository.upsert_bond(row)
    return bonds


def _ids(found: list) -> list[str]:
    return [bond.id for bond in found]


def test_active_bonds_of_order_oldest_first(race: dict) -> None:
    assert _ids(repository.active_bonds_of_order(ORDER_A)) == [
        race["maker_a"]["id"], race["t2_a"]["id"], race["t1_a"]["id"]]
    assert _ids(repository.active_bonds_of_order(ORDER_A, role="taker")) == [
        race["t2_a"]["id"], race["t1_a"]["id"]]
    assert _ids(repository.active_bonds_of_order(ORDER_B)) == [race["t1_b"]["id"]]


def test_active_bond_of_taker_is_scoped_by_order_and_pubkey(race: dict) -> None:
    assert repository.active_bond_of_taker(ORDER_A, T1).id == race["t1_a"]["id"]  # not the released one
    assert repository.active_bond_of_taker(ORDER_A, T2).id == race["t2_a"]["id"]
    assert repository.active_bond_of_taker(ORDER_B, T1).id == race["t1_b"]["id"]
    assert repository.active_bond_of_taker(ORDER_B, T2) is None
    assert repository.active_bond_of_taker(ORDER_B, T3) is None  # slashed is not active
    assert repository.active_bond_of_taker(ORDER_A, MAKER) is None  # a maker bond is not a taker's


def test_bond_by_hash_and_by_state(race: dict) -> None:
    assert repository.bond_by_hash(race["t2_a"]["hash"]).id == race["t2_a"]["id"]
    assert repository.bond_by_hash("ff" * 32) is None
    assert _ids(repository.bonds_by_state("locked")) == [race["maker_a"]["id"], race["t1_b"]["id"]]
    assert _ids(repository.bonds_by_state("released", "slashed")) == [
        race["t1_a_old"]["id"], race["t3_b_done"]["id"]]
    assert _ids(repository.active_bonds()) == [
        race["maker_a"]["id"], race["t1_b"]["id"], race["t2_a"]["id"], race["t1_a"]["id"]]
    assert len(repository.bonds_of_order(ORDER_A)) == 4


def test_bond_hashes_are_unique(race: dict, rows: dict) -> None:
    clash = _bond(rows, 7, ORDER_B, T2, "requested", created_at=300)
    clash["hash"] = race["t1_a"]["hash"]
    with pytest.raises(peewee.IntegrityError):
        with storage.write_transaction():
            repository.upsert_bond(clash)
    assert repository.find_bond(clash["id"]) is None


def test_open_hold_invoices(race: dict, rows: dict) -> None:
    escrow_hash = "ee" * 32
    repository.upsert_order(_order(rows, "cccccccc-0000-4000-8000-000000000003", "fiat-sent", escrow_hash, 50))
    repository.upsert_order(_order(rows, "dddddddd-0000-4000-8000-000000000004", "success", "dd" * 32, 60))
    repository.upsert_order(_order(rows, "eeeeeeee-0000-4000-8000-000000000005", "waiting-payment", None, 70))
    found = repository.open_hold_invoices()
    assert found[0] == repository.OpenInvoice(escrow_hash, "cccccccc-0000-4000-8000-000000000003", None)
    assert [(i.payment_hash, i.bond_id) for i in found[1:]] == [
        (race[k]["hash"], race[k]["id"]) for k in ("maker_a", "t1_b", "t2_a", "t1_a")]


def test_find_order_and_by_status(race: dict) -> None:
    assert repository.find_order(ORDER_A).status == "waiting-taker-bond"
    assert repository.find_order("nope") is None
    assert [o.id for o in repository.orders_by_status("pending", "waiting-taker-bond")] == [ORDER_A, ORDER_B]


def test_users_and_disputes(db: peewee.Database, rows: dict) -> None:
    repository.upsert_order(rows["order"])
    repository.upsert_user(rows["user"])
    repository.upsert_dispute(rows["dispute"])
    assert repository.find_user(rows["user"]["pubkey"]).total_rating == 4.375
    assert repository.dispute_of_order(rows["order"]["id"]).id == rows["dispute"]["id"]
    with pytest.raises(peewee.IntegrityError):  # one dispute per order, ever
        with storage.write_transaction():
            repository.upsert_dispute(dict(rows["dispute"], id="5b5b5b5b-0000-4000-8000-000000000000"))


def test_outbox_lifecycle(db: peewee.Database) -> None:
    first = repository.enqueue_effect(ORDER_A, "CancelHoldInvoice", "lightning", '{"hash": "01"}', now=10)
    second = repository.enqueue_effect(None, "PublishInfo", "nostr", "{}", now=11)
    third = repository.enqueue_effect(ORDER_A, "SendMessage", "nostr", '{"to": "x"}', now=12)
    assert [e.id for e in repository.undone_outbox()] == [first, second, third]
    assert [e.id for e in repository.undone_outbox(target="nostr")] == [second, third]
    repository.record_outbox_failure(first, "lnd unreachable")
    repository.record_outbox_failure(first, "still unreachable")
    failed = repository.undone_outbox(target="lightning")[0]
    assert (failed.attempts, failed.last_error) == (2, "still unreachable")
    assert repository.mark_outbox_done(first, now=20) is True
    assert repository.mark_outbox_done(first, now=21) is False  # duplicate confirmation
    assert repository.mark_outbox_done(9999, now=21) is False
    assert [e.id for e in repository.undone_outbox()] == [second, third]


def test_journal_sequence_per_order(db: peewee.Database) -> None:
    assert repository.append_journal(ORDER_A, '{"m": 1}', '{"d": 1}', now=1) == 1
    assert repository.append_journal(ORDER_B, '{"m": 1}', '{"d": 1}', now=2) == 1
    assert repository.append_journal(ORDER_A, '{"m": 2}', '{"d": 2}', now=3) == 2
    entries = repository.journal_of(ORDER_A)
    assert [(e.seq, e.message, e.decision, e.created_at) for e in entries] == [
        (1, '{"m": 1}', '{"d": 1}', 1), (2, '{"m": 2}', '{"d": 2}', 3)]
    assert repository.journal_of("other") == []


def test_seen_events(db: peewee.Database) -> None:
    assert repository.record_seen_event("01" * 32, now=100) is True
    assert repository.record_seen_event("01" * 32, now=101) is False
    assert repository.record_seen_event("02" * 32, now=200) is True
    assert repository.forget_seen_events_before(150) == 1
    assert repository.record_seen_event("01" * 32, now=300) is True


def test_transaction_rolls_back_every_write(db: peewee.Database, rows: dict) -> None:
    with pytest.raises(RuntimeError):
        with storage.write_transaction():
            repository.upsert_order(rows["order"])
            repository.enqueue_effect(rows["order"]["id"], "SendMessage", "nostr", "{}", now=1)
            repository.append_journal(rows["order"]["id"], "{}", "{}", now=1)
            raise RuntimeError("crash mid-decision")
    assert repository.find_order(rows["order"]["id"]) is None
    assert repository.undone_outbox() == []
    assert repository.journal_of(rows["order"]["id"]) == []
