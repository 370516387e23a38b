"""Optimisations the benchmarks called for, checked for equivalence (bench/profile_notes.md).

`order_store.load_states` replaces one `load_state` per live order at start-up (three queries
each) with three queries per 500 orders; it must return exactly what `load_state` returns.
"""

from __future__ import annotations

from pathlib import Path

from actors.messages import RuntimeConfig
from actors.order_actor import OrderProcessor
from actors.order_logic.model import ClientRequest
from actors.order_store import load_state, load_states
from adapters.nostr import keys
from adapters.nostr.protocol import Action, Kind, Message, OrderPayload, SmallOrder, Status
from config.examples import example_settings
from storage import migrate, open_database


def _order(amount: int) -> OrderPayload:
    return OrderPayload(SmallOrder(amount=amount, fiat_code="USD", fiat_amount=100,
                                   payment_method="SEPA", premium=0, kind=Kind.SELL,
                                   status=Status.PENDING))


def test_bulk_load_equals_one_by_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mostro.db'}"
    settings = example_settings(database={"url": url}, anti_abuse_bond={"enabled": True},
                                price={"fixed": {"USD": 100_000.0}})
    migrate(open_database(url))
    config = RuntimeConfig(settings, url)
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(4)]
    for index, order_id in enumerate(ids):
        maker, identity = keys.generate_keypair(), keys.generate_keypair()
        processor = OrderProcessor(order_id, config)
        processor.handle(ClientRequest(Message(
            Action.NEW_ORDER, version=2, request_id=1, trade_index=1, id=order_id,
            payload=_order(20_000 + index)), maker.public_hex, identity.public_hex), None)
        for _ in range((0, 1, 6, 0)[index]):  # takers, each with a requested bond; six
            # made in the same second catch any order other than load_state's (created_seq)
            taker, who = keys.generate_keypair(), keys.generate_keypair()
            processor.handle(ClientRequest(Message(
                Action.TAKE_SELL, version=2, request_id=2, trade_index=1, id=order_id),
                taker.public_hex, who.public_hex), None)
    one_by_one = {order_id: load_state(order_id) for order_id in ids}
    assert [len(state.bonds) for state in one_by_one.values()] == [0, 1, 6, 0]
    missing = "ffffffff-0000-4000-8000-000000000000"
    assert load_states([*ids, missing], chunk=3) == one_by_one


# ------------------------------------------------------------------ take storm (bench (3))
# The order actor's commit writes rows with fixed SQL text and journals only what changed
# (actors/journal_changes.py); the outbox reads and marks effects in batches. Each must store
# exactly what the slower path stored.

def _storm_processor(tmp_path: Path, takers: int) -> tuple[OrderProcessor, str]:
    url = f"sqlite:///{tmp_path / 'storm.db'}"
    settings = example_settings(database={"url": url}, anti_abuse_bond={"enabled": True},
                                price={"fixed": {"USD": 100_000.0}})
    migrate(open_database(url))
    order_id = "00000000-0000-4000-8000-0000000000bb"
    processor = OrderProcessor(order_id, RuntimeConfig(settings, url))
    maker, identity = keys.generate_keypair(), keys.generate_keypair()
    processor.handle(ClientRequest(Message(
        Action.NEW_ORDER, version=2, request_id=1, trade_index=1, id=order_id,
        payload=_order(50_000)), maker.public_hex, identity.public_hex), 1_000)
    for index in range(takers):
        taker, who = keys.generate_keypair(), keys.generate_keypair()
        processor.handle(ClientRequest(Message(
            Action.TAKE_SELL, version=2, request_id=index + 2, trade_index=1, id=order_id),
            taker.public_hex, who.public_hex), 1_001)
    return processor, order_id


def test_storm_commits_store_exactly_the_decided_state(tmp_path: Path) -> None:
    from actors import records_json
    from actors.order_logic.model import InvoiceAccepted, InvoiceCanceled
    from storage import models, repository

    processor, order_id = _storm_processor(tmp_path, 6)
    assert load_state(order_id) == processor.state
    bonds = processor.state.bonds
    for bond in bonds:  # the first locks, the others are released and re-cancelled
        ids, _ = processor.handle(InvoiceAccepted(bond.hash, bond.amount_sats), 1_010)
        assert load_state(order_id) == processor.state
        rows = repository.outbox_rows(ids)
        assert sorted(rows) == sorted(ids) and all(rows[i].done_at is None for i in ids)
        assert all(rows[i].order_id == order_id and rows[i].attempts == 0 for i in ids)
        assert [type(records_json.loads(rows[i].payload)).__name__ for i in ids] == [
            rows[i].effect for i in ids]
    for bond in bonds[1:]:
        processor.handle(InvoiceCanceled(bond.hash), 1_020)
        assert load_state(order_id) == processor.state
    seqs = [row.seq for row in repository.journal_of(order_id)]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) == 1 + 6 + 6 + 5
    assert models.JournalEntry.select().where(models.JournalEntry.created_at == 1_020).count() == 5


def test_outbox_batch_helpers_match_the_single_ones(tmp_path: Path) -> None:
    from storage import repository

    migrate(open_database(f"sqlite:///{tmp_path / 'outbox.db'}"))
    ids = [repository.enqueue_effect(None, "CancelHoldInvoice", "lightning", f"{{\"n\":{i}}}", 5)
           for i in range(5)]
    rows = repository.outbox_rows([*ids, 999_999, ids[0]])
    assert sorted(rows) == ids and rows[ids[2]].payload == '{"n":2}'
    assert repository.mark_outbox_done_many([ids[0], ids[1], ids[0], 999_999], now=7) == 2
    assert repository.mark_outbox_done_many([ids[1]], now=8) == 0  # already done: not counted
    assert repository.mark_outbox_done(ids[1]) is False  # as the single one says
    assert [r.id for r in repository.undone_outbox()] == ids[2:]
    assert repository.outbox_rows(ids)[ids[0]].done_at == 7
