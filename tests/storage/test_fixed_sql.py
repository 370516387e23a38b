"""The hot statements run as fixed SQL text (`storage.fixed_sql`) give what the models give,
on SQLite and PostgreSQL: state read back by `load_state`, user rows made and raised by a
trade index, reputations, outbox ids and rows, and the journal decision text."""

from __future__ import annotations

import json
from dataclasses import replace

import peewee
import pytest

from actors import order_store, records_json
from actors.order_logic.model import Decision, DecisionContext, OrderState, RecordTradeIndex
from actors.reputation import maker_rating, reputations_for
from config.examples import example_settings
from storage import fixed_sql, models, repository
from storage.database import database_proxy

ORDER = "aaaaaaaa-0000-4000-8000-000000000001"
USER, OTHER = "11" * 32, "22" * 32


def _bond(rows: dict, n: int, created_at: int, state: str) -> dict:
    return dict(rows["bond"], id=f"00000000-0000-4000-8000-{n:012d}", order_id=ORDER,
                created_at=created_at, state=state, hash=f"{n:064x}", parent_bond_id=None,
                created_seq=None)


def test_placeholders_follow_the_backend(db: peewee.Database) -> None:
    text = 'SELECT 1 FROM "users" WHERE "pubkey" = ? AND "created_at" = ?'
    expected = text if db.param == "?" else text.replace("?", db.param)
    assert fixed_sql.prepared(text) == expected
    assert fixed_sql.placeholders(3) == "?, ?, ?"


def test_load_state_reads_what_the_models_read(db: peewee.Database, rows: dict) -> None:
    repository.upsert_order(dict(rows["order"], id=ORDER))
    # same second: the creation order (created_seq) must keep them apart, as BOND_ORDER does
    for n, state in ((3, "requested"), (1, "locked"), (2, "released")):
        repository.upsert_bond(_bond(rows, n, 500, state))
    repository.upsert_dispute(dict(rows["dispute"], order_id=ORDER))
    state = order_store.load_state(ORDER)
    assert state is not None
    row = models.Order.get_by_id(ORDER)
    assert state.order == order_store.order_record(row)
    assert [b.id[-1] for b in state.bonds] == ["3", "1", "2"]
    assert [b.state.value for b in state.bonds] == ["requested", "locked", "released"]
    assert state.dispute is not None and state.dispute.order_id == ORDER
    assert isinstance(state.order.price_from_api, bool)
    assert order_store.load_state("bbbbbbbb-0000-4000-8000-000000000002") is None
    assert order_store.load_states([ORDER])[ORDER] == state


def test_trade_index_creates_the_user_and_only_ever_raises(db: peewee.Database) -> None:
    assert repository.last_trade_index(USER) is None
    with database_proxy.atomic():
        order_store._apply_user_effect(RecordTradeIndex(USER, 5), 1_000)
    assert repository.last_trade_index(USER) == 5
    user = models.User.get_by_id(USER)
    assert (user.created_at, user.is_admin, user.total_reviews, user.category) == (1_000, False, 0, 0)
    with database_proxy.atomic():
        order_store._apply_user_effect(RecordTradeIndex(USER, 3), 2_000)  # lower: kept at 5
    assert repository.last_trade_index(USER) == 5
    assert models.User.get_by_id(USER).created_at == 1_000  # the existing row is untouched
    repository.record_trade_index(USER, 9, 3_000)
    assert repository.last_trade_index(USER) == 9
    assert models.User.get_by_id(USER).created_at == 1_000
    repository.record_trade_index(OTHER, 0, 4_000)  # a new user at index 0: the default
    assert repository.last_trade_index(OTHER) == 0
    assert models.User.get_by_id(OTHER).created_at == 4_000


def test_reputations_and_maker_rating(db: peewee.Database) -> None:
    now = 10 * 86400
    repository.upsert_user({"pubkey": USER, "created_at": 1, "total_rating": 4.5,
                            "total_reviews": 2})
    repository.upsert_user({"pubkey": OTHER, "created_at": now - 86400})
    found = reputations_for(None, [OTHER, USER, "33" * 32], now)
    assert list(found) == sorted([USER, OTHER])
    assert (found[USER].rating, found[USER].reviews, found[USER].operating_days) == (4.5, 2, 9)
    assert found[OTHER].operating_days == 1
    rating = maker_rating(USER)
    assert rating is not None
    assert (rating.total_rating, rating.total_reviews, rating.first_seen_at) == (4.5, 2, 1)
    assert maker_rating("33" * 32) is None


def test_outbox_ids_rows_and_done(db: peewee.Database) -> None:
    first = repository.enqueue_effect(ORDER, "SendMessage", "nostr", '{"a":1}', now=5)
    second = repository.enqueue_effect(None, "CancelHoldInvoice", "lightning", "{}", now=6)
    assert second > first
    rows = repository.outbox_rows([second, first, 424242])
    assert set(rows) == {first, second}
    assert rows[first].payload == '{"a":1}' and rows[first].done_at is None
    assert rows[second].order_id is None and rows[second].attempts == 0
    assert repository.mark_outbox_done(first, now=9) is True
    assert repository.mark_outbox_done(first, now=10) is False
    assert repository.newest_done_publication("SendMessage", ORDER) == (first, 9)
    rows = [("SendMessage", "nostr", f'{{"n":{n}}}') for n in range(3)]
    ids = repository.enqueue_effects(ORDER, rows, now=11)
    assert len(ids) == 3 and ids[0] > second and ids == sorted(ids)
    stored = repository.outbox_rows(ids)
    assert [stored[i].payload for i in ids] == [payload for _, _, payload in rows]
    assert repository.enqueue_effects(ORDER, rows[:1], now=12)[0] > ids[-1]
    assert repository.enqueue_effects(ORDER, [], now=13) == []
    assert repository.append_journal(ORDER, "{}", "{}", now=1) == 1
    assert repository.append_journal(ORDER, "{}", "{}", now=2) == 2
    assert repository.append_journal(ORDER, "{}", "{}", now=3, last_seq=2) == 3  # told, not read
    with pytest.raises(peewee.IntegrityError):  # told wrongly: the unique index refuses it
        with database_proxy.atomic():
            repository.append_journal(ORDER, "{}", "{}", now=4, last_seq=1)


@pytest.mark.parametrize("with_state", [False, True])
def test_the_journal_decision_text_is_the_dumped_object(with_state: bool) -> None:
    from actors.order_logic.model import SendMessage
    from adapters.nostr.protocol.enums import Action
    from adapters.nostr.protocol.payloads import Message

    ctx = DecisionContext(settings=example_settings(), now=7, entropy=b"\x01" * 32,
                          network="regtest", prices=None, reputations={})
    effects = (SendMessage(USER, Message(action=Action.CANCELED, id=ORDER)),
               RecordTradeIndex(USER, 2), SendMessage(OTHER, Message(action=Action.NEW_ORDER)))
    decision = Decision(state=None, effects=effects)
    state_part: dict = {"subject": ORDER, "changes": {"bonds": [], "note": "é"}} if with_state \
        else {"state": None}
    texts = [records_json.dumps(e) for e in effects]
    text = order_store._decision_text(ctx, decision, state_part, texts)
    expected = records_json.dumps({"context": order_store.journal_context(ctx),
                                   "effects": effects, "created_orders": (), **state_part})
    assert text == expected
    assert json.loads(text)["effects"][1]["identity"] == USER


def _stored_order_and_raised_premium(rows: dict, by: int) -> tuple[OrderState, OrderState]:
    """An order stored alone (no bonds, no dispute), its state read back, and that state with
    the premium raised by `by`."""
    repository.upsert_order(dict(rows["order"], id=ORDER))
    before = order_store.load_state(ORDER)
    assert before is not None and before.bonds == () and before.dispute is None
    return before, OrderState(order=replace(before.order, premium=before.order.premium + by),
                              bonds=(), dispute=None)


def test_a_state_saved_then_read_round_trips(db: peewee.Database, rows: dict) -> None:
    before, after = _stored_order_and_raised_premium(rows, 1)
    with database_proxy.atomic():
        order_store._save_state(before, after)
    assert order_store.load_state(ORDER) == after


def test_a_changed_state_writes_only_the_columns_that_differ(db: peewee.Database,
                                                             rows: dict) -> None:
    repository.upsert_order(dict(rows["order"], id=ORDER))
    repository.upsert_bond(_bond(rows, 1, 500, "requested"))
    before = order_store.load_state(ORDER)
    assert before is not None and len(before.bonds) == 1
    # a column changed behind the state's back: a whole-row write would put the old value back
    models.Order.update(fiat_amount=4242).where(models.Order.id == ORDER).execute()
    models.Bond.update(amount_sats=777).where(models.Bond.id == before.bonds[0].id).execute()
    bond = replace(before.bonds[0], state=before.bonds[0].state.__class__("locked"))
    after = OrderState(order=replace(before.order, premium=before.order.premium + 1),
                       bonds=(bond,), dispute=before.dispute)
    changes = {"order": after.order, "bonds": (bond,)}
    with database_proxy.atomic():
        order_store._save_state(before, after, changes)
    stored = order_store.load_state(ORDER)
    assert stored is not None
    assert stored.order.premium == after.order.premium and stored.order.fiat_amount == 4242
    assert stored.bonds[0].state.value == "locked" and stored.bonds[0].amount_sats == 777


def test_a_row_missing_under_a_known_state_is_written_whole(db: peewee.Database,
                                                            rows: dict) -> None:
    before, after = _stored_order_and_raised_premium(rows, 1)
    models.Order.delete().where(models.Order.id == ORDER).execute()
    with database_proxy.atomic():
        order_store._save_state(before, after, {"order": after.order, "bonds": ()})
    assert order_store.load_state(ORDER) == after


def test_the_journal_context_records_reputations_as_asdict_does() -> None:
    """journal_context writes UserInfo's fields by name (asdict's deep copy was a cost):
    a field added to UserInfo must reach the journal too."""
    from dataclasses import asdict

    from adapters.nostr.protocol.payloads import UserInfo

    info = UserInfo(rating=4.5, reviews=3, operating_days=12)
    ctx = DecisionContext(settings=example_settings(), now=7, entropy=b"\x01" * 32,
                          network="regtest", prices=None, reputations={USER: info})
    assert order_store.journal_context(ctx)["reputations"] == {USER: asdict(info)}


def test_a_whole_state_saved_over_an_existing_row_replaces_it(db: peewee.Database,
                                                              rows: dict) -> None:
    _, after = _stored_order_and_raised_premium(rows, 2)
    with database_proxy.atomic():
        order_store._save_state(None, after)  # no known state: one INSERT ... ON CONFLICT
    assert order_store.load_state(ORDER) == after
    assert models.Order.select().where(models.Order.id == ORDER).count() == 1
