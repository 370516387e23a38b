"""The current schema as peewee models, bound to `database_proxy` (see `storage.open_database`).

Column names are exactly those of the specs (ORDER_FLOW.md §2, BONDS.md
§3.2, plus bond `expires_at` and `canceled_notice_sent` that the order logic
keeps); UUIDs are 36-character strings, timestamps integer Unix seconds, and
bond `state` holds the kebab-case BondState values; bond `created_seq` (ours) is
numbered by the database and orders bonds made in the same second. The tables themselves
are created by `storage.migrations` (a test checks these models match what
the migrations build). Foreign keys are plain id columns so each attribute
is the column (`bond.order_id`), with the constraint declared in the DDL.

Models carry no behaviour and no queries: queries live in
`storage.repository`.
"""

from __future__ import annotations

import peewee

from storage.database import database_proxy


class _Base(peewee.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


def _key64(**kw) -> peewee.CharField:  # type: ignore[no-untyped-def]
    return peewee.CharField(max_length=64, **kw)


def _id36(**kw) -> peewee.CharField:  # type: ignore[no-untyped-def]
    return peewee.CharField(max_length=36, **kw)


class Order(_Base):
    id = _id36(primary_key=True)
    kind = peewee.CharField(max_length=4)
    event_id = _key64(null=True)
    hash = _key64(null=True)
    preimage = _key64(null=True)
    creator_pubkey = _key64()
    cancel_initiator_pubkey = _key64(null=True)
    dispute_initiator_pubkey = _key64(null=True)
    buyer_pubkey = _key64(null=True)
    seller_pubkey = _key64(null=True)
    master_buyer_pubkey = _key64(null=True)
    master_seller_pubkey = _key64(null=True)
    status = peewee.CharField(max_length=32)
    price_from_api = peewee.BooleanField(default=False)
    premium = peewee.BigIntegerField(default=0)
    payment_method = peewee.TextField()
    amount = peewee.BigIntegerField(default=0)
    min_amount = peewee.BigIntegerField(null=True)
    max_amount = peewee.BigIntegerField(null=True)
    buyer_dispute = peewee.BooleanField(default=False)
    seller_dispute = peewee.BooleanField(default=False)
    buyer_cooperativecancel = peewee.BooleanField(default=False)
    seller_cooperativecancel = peewee.BooleanField(default=False)
    fee = peewee.BigIntegerField(default=0)
    routing_fee = peewee.BigIntegerField(default=0)
    dev_fee = peewee.BigIntegerField(default=0)
    dev_fee_paid = peewee.BooleanField(default=False)
    dev_fee_payment_hash = peewee.CharField(max_length=128, null=True)
    fiat_code = peewee.CharField(max_length=16)
    fiat_amount = peewee.BigIntegerField(default=0)
    buyer_invoice = peewee.TextField(null=True)
    range_parent_id = _id36(null=True)
    invoice_held_at = peewee.BigIntegerField(default=0)
    taken_at = peewee.BigIntegerField(default=0)
    created_at = peewee.BigIntegerField()
    buyer_sent_rate = peewee.BooleanField(default=False)
    seller_sent_rate = peewee.BooleanField(default=False)
    payment_attempts = peewee.BigIntegerField(default=0)
    failed_payment = peewee.BooleanField(default=False)
    expires_at = peewee.BigIntegerField()
    trade_index_seller = peewee.BigIntegerField(null=True)
    trade_index_buyer = peewee.BigIntegerField(null=True)
    next_trade_pubkey = _key64(null=True)
    next_trade_index = peewee.BigIntegerField(null=True)
    payout_payment_hash = _key64(null=True)
    payout_claimed_at = peewee.BigIntegerField(null=True)
    cashu_mint_url = peewee.TextField(null=True)
    cashu_escrow_token = peewee.TextField(null=True)
    cashu_escrow_locked_at = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "orders"


class User(_Base):
    pubkey = _key64(primary_key=True)
    is_admin = peewee.BooleanField(default=False)
    admin_password = _key64(null=True)
    is_solver = peewee.BooleanField(default=False)
    is_banned = peewee.BooleanField(default=False)
    category = peewee.BigIntegerField(default=0)
    last_trade_index = peewee.BigIntegerField(default=0)
    total_reviews = peewee.BigIntegerField(default=0)
    total_rating = peewee.DoubleField(default=0.0)
    last_rating = peewee.BigIntegerField(default=0)
    max_rating = peewee.BigIntegerField(default=0)
    min_rating = peewee.BigIntegerField(default=0)
    created_at = peewee.BigIntegerField()

    class Meta:
        table_name = "users"


class Dispute(_Base):
    id = _id36(primary_key=True)
    order_id = _id36(unique=True)
    status = peewee.CharField(max_length=32)
    order_previous_status = peewee.CharField(max_length=32)
    solver_pubkey = _key64(null=True)
    created_at = peewee.BigIntegerField()
    taken_at = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "disputes"


class Bond(_Base):
    id = _id36(primary_key=True)
    order_id = _id36(index=True)
    parent_bond_id = _id36(null=True, index=True)
    child_order_id = _id36(null=True)
    pubkey = _key64()
    role = peewee.CharField(max_length=8)
    amount_sats = peewee.BigIntegerField()
    slashed_share_sats = peewee.BigIntegerField(default=0)
    state = peewee.CharField(max_length=32, index=True)
    slashed_reason = peewee.CharField(max_length=32, null=True)
    hash = _key64(null=True, unique=True)
    preimage = _key64(null=True)
    payment_request = peewee.TextField(null=True)
    payout_invoice = peewee.TextField(null=True)
    payout_routing_fee_sats = peewee.BigIntegerField(null=True)
    node_share_sats = peewee.BigIntegerField(null=True)
    payout_attempts = peewee.BigIntegerField(default=0)
    invoice_request_attempts = peewee.BigIntegerField(default=0)
    last_invoice_request_at = peewee.BigIntegerField(null=True)
    locked_at = peewee.BigIntegerField(null=True)
    released_at = peewee.BigIntegerField(null=True)
    slashed_at = peewee.BigIntegerField(null=True)
    created_at = peewee.BigIntegerField()
    taker_identity = _key64(null=True)
    taker_trade_index = peewee.BigIntegerField(null=True)
    taker_invoice = peewee.TextField(null=True)
    taker_fiat_amount = peewee.BigIntegerField(null=True)
    taker_amount = peewee.BigIntegerField(null=True)
    taker_fee = peewee.BigIntegerField(null=True)
    taker_dev_fee = peewee.BigIntegerField(null=True)
    invoice_state = peewee.CharField(max_length=16, null=True)
    release_confirmed_at = peewee.BigIntegerField(null=True)
    # (ours) when the unpaid bond invoice lapses (BONDS.md §4.1), and whether
    # its taker was already sent `canceled` (so a restart never repeats it, I7)
    expires_at = peewee.BigIntegerField(null=True)
    canceled_notice_sent = peewee.BooleanField(default=False)
    # (ours) creation order, numbered by the database on insert (leave it out when inserting):
    # the tiebreak of created_at, since bonds of one race are often made in the same second
    created_seq = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "bonds"


class OutboxEffect(_Base):
    id = peewee.BigAutoField()
    order_id = _id36(null=True)
    effect = peewee.CharField(max_length=64)
    target = peewee.CharField(max_length=32)
    payload = peewee.TextField()
    created_at = peewee.BigIntegerField()
    done_at = peewee.BigIntegerField(null=True)
    attempts = peewee.BigIntegerField(default=0)
    last_error = peewee.TextField(null=True)

    class Meta:
        table_name = "outbox"


class JournalEntry(_Base):
    id = peewee.BigAutoField()
    order_id = _id36()
    seq = peewee.BigIntegerField()
    message = peewee.TextField()
    decision = peewee.TextField()
    created_at = peewee.BigIntegerField()

    class Meta:
        table_name = "journal"
        indexes = ((("order_id", "seq"), True),)


class SeenEvent(_Base):
    event_id = _key64(primary_key=True)
    seen_at = peewee.BigIntegerField()

    class Meta:
        table_name = "seen_events"


ALL_MODELS: tuple[type[peewee.Model], ...] = (
    Order, User, Dispute, Bond, OutboxEffect, JournalEntry, SeenEvent,
)
