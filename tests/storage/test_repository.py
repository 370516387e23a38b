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
    # a released bond whose cancel LND has not confirmed yet is still watched; a confirmed one is not
    unconfirmed = dict(_bond(rows, 8, ORDER_B, T2, "released", created_at=140),
                       invoice_state="accepted", release_confirmed_at=None)
    confirmed = dict(_bond(rows, 9, ORDER_B, T3, "released", created_at=150),
                     invoice_state="canceled", release_confirmed_at=None)
    repository.upsert_bond(unconfirmed)
    repository.upsert_bond(confirmed)
    assert race["t1_a_old"]["release_confirmed_at"] is not None  # sample row: confirmed, not watched
    found = repository.open_hold_invoices()
    assert found[0] == (escrow_hash, None)
    watched = ("maker_a", "t1_b", "t2_a", "t1_a")
    assert found[1:] == [(race[k]["hash"], race[k]["invoice_state"]) for k in watched] + [
        (unconfirmed["hash"], "accepted")]
    hash_hex, last_state = found[-1]  # unpacks as a pair
    assert hash_hex == unconfirmed["hash"] and last_state == "accepted"


def test_order_id_for_hash_and_payout(race: dict, rows: dict) -> None:
    repository.upsert_order(_order(rows, "cccccccc-0000-4000-8000-000000000003", "active", "ee" * 32, 50))
    assert repository.order_id_for_hash("ee" * 32) == "cccccccc-0000-4000-8000-000000000003"
    assert repository.order_id_for_hash(race["t2_a"]["hash"]) == ORDER_A  # a bond's hash
    assert repository.order_id_for_hash("ff" * 32) is None
    assert repository.order_id_for_payout(rows["order"]["payout_payment_hash"]) == ORDER_A
    assert repository.order_id_for_payout("ff" * 32) is None


def test_live_order_ids(race: dict, rows: dict) -> None:
    repository.upsert_order(_order(rows, "cccccccc-0000-4000-8000-000000000003", "success", None, 50))
    repository.upsert_order(_order(rows, "dddddddd-0000-4000-8000-000000000004", "expired", None, 60))
    repository.upsert_bond(_bond(rows, 10, "dddddddd-0000-4000-8000-000000000004", T3, "locked", 61))
    # success without bonds: gone; expired but still holding a bond: live; A and B are not terminal
    assert repository.live_order_ids() == ["dddddddd-0000-4000-8000-000000000004", ORDER_A, ORDER_B]


def test_identity_has_pending_take(db: peewee.Database, rows: dict) -> None:
    buyer, seller = rows["order"]["master_buyer_pubkey"], rows["order"]["master_seller_pubkey"]
    repository.upsert_order(_order(rows, ORDER_A, "waiting-buyer-invoice"))
    assert repository.identity_has_pending_take(buyer, "sell") is True
    assert repository.identity_has_pending_take(buyer, "buy") is False
    assert repository.identity_has_pending_take(seller, "sell") is False
    repository.upsert_order(_order(rows, ORDER_A, "waiting-payment"))
    assert repository.identity_has_pending_take(seller, "buy") is True
    assert repository.identity_has_pending_take(buyer, "sell") is False
    repository.upsert_order(_order(rows, ORDER_A, "active"))
    assert not repository.identity_has_pending_take(seller, "buy")


def test_orders_of_identity_keeps_request_order(db: peewee.Database, rows: dict) -> None:
    buyer = rows["order"]["master_buyer_pubkey"]
    repository.upsert_order(_order(rows, ORDER_A, created_at=1))
    repository.upsert_order(_order(rows, ORDER_B, created_at=2))
    other = dict(_order(rows, "cccccccc-0000-4000-8000-000000000003"), master_buyer_pubkey="77" * 32,
                 master_seller_pubkey="78" * 32)
    repository.upsert_order(other)
    found = repository.orders_of_identity([ORDER_B, other["id"], "missing", ORDER_A, ORDER_B], buyer)
    assert [o.id for o in found] == [ORDER_B, ORDER_A]
    assert repository.orders_of_identity([ORDER_A], "55" * 32) == []


def test_restore_data(db: peewee.Database, rows: dict) -> None:
    me = "aa" * 32
    as_buyer = dict(_order(rows, ORDER_A, "active", created_at=1), master_buyer_pubkey=me, trade_index_buyer=4)
    as_seller = dict(_order(rows, ORDER_B, "pending", created_at=2), master_seller_pubkey=me,
                     master_buyer_pubkey=None, trade_index_seller=None)
    done = dict(_order(rows, "cccccccc-0000-4000-8000-000000000003", "canceled-by-admin", created_at=3),
                master_buyer_pubkey=me)
    disputed = dict(_order(rows, "dddddddd-0000-4000-8000-000000000004", "dispute", created_at=4),
                    master_seller_pubkey=me, trade_index_seller=6, buyer_dispute=False, seller_dispute=True)
    for row in (as_buyer, as_seller, done, disputed):
        repository.upsert_order(row)
    repository.upsert_dispute(dict(rows["dispute"], order_id=disputed["id"], status="initiated", solver_pubkey=None))
    orders, disputes = repository.restore_data(me)
    assert orders == [
        repository.RestoredOrder(ORDER_A, 4, "active"),
        repository.RestoredOrder(ORDER_B, 0, "pending"),
    ]
    assert disputes == [repository.RestoredDispute(
        rows["dispute"]["id"], disputed["id"], 6, "initiated", "seller", None)]
    assert repository.restore_data("55" * 32) == ([], [])


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


def test_newest_done_publication_of_an_order(db: peewee.Database) -> None:
    assert repository.newest_done_publication("PublishOrder", ORDER_A) is None
    pending = repository.enqueue_effect(ORDER_A, "PublishOrder", "nostr", "{}", now=10)
    success = repository.enqueue_effect(ORDER_A, "PublishOrder", "nostr", "{}", now=11)
    repository.enqueue_effect(ORDER_A, "SendMessage", "nostr", "{}", now=12)
    assert repository.newest_done_publication("PublishOrder", ORDER_A) is None  # none confirmed
    repository.mark_outbox_done(success, now=30)
    repository.mark_outbox_done(pending, now=25)
    assert repository.newest_done_publication("PublishOrder", ORDER_A) == (success, 30)
    assert repository.newest_done_publication("PublishDispute", ORDER_A) is None


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
