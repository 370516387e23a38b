"""`order_store` writes a record's values as peewee would: the values it passes through unchanged
(a str for a text column, an int for an integer column, None) are exactly what the column's
`db_value` returns, and every other value still goes through `db_value`."""

from __future__ import annotations

import dataclasses
from enum import Enum

from actors import order_store
from actors.order_logic.model import BondRecord, BondRole, BondState
from adapters.nostr.protocol.enums import Kind, Status
from storage import models
from tests.logic.kit import pending_order


def _peewee_params(model, record) -> list:
    columns = order_store._columns(model, type(record))
    fields = model._meta.fields
    return [fields[name].db_value(value.value if isinstance(value, Enum) else value)
            for name, value in zip(columns.names, columns.values_of(record), strict=True)]


def _written(model, record) -> list:
    columns = order_store._columns(model, type(record))
    values = columns.values_of(record)
    return columns.params(values, range(len(values)))


def _same(model, record) -> None:
    ours, peewees = _written(model, record), _peewee_params(model, record)
    assert ours == peewees
    assert [type(value) for value in ours] == [type(value) for value in peewees]


def test_an_order_is_written_as_peewee_writes_it() -> None:
    order = pending_order(Kind.BUY, min_amount=10, max_amount=100, buyer_invoice="lnbc1")
    _same(models.Order, order)
    _same(models.Order, dataclasses.replace(order, status=Status.CANCELED, premium=-3))


def test_values_of_another_type_than_the_columns_go_through_peewee() -> None:
    # a bool in an integer column, an int in a text column: peewee converts both
    order = dataclasses.replace(pending_order(), amount=True, payment_method=7)
    written = dict(zip(order_store._columns(models.Order, type(order)).names,
                       _written(models.Order, order), strict=True))
    assert written["amount"] == 1 and type(written["amount"]) is int
    assert written["payment_method"] == "7"
    _same(models.Order, order)


def test_a_bond_is_written_as_peewee_writes_it() -> None:
    bond = BondRecord(id="b1", order_id="o1", pubkey="ab" * 32, role=BondRole.TAKER,
                      amount_sats=1500, state=BondState.REQUESTED, hash="cd" * 32,
                      preimage="ef" * 32, created_at=1_700_000_000, payment_request="lnbc")
    _same(models.Bond, bond)
    written = dict(zip(order_store._columns(models.Bond, BondRecord).names,
                       _written(models.Bond, bond), strict=True))
    assert written["role"] == BondRole.TAKER.value and written["state"] == BondState.REQUESTED.value
