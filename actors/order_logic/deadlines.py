"""The order's clock: which deadlines it wants, and what happens when one is reached.

``deadlines_of`` is recomputed by the actor after every decision and handed
to the Clock; a ``DeadlineReached`` re-checks its own condition against
``ctx.now`` and the current state, so a stale or early timer is a no-op
(the Rust scheduler's polling conditions, ORDER_FLOW.md §5, become exact
instants here). Bond deadlines come from ``taker_bonds`` and go back to it.

Rows (status → deadline → result):
* pending / waiting-taker-bond → ``expires_at`` passed (strictly, as the
  Rust query) → ``expired``, published canceled, **no message** (trap 9).
* waiting-buyer-invoice / waiting-payment → ``taken_at + expiration_seconds``
  passed (strictly) → escrow canceled, then blame by (status, kind), trap 8:
  stalled taker → re-listed; stalled maker → canceled for both.
* settled-hold-invoice with a failed payout → ``payment_retries_interval``
  after the last attempt → pay again (§6.4).
* active / fiat-sent with a held escrow → ``invoice_held_at + window`` →
  escrow guard (§5.4).
"""

from __future__ import annotations

from adapters.nostr.protocol.enums import Action, Kind, Status
from adapters.nostr.protocol.payloads import OrderPayload

from . import bond_hooks
from .escrow import escrow_guard, escrow_guard_window
from .evolve import replace
from .model import Deadline, DeadlineKind, Decision, DecisionContext, OrderState
from .parties import taker_key
from .payout import payout_retry_due, retry_payout
from .replies import notify
from .small_order import listing_view
from .steps import cancel_escrow, publish, relisted, without_taker

LISTED = frozenset({Status.PENDING, Status.WAITING_TAKER_BOND})
WAITING = frozenset({Status.WAITING_BUYER_INVOICE, Status.WAITING_PAYMENT})

# (status, kind) of a timed-out waiting order -> is the stalled party the taker?
TAKER_STALLED: dict[tuple[Status, Kind], bool] = {
    (Status.WAITING_BUYER_INVOICE, Kind.SELL): True,
    (Status.WAITING_PAYMENT, Kind.BUY): True,
    (Status.WAITING_BUYER_INVOICE, Kind.BUY): False,
    (Status.WAITING_PAYMENT, Kind.SELL): False,
}


def deadlines_of(state: OrderState, settings) -> tuple[Deadline, ...]:
    """Every instant at which this order wants a ``DeadlineReached``."""
    order = state.order
    wanted: list[Deadline] = []
    if order.status in LISTED:
        # due when expires_at < now: the first whole second after it
        wanted.append(Deadline(DeadlineKind.PENDING_EXPIRY, order.expires_at + 1))
    elif order.status in WAITING:
        wanted.append(
            Deadline(
                DeadlineKind.WAITING_TIMEOUT,
                order.taken_at + settings.mostro.expiration_seconds + 1,
            )
        )
    elif payout_retry_due(order, settings):
        last_attempt = order.payout_claimed_at or 0
        wanted.append(
            Deadline(
                DeadlineKind.PAYMENT_RETRY,
                last_attempt + settings.lightning.payment_retries_interval,
            )
        )
    elif order.status in (Status.ACTIVE, Status.FIAT_SENT) and order.invoice_held_at and order.hash:
        wanted.append(
            Deadline(
                DeadlineKind.ESCROW_GUARD, order.invoice_held_at + escrow_guard_window(settings)
            )
        )
    return (*wanted, *bond_hooks.bond_deadlines(state))


def on_deadline(state: OrderState, deadline: Deadline, ctx: DecisionContext) -> Decision:
    if deadline.kind == DeadlineKind.PENDING_EXPIRY:
        return expire_pending(state, ctx)
    if deadline.kind == DeadlineKind.WAITING_TIMEOUT:
        return time_out_waiting(state, ctx)
    if deadline.kind == DeadlineKind.PAYMENT_RETRY:
        return retry_payout(state, ctx)
    if deadline.kind == DeadlineKind.ESCROW_GUARD:
        return escrow_guard(state, ctx)
    if deadline.kind == DeadlineKind.BOND_EXPIRY:
        return bond_hooks.taker_bonds_module().on_bond_expired(state, deadline.key, ctx)
    return Decision(state)


def expire_pending(state: OrderState, ctx: DecisionContext) -> Decision:
    order = state.order
    if order.status not in LISTED or not order.expires_at < ctx.now:
        return Decision(state)
    expired = replace(order, status=Status.EXPIRED)
    released, bond_effects = bond_hooks.release_taker_bonds(
        replace(state, order=expired), ctx, notify=True
    )
    return Decision(released, (*publish(expired), *bond_effects))


def time_out_waiting(state: OrderState, ctx: DecisionContext) -> Decision:
    order = state.order
    if (
        order.status not in WAITING
        or not order.taken_at < ctx.now - ctx.settings.mostro.expiration_seconds
    ):
        return Decision(state)
    taker = taker_key(order)
    told_taker = () if taker is None else (notify(taker, Action.CANCELED, order.id),)
    if TAKER_STALLED[(order.status, order.kind)]:
        after = relisted(order)
        told_maker = notify(
            order.creator_pubkey, Action.NEW_ORDER, order.id, OrderPayload(listing_view(after))
        )
    else:
        after = without_taker(replace(order, status=Status.CANCELED))
        told_maker = notify(order.creator_pubkey, Action.CANCELED, order.id)
    effects = (*cancel_escrow(order), *publish(after), told_maker, *told_taker)
    released, bond_effects = bond_hooks.release_taker_bonds(
        replace(state, order=after), ctx, notify=False
    )
    return Decision(released, (*effects, *bond_effects))
