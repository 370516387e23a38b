"""The escrow hold invoice: creating it, LND's answers about it, and the guard near its CLTV horizon.

Rules (ORDER_FLOW.md §4.4, §4.5, §5.4): pure functions returning the new
state plus effects. The invoice is made in two steps: the deciding step
stores hash+preimage and emits ``AddHoldInvoice``; ``pay-invoice`` goes out
when LND answers (``HoldInvoiceCreated``; a second answer re-sends it,
which is harmless). No I/O; the preimage comes from the decision's entropy.

Deviations (ours), each on purpose:
* An ACCEPTED hold invoice that the order is not waiting for (re-listed,
  canceled, unknown hash) is answered with ``CancelHoldInvoice`` instead of
  being left locked until its CLTV (trap 17). A duplicate ACCEPTED for the
  escrow already held is ignored.
* ``HoldInvoiceCreateFailed`` (Rust: silent internal error) re-lists the
  order as if the taker had left: ``canceled`` to the taker, ``new-order``
  to the maker; the order is takeable again. The taker did nothing wrong,
  so nothing is blamed on it (its bonds are released, never slashed).
* ``pay-invoice`` / ``waiting-seller-to-pay`` echo the take's ``request_id``
  via ``AddHoldInvoice.request_id`` → ``HoldInvoiceCreated.request_id``
  (the LND adapter copies it back).
* The escrow guard uses the time fallback only (``invoice_held_at + window``);
  the chain-height test needs LND and belongs to the adapter.
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Action, Status
from adapters.nostr.protocol.payloads import OrderPayload, PaymentRequest, Peer

from . import bond_hooks
from .dispute import open_dispute
from .evolve import replace
from .model import (
    AddHoldInvoice,
    CancelHoldInvoice,
    Decision,
    DecisionContext,
    Effect,
    HoldInvoiceCreated,
    HoldInvoiceCreateFailed,
    InvoiceAccepted,
    InvoiceCanceled,
    OrderRecord,
    OrderState,
)
from .parties import reputation, taker_key
from .replies import notify
from .small_order import active_view, buyer_invoice_request_view, seller_payment_view
from .steps import derived_preimage, publish, relist_effects, relisted

ESCROWED = frozenset({Status.ACTIVE, Status.FIAT_SENT, Status.DISPUTE})


def escrow_memo(order: OrderRecord) -> str:
    """The hold invoice description the seller's wallet shows (same wording as Mostro)."""
    return (
        f"Escrow amount Order #{order.id}: SELL BTC for {order.fiat_code} {order.fiat_amount}"
        " - It WILL FREEZE IN WALLET. It will release once you release."
        " It will return if buyer does not confirm the payment"
    )


# ---------------------------------------------------------------- escrow hold invoice
def create_escrow(
    order: OrderRecord, ctx: DecisionContext, request_id: int | None
) -> tuple[OrderRecord, tuple[Effect, ...]]:
    """Store a fresh hash+preimage, enter ``waiting-payment``, ask LND for the hold invoice (§4.4).

    ``taken_at`` restarts so the seller gets a full ``expiration_seconds`` (trap 7).
    """
    preimage, payment_hash = derived_preimage(ctx, f"escrow:{order.id}")
    after = replace(
        order,
        hash=payment_hash,
        preimage=preimage,
        status=Status.WAITING_PAYMENT,
        taken_at=ctx.now,
    )
    add = AddHoldInvoice(
        hash=payment_hash,
        amount_sat=order.amount + order.fee,
        memo=escrow_memo(order),
        cltv_expiry=ctx.settings.lightning.hold_invoice_cltv_delta,
        request_id=request_id,
    )
    return after, (add, *publish(after))


def on_hold_invoice_created(state: OrderState, event: HoldInvoiceCreated) -> Decision:
    """LND made the escrow invoice: show it to the seller, tell the buyer to wait."""
    order = state.order
    if event.hash != order.hash or order.status != Status.WAITING_PAYMENT:
        return Decision(state)
    pay = notify(
        order.seller_pubkey,
        Action.PAY_INVOICE,
        order.id,
        PaymentRequest(seller_payment_view(order), event.payment_request, None),
        request_id=event.request_id,
        trade_index=order.trade_index_seller,
    )
    wait = notify(
        order.buyer_pubkey,
        Action.WAITING_SELLER_TO_PAY,
        order.id,
        request_id=event.request_id,
        trade_index=order.trade_index_buyer,
    )
    return Decision(state, (pay, wait))


def on_hold_invoice_create_failed(
    state: OrderState, event: HoldInvoiceCreateFailed, ctx: DecisionContext
) -> Decision:
    """LND could not make the escrow invoice: put the order back in the book (see docstring)."""
    order = state.order
    if event.hash != order.hash or order.status != Status.WAITING_PAYMENT:
        return Decision(state)
    after = relisted(order)
    effects = relist_effects(order, after)  # cancel too: harmless if LND made nothing
    released, bond_effects = bond_hooks.release_taker_bonds(
        replace(state, order=after), ctx, notify=False
    )
    return Decision(released, (*effects, *bond_effects))


def on_invoice_accepted(
    state: OrderState, event: InvoiceAccepted, ctx: DecisionContext
) -> Decision:
    """The seller's sats are locked (§4.5)."""
    order = state.order
    if event.hash != order.hash:
        return Decision(state, (CancelHoldInvoice(event.hash),))
    if order.invoice_held_at != 0:
        return Decision(state)  # replay of an ACCEPTED already handled
    if order.status not in (Status.WAITING_PAYMENT, Status.WAITING_BUYER_INVOICE):
        return Decision(state, (CancelHoldInvoice(event.hash),))
    held = replace(order, invoice_held_at=ctx.now)
    if held.buyer_invoice is not None:
        active = replace(held, status=Status.ACTIVE)
        return Decision(replace(state, order=active), activation_messages(active))
    waiting = replace(held, status=Status.WAITING_BUYER_INVOICE, taken_at=ctx.now)
    effects = (
        notify(
            waiting.buyer_pubkey,
            Action.ADD_INVOICE,
            waiting.id,
            OrderPayload(buyer_invoice_request_view(waiting, Status.WAITING_BUYER_INVOICE)),
            trade_index=waiting.trade_index_buyer,
        ),
        notify(
            waiting.seller_pubkey,
            Action.WAITING_BUYER_INVOICE,
            waiting.id,
            trade_index=waiting.trade_index_seller,
        ),
        notify(
            waiting.buyer_pubkey,
            Action.ADD_INVOICE,
            waiting.id,
            Peer("", reputation(ctx, waiting.master_seller_pubkey)),
        ),
        *publish(waiting),
    )
    return Decision(replace(state, order=waiting), effects)


def activation_messages(order: OrderRecord, request_id: int | None = None) -> tuple[Effect, ...]:
    return (
        notify(
            order.seller_pubkey,
            Action.BUYER_TOOK_ORDER,
            order.id,
            OrderPayload(active_view(order, for_seller=True)),
            request_id=request_id,
        ),
        notify(
            order.buyer_pubkey,
            Action.HOLD_INVOICE_PAYMENT_ACCEPTED,
            order.id,
            OrderPayload(active_view(order, for_seller=False)),
            request_id=request_id,
        ),
    )


def escrow_guard_window(settings) -> int:
    """Seconds an accepted escrow HTLC may be held before the guard acts (§5.4)."""
    cltv = settings.lightning.hold_invoice_cltv_delta
    margin = settings.lightning.escrow_deadline_margin_blocks
    if margin >= cltv:
        margin = cltv // 2
    return (cltv - margin) * 600


def on_invoice_canceled(
    state: OrderState, event: InvoiceCanceled, ctx: DecisionContext
) -> Decision:
    """LND canceled the escrow behind our back: only matters past the escrow deadline (§4.5)."""
    order = state.order
    past_deadline = (
        order.invoice_held_at != 0
        and ctx.now >= order.invoice_held_at + escrow_guard_window(ctx.settings)
    )
    if event.hash != order.hash or order.status not in ESCROWED or not past_deadline:
        return Decision(state)
    told = (
        notify(order.seller_pubkey, Action.HOLD_INVOICE_PAYMENT_CANCELED, order.id),
        notify(order.buyer_pubkey, Action.HOLD_INVOICE_PAYMENT_CANCELED, order.id),
    )
    if order.status != Status.ACTIVE:
        return Decision(state, told)
    canceled = replace(order, status=Status.CANCELED)
    effects = (
        *told,
        *publish(canceled),
        notify(order.creator_pubkey, Action.CANCELED, order.id),
        notify(taker_key(order), Action.CANCELED, order.id),
    )
    released, bond_effects = bond_hooks.release_taker_bonds(
        replace(state, order=canceled), ctx, notify=False
    )
    return Decision(released, (*effects, *bond_effects))


def escrow_guard(state: OrderState, ctx: DecisionContext) -> Decision:
    """The escrow HTLC nears its CLTV horizon (§5.4): cancel an active trade, dispute a fiat-sent one."""
    order = state.order
    due = (
        order.invoice_held_at != 0
        and order.hash is not None
        and ctx.now >= order.invoice_held_at + escrow_guard_window(ctx.settings)
    )
    if not due or order.status not in (Status.ACTIVE, Status.FIAT_SENT):
        return Decision(state)
    if order.status == Status.ACTIVE:
        canceled = replace(order, status=Status.CANCELED)
        effects = (
            CancelHoldInvoice(order.hash),
            *publish(canceled),
            notify(order.creator_pubkey, Action.CANCELED, order.id),
            notify(taker_key(order), Action.CANCELED, order.id),
        )
        released, bond_effects = bond_hooks.release_taker_bonds(
            replace(state, order=canceled), ctx, notify=False
        )
        return Decision(released, (*effects, *bond_effects))
    return open_dispute(state, order.buyer_pubkey, ctx, request_id=None)
