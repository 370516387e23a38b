"""Build the neutral ``Observed`` view of one order from a state and what each party received.

Every runner has the same three sources — the order's state, the messages
each party got, and LND's state of each bond invoice — only fetched from
different places (memory, the database and a relay, the simulator). This
module turns them into ``Observed``; it fetches nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from actors.order_logic.model import BondRole, OrderState
from adapters.nostr.protocol.enums import Action, Kind
from adapters.nostr.protocol.payloads import CantDo, Message, PaymentRequest

from .expectations import Observed


def shown_action(message: Message) -> str:
    """How the scenario files name a received message: the action, or ``cant-do:<reason>``."""
    if message.action == Action.CANT_DO and isinstance(message.payload, CantDo):
        return f"cant-do:{message.payload.reason}"
    return str(message.action)


def observe_order(
    state: OrderState,
    *,
    name_of: Callable[[str | None], str | None],
    messages: Mapping[str, Sequence[Message]],
    htlc_of: Callable[[str], str],
    published: str | None,
    payment_failed: Sequence[str] = (),
    bond_invoices: int = 0,
    invoice_label: Callable[[str | None], str | None] = lambda invoice: invoice,
) -> Observed:
    """``messages`` are keyed by party name; ``htlc_of(hash)`` is LND's state of an invoice;
    ``invoice_label`` maps an invoice back to the name the scenario file gave it."""
    order = state.order
    observed = Observed(status=str(order.status), published=published)
    for bond in state.bonds:
        if bond.role != BondRole.TAKER:
            continue
        name = name_of(bond.pubkey) or bond.pubkey
        observed.bonds.setdefault(name, []).append(str(bond.state))
        observed.bond_amounts.setdefault(name, []).append(bond.amount_sats)
        observed.htlc[name] = htlc_of(bond.hash)
    for name, received in messages.items():
        shown = observed.messages.setdefault(name, [])
        for message in received:
            shown.append(shown_action(message))
            if message.action == Action.PAY_BOND_INVOICE and isinstance(
                message.payload, PaymentRequest
            ):
                observed.bond_bolt11s.setdefault(name, []).append(message.payload.invoice)
    taker_pubkey = order.buyer_pubkey if order.kind == Kind.SELL else order.seller_pubkey
    taker_identity = (
        order.master_buyer_pubkey if order.kind == Kind.SELL else order.master_seller_pubkey
    )
    if taker_pubkey is not None:
        observed.taker = {
            "party": name_of(taker_pubkey),
            "identity": name_of(taker_identity),
            "fiat_amount": order.fiat_amount,
            "amount": order.amount,
            "fee": order.fee,
            "dev_fee": order.dev_fee,
            "buyer_invoice": invoice_label(order.buyer_invoice),
        }
    observed.payment_failed = list(payment_failed)
    observed.bond_invoices = bond_invoices
    return observed
