"""Builders for the order-logic tests: settings, context, requests, orders, BOLT11 invoices.

Everything is deterministic: a fixed clock (``NOW``), fixed keys, fixed
entropy, invoices signed with a fixed test key on regtest (``bcrt``).
No I/O; the real ``config.parse_settings`` builds the settings.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import bolt11
from bolt11 import Bolt11, MilliSatoshi
from bolt11.models.tags import TagChar, Tags

from actors.order_logic.model import (
    ClientRequest,
    DecisionContext,
    OrderRecord,
    OrderState,
    PriceSnapshot,
)
from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import Message, OrderPayload, SmallOrder, UserInfo
from config import parse_settings

NOW = 1_700_000_000
ORDER_ID = "11111111-2222-4333-8444-555555555555"
SELLER = "5e" * 32
SELLER_ID = "5a" * 32
BUYER = "b0" * 32
BUYER_ID = "ba" * 32
STRANGER = "cc" * 32
NEXT_KEY = "ee" * 32
INVOICE_SIGNING_KEY = "01" * 32
TEST_NSEC_HEX = "7f" * 32

_REQUIRED = {
    "lightning": {
        "lnd_cert_file": "tls.cert",
        "lnd_macaroon_file": "admin.macaroon",
        "lnd_grpc_host": "127.0.0.1:10009",
    },
    "nostr": {"relays": ["ws://127.0.0.1:7000"]},
    "mostro": {"fee": 0.006, "fiat_currencies_accepted": ["USD", "EUR", "ARS"]},
}


def make_settings(**sections: dict[str, Any]):
    """Real settings from the loader; ``sections`` override keys per section."""
    raw: dict[str, dict[str, Any]] = {name: dict(values) for name, values in _REQUIRED.items()}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return parse_settings(raw, env={"MOSTRO_NSEC_PRIVKEY": TEST_NSEC_HEX})


SETTINGS = make_settings()
PRICES = PriceSnapshot({"USD": 50_000.0, "EUR": 40_000.0}, taken_at=NOW - 60)
REPUTATIONS = {SELLER_ID: UserInfo(4.5, 12, 30), BUYER_ID: UserInfo(3.0, 2, 5)}


def ctx(
    now: int = NOW, *, entropy: bytes = b"\x07" * 32, settings=None, prices=PRICES, reputations=None
):
    return DecisionContext(
        settings=settings or SETTINGS,
        now=now,
        entropy=entropy,
        network="regtest",
        prices=prices,
        reputations=REPUTATIONS if reputations is None else reputations,
    )


def request(
    action: Action,
    sender: str,
    *,
    identity: str | None = None,
    order_id: str | None = ORDER_ID,
    payload=None,
    request_id: int | None = 7,
    trade_index: int | None = None,
    pending_take_exists: bool = False,
) -> ClientRequest:
    """A verified client message; the identity defaults to the sender's known identity."""
    known = {SELLER: SELLER_ID, BUYER: BUYER_ID}
    return ClientRequest(
        message=Message(
            action=action,
            request_id=request_id,
            trade_index=trade_index,
            id=order_id,
            payload=payload,
        ),
        sender=sender,
        identity=identity or known.get(sender, sender),
        pending_take_exists=pending_take_exists,
    )


def invoice(
    amount_sat: int | None = None,
    *,
    timestamp: int = NOW,
    expiry: int = 7200,
    currency: str = "bcrt",
    min_final_cltv: int = 40,
    label: str = "buyer",
) -> str:
    """A signed BOLT11 string made with the ``bolt11`` package."""
    tags = Tags()
    tags.add(TagChar.payment_hash, invoice_hash(label))
    tags.add(TagChar.payment_secret, "11" * 32)
    tags.add(TagChar.description, f"test invoice {label}")
    tags.add(TagChar.expire_time, expiry)
    tags.add(TagChar.min_final_cltv_expiry, min_final_cltv)
    amount = MilliSatoshi(amount_sat * 1000) if amount_sat else None
    return bolt11.encode(
        Bolt11(currency=currency, date=timestamp, tags=tags, amount_msat=amount),
        private_key=INVOICE_SIGNING_KEY,
    )


def invoice_hash(label: str) -> str:
    return hashlib.sha256(f"preimage {label}".encode()).hexdigest()


def small_order(kind: Kind | None = Kind.SELL, **fields) -> SmallOrder:
    """A maker's ``new-order`` SmallOrder: 100 USD, fixed 200,000 sats unless overridden."""
    base = {
        "amount": 200_000,
        "fiat_code": "USD",
        "fiat_amount": 100,
        "payment_method": "SEPA,Bank transfer",
        "premium": 0,
        "kind": kind,
        "status": Status.PENDING,
    }
    base.update(fields)
    return SmallOrder(**base)


def new_order_request(
    kind: Kind = Kind.SELL, *, trade_index: int | None = 1, **fields
) -> ClientRequest:
    maker = SELLER if kind == Kind.SELL else BUYER
    return request(
        Action.NEW_ORDER,
        maker,
        order_id=None,
        payload=OrderPayload(small_order(kind, **fields)),
        trade_index=trade_index,
    )


def pending_order(kind: Kind = Kind.SELL, **fields) -> OrderRecord:
    """A stored pending order made by the usual maker (sell: SELLER, buy: BUYER)."""
    if kind == Kind.SELL:
        maker = {
            "seller_pubkey": SELLER,
            "master_seller_pubkey": SELLER_ID,
            "trade_index_seller": 1,
        }
        creator = SELLER
    else:
        maker = {"buyer_pubkey": BUYER, "master_buyer_pubkey": BUYER_ID, "trade_index_buyer": 1}
        creator = BUYER
    base = OrderRecord(
        id=ORDER_ID,
        kind=kind,
        status=Status.PENDING,
        creator_pubkey=creator,
        fiat_code="USD",
        payment_method="SEPA,Bank transfer",
        amount=200_000,
        fiat_amount=100,
        fee=600,
        created_at=NOW - 1000,
        expires_at=NOW + 86_400,
        **maker,
    )
    return replace(base, **fields)


def taken_order(kind: Kind = Kind.SELL, **fields) -> OrderRecord:
    """Both parties on the order (identities known), the given status and fields."""
    base = pending_order(kind)
    base = replace(
        base,
        buyer_pubkey=BUYER,
        master_buyer_pubkey=BUYER_ID,
        seller_pubkey=SELLER,
        master_seller_pubkey=SELLER_ID,
        trade_index_buyer=base.trade_index_buyer or 2,
        trade_index_seller=base.trade_index_seller or 2,
        dev_fee=360,
        taken_at=NOW - 100,
    )
    return replace(base, **fields)


def state_of(order: OrderRecord, **fields) -> OrderState:
    return OrderState(order, **fields)
