"""The buyer payout: paying ``amount − fee``, counting failures, retrying (ORDER_FLOW.md §6).

At most one payout is in flight (``payout_payment_hash`` is the marker);
failures follow the daemon's accounting (``payment-failed`` first,
``add-invoice`` after the N-th, trap 16) and the retry timer pays the stored
invoice again. Pure: the routing-fee cap and invoice checks are values.

Deviations (ours): an invoice the payout cannot use (amount ≠ payout,
wrong network, expired) is counted as a failed attempt in the same
decision, without sending (Rust refuses it inside ``do_payment``, same
outcome). A payout to a Lightning address carries a derived
``payment_hash`` key (no bolt11 exists before the adapter resolves it);
the adapter reports the outcome under that key.
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Action, Status
from adapters.nostr.protocol.payloads import OrderPayload
from adapters.nostr.protocol.payloads import PaymentFailed as PaymentFailedPayload

from .evolve import replace
from .fees import routing_fee_cap
from .invoice_rules import check_invoice_payable, decode_invoice, is_lightning_address
from .model import (
    Decision,
    DecisionContext,
    Effect,
    OrderRecord,
    OrderState,
    PaymentFailed,
    PaymentSucceeded,
    SendPayment,
    derive_bytes,
)
from .replies import notify
from .small_order import buyer_invoice_request_view
from .steps import publish


def start_payout(
    order: OrderRecord, ctx: DecisionContext
) -> tuple[OrderRecord, tuple[Effect, ...]]:
    """Pay the buyer ``amount − fee`` from ``settled-hold-invoice`` (at most one payout in flight)."""
    invoice = order.buyer_invoice
    if (
        order.status != Status.SETTLED_HOLD_INVOICE
        or order.payout_payment_hash is not None
        or invoice is None
    ):
        return order, ()
    payout = order.amount - order.fee
    cap = routing_fee_cap(payout, ctx.settings.mostro.max_routing_fee)
    if is_lightning_address(invoice):
        marker = derive_bytes(ctx.entropy, f"payout:{order.id}").hex()
        send = SendPayment(invoice, payout, cap, marker)
    else:
        decoded = decode_invoice(invoice)
        payable = (
            decoded is not None
            and payout > 0
            and check_invoice_payable(decoded, ctx.settings, ctx.now, ctx.network)
            and decoded.amount_sat in (None, payout)
        )
        if not payable:
            # refused before sending (trap 2): counts as a failed attempt
            return count_failed_payout(replace(order, payout_claimed_at=ctx.now), ctx)
        marker = decoded.payment_hash
        send = SendPayment(invoice, payout if decoded.amount_sat is None else 0, cap, marker)
    claimed = replace(order, payout_payment_hash=marker, payout_claimed_at=ctx.now)
    return claimed, (send,)


def count_failed_payout(
    order: OrderRecord, ctx: DecisionContext
) -> tuple[OrderRecord, tuple[Effect, ...]]:
    """Failure accounting (§6.4): ``payment-failed`` first, ``add-invoice`` after the N-th."""
    attempts_allowed = ctx.settings.lightning.payment_attempts
    order = replace(order, payout_payment_hash=None, failed_payment=True)
    if order.payment_attempts == 0:
        failed = replace(order, payment_attempts=1)
        payload = PaymentFailedPayload(
            payment_attempts=max(attempts_allowed - 1, 0),
            payment_retries_interval=ctx.settings.lightning.payment_retries_interval,
        )
        return failed, (notify(order.buyer_pubkey, Action.PAYMENT_FAILED, order.id, payload),)
    if order.payment_attempts >= attempts_allowed:
        return order, ()
    failed = replace(order, payment_attempts=order.payment_attempts + 1)
    if failed.payment_attempts < attempts_allowed:
        return failed, ()
    ask = notify(
        order.buyer_pubkey,
        Action.ADD_INVOICE,
        order.id,
        OrderPayload(buyer_invoice_request_view(failed, Status.SETTLED_HOLD_INVOICE)),
    )
    return failed, (ask,)


def on_payment_succeeded(
    state: OrderState, event: PaymentSucceeded, ctx: DecisionContext
) -> Decision:
    order = state.order
    if (
        order.status != Status.SETTLED_HOLD_INVOICE
        or event.payment_hash != order.payout_payment_hash
    ):
        return Decision(state)
    done = replace(order, status=Status.SUCCESS, payout_payment_hash=None)
    effects = (
        *publish(done),
        notify(order.buyer_pubkey, Action.PURCHASE_COMPLETED, order.id),
        notify(order.buyer_pubkey, Action.RATE, order.id),
    )
    return Decision(replace(state, order=done), effects)


def on_payment_failed(state: OrderState, event: PaymentFailed, ctx: DecisionContext) -> Decision:
    order = state.order
    if (
        order.status != Status.SETTLED_HOLD_INVOICE
        or event.payment_hash != order.payout_payment_hash
    ):
        return Decision(state)
    failed, effects = count_failed_payout(order, ctx)
    return Decision(replace(state, order=failed), effects)


def retry_payout(state: OrderState, ctx: DecisionContext) -> Decision:
    """The retry timer (§6.4): pay the stored invoice again while attempts remain."""
    order = state.order
    if not payout_retry_due(order, ctx.settings):
        return Decision(state)
    paying, effects = start_payout(order, ctx)
    return Decision(replace(state, order=paying), effects)


def payout_retry_due(order: OrderRecord, settings) -> bool:
    return (
        order.status == Status.SETTLED_HOLD_INVOICE
        and order.failed_payment
        and order.payout_payment_hash is None
        and order.payment_attempts < settings.lightning.payment_attempts
    )
