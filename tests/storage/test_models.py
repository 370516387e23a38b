"""Every model round-trips every column (values from data/rows.json), including all taker_* columns."""

from __future__ import annotations

import peewee
import pytest

from storage import repository
from storage.models import Bond, Dispute, JournalEntry, Order, OutboxEffect, SeenEvent, User

TAKER_COLUMNS = (
    "taker_identity", "taker_trade_index", "taker_invoice", "taker_fiat_amount",
    "taker_amount", "taker_fee", "taker_dev_fee",
)

CASES = [
    ("order", Order), ("user", User), ("dispute", Dispute), ("bond", Bond),
    ("outbox", OutboxEffect), ("journal", JournalEntry), ("seen_event", SeenEvent),
]


def test_sample_rows_cover_every_column(rows: dict) -> None:
    for key, model in CASES:
        assert set(rows[key]) == set(model._meta.fields), key
        assert all(value is not None for value in rows[key].values()), key


@pytest.mark.parametrize(("key", "model"), CASES, ids=[c[0] for c in CASES])
def test_round_trip(db: peewee.Database, rows: dict, key: str, model: type[peewee.Model]) -> None:
    repository.upsert_order(rows["order"])
    if key != "order":
        model.insert(**rows[key]).execute()
    stored = model.get_by_id(rows[key][model._meta.primary_key.name])
    assert repository.as_dict(stored) == rows[key]
    for name, value in rows[key].items():
        assert type(getattr(stored, name)) is type(value), f"{key}.{name}"


def test_bond_taker_snapshot_columns(db: peewee.Database, rows: dict) -> None:
    repository.upsert_order(rows["order"])
    repository.upsert_bond(rows["bond"])
    stored = repository.bond_by_hash(rows["bond"]["hash"])
    assert stored is not None
    assert {c: getattr(stored, c) for c in TAKER_COLUMNS} == {c: rows["bond"][c] for c in TAKER_COLUMNS}
    # and each one may be null (maker bonds, pre-snapshot rows)
    cleared = dict(rows["bond"], **{c: None for c in TAKER_COLUMNS}, invoice_state=None, release_confirmed_at=None)
    repository.upsert_bond(cleared)
    again = repository.find_bond(rows["bond"]["id"])
    assert all(getattr(again, c) is None for c in TAKER_COLUMNS)


def test_upsert_overwrites_and_refuses_unknown_columns(db: peewee.Database, rows: dict) -> None:
    repository.upsert_order(rows["order"])
    changed = dict(rows["order"], status="success", amount=1, buyer_dispute=False)
    repository.upsert_order(changed)
    assert repository.as_dict(repository.find_order(rows["order"]["id"])) == changed
    assert Order.select().count() == 1
    with pytest.raises(KeyError, match="no column"):
        repository.upsert_order(dict(rows["order"], statuz="oops"))


def test_defaults_of_a_minimal_order(db: peewee.Database) -> None:
    Order.create(
        id="00000000-0000-4000-8000-000000000001", kind="buy", creator_pubkey="aa" * 32,
        status="pending", payment_method="cash", fiat_code="USD", created_at=10, expires_at=20,
    )
    stored = repository.find_order("00000000-0000-4000-8000-000000000001")
    assert (stored.amount, stored.fee, stored.dev_fee, stored.taken_at, stored.invoice_held_at) == (0, 0, 0, 0, 0)
    assert stored.price_from_api is False and stored.hash is None and stored.buyer_pubkey is None


def test_sql_defaults_fill_raw_inserts(db: peewee.Database) -> None:
    """Columns with defaults also default in the DDL (Mostro's schema does), not only in Python."""
    db.execute_sql(
        "INSERT INTO orders (id, kind, creator_pubkey, status, payment_method, fiat_code, created_at, expires_at)"
        f" VALUES ('00000000-0000-4000-8000-000000000002', 'sell', {db.param}, 'pending', 'cash', 'USD', 1, 2)",
        ("bb" * 32,),
    )
    stored = repository.find_order("00000000-0000-4000-8000-000000000002")
    assert stored.fiat_amount == 0 and stored.failed_payment is False and stored.premium == 0
