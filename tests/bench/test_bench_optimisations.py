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
