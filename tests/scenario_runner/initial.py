"""The scenario's starting order (``[order]``), as every runner creates it: directly ``pending``.

Shared by the pure runner (which keeps it in memory) and the actor runners
(which write it to the database before the daemon starts). It only builds
records; it does not store them and knows nothing about LND or actors.
"""

from __future__ import annotations

from typing import Any

from actors.order_logic.fees import mostro_fee
from actors.order_logic.model import BondRecord, BondRole, BondState, OrderRecord
from adapters.nostr.protocol.enums import Kind, Status

from .format import OrderSpec

MAKER_BOND_SATS = 1000
MAKER_BOND_MEMO = "mostro bond maker"


def initial_order(spec: OrderSpec, settings: Any, *, order_id: str, maker_pubkey: str,
                  maker_identity: str, now: int) -> OrderRecord:
    """The ``pending`` order of ``spec``, made by ``maker`` at ``now`` (no new-order round trip)."""
    kind = Kind(spec.kind)
    maker_side = (
        {"seller_pubkey": maker_pubkey, "master_seller_pubkey": maker_identity,
         "trade_index_seller": 1}
        if kind == Kind.SELL
        else {"buyer_pubkey": maker_pubkey, "master_buyer_pubkey": maker_identity,
              "trade_index_buyer": 1}
    )
    return OrderRecord(
        id=order_id,
        kind=kind,
        status=Status.PENDING,
        creator_pubkey=maker_pubkey,
        fiat_code=spec.fiat_code,
        payment_method=spec.payment_method,
        amount=spec.amount,
        fiat_amount=spec.fiat_amount,
        min_amount=spec.min_amount,
        max_amount=spec.max_amount,
        premium=spec.premium,
        price_from_api=spec.amount == 0,
        fee=mostro_fee(spec.amount, settings.mostro.fee) if spec.amount > 0 else 0,
        created_at=now,
        expires_at=now + spec.expires_in,
        **maker_side,
    )


def locked_maker_bond(*, bond_id: str, order_id: str, maker_pubkey: str, preimage: str,
                      payment_hash: str, now: int, payment_request: str | None = None
                      ) -> BondRecord:
    """``maker_bond = "locked"``: a maker bond already held (``apply_to = both``)."""
    return BondRecord(
        id=bond_id,
        order_id=order_id,
        pubkey=maker_pubkey,
        role=BondRole.MAKER,
        amount_sats=MAKER_BOND_SATS,
        state=BondState.LOCKED,
        hash=payment_hash,
        preimage=preimage,
        created_at=now,
        locked_at=now,
        invoice_state="accepted",
        payment_request=payment_request,
    )
