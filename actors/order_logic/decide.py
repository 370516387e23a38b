"""The pure order state machine: ``decide(state, event, ctx) -> Decision``.

Rules of this package: everything that decides what happens to one order
and its taker bonds is here, and nothing here does I/O, reads a clock or
draws randomness — time, entropy, prices and reputations arrive in
``DecisionContext``; effects leave as values in ``Decision``. Same input,
same Decision (replays of the journal rely on it).

Theory of operation: ``CLIENT_ACTIONS`` below is the (action → handler)
table; each handler runs the spec's checks in order and the allowed
(status, action) pairs are the table in ``status_rules``. LND and clock
events go to ``EVENT_HANDLERS``. Invoice events whose hash belongs to a
bond go to ``taker_bonds``. Anything not in the tables is ignored, as the
Rust daemon ignores unhandled actions (no reply).

Choices written down (see each module's docstring for the rest):
* Solver actions (``admin-settle`` / ``admin-cancel`` / ``admin-take-dispute``)
  are refused with ``not_authorized`` until the solver registry exists.
* ``pay-invoice`` sent by a client → ``invalid_action`` (as Rust).
* ``new-order`` for an order that already exists → ``invalid_action``;
  any other client action without an order → ``not_found``.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.nostr.protocol.enums import Action, CantDoReason

from . import bond_hooks
from .cancel import handle_cancel
from .deadlines import on_deadline
from .dispute import handle_dispute
from .escrow import (
    on_hold_invoice_create_failed,
    on_hold_invoice_created,
    on_invoice_accepted,
    on_invoice_canceled,
)
from .model import (
    ClientRequest,
    DeadlineReached,
    Decision,
    DecisionContext,
    HoldInvoiceCreated,
    HoldInvoiceCreateFailed,
    InvoiceAccepted,
    InvoiceCanceled,
    InvoiceSettled,
    OrderEvent,
    OrderState,
    PaymentFailed,
    PaymentSucceeded,
)
from .new_order import handle_new_order
from .payout import on_payment_failed, on_payment_succeeded
from .rating import handle_rate_user
from .replies import cant_do
from .take import apply_take, handle_take
from .trade import handle_add_invoice, handle_fiat_sent, handle_release
from .trade_pubkey import handle_trade_pubkey

ClientHandler = Callable[[OrderState, ClientRequest, DecisionContext], Decision]


def _refuse_with(reason: CantDoReason) -> ClientHandler:
    def refuse(state: OrderState, request: ClientRequest, ctx: DecisionContext) -> Decision:
        return Decision(state, (cant_do(request, reason),))

    return refuse


# client action -> handler (new-order is special: it has no state yet)
CLIENT_ACTIONS: dict[Action, ClientHandler] = {
    Action.TAKE_SELL: handle_take,
    Action.TAKE_BUY: handle_take,
    Action.ADD_INVOICE: handle_add_invoice,
    Action.FIAT_SENT: handle_fiat_sent,
    Action.RELEASE: handle_release,
    Action.CANCEL: handle_cancel,
    Action.DISPUTE: handle_dispute,
    Action.RATE_USER: handle_rate_user,
    Action.TRADE_PUBKEY: handle_trade_pubkey,
    Action.PAY_INVOICE: _refuse_with(CantDoReason.INVALID_ACTION),
    Action.NEW_ORDER: _refuse_with(CantDoReason.INVALID_ACTION),
    Action.ADMIN_SETTLE: _refuse_with(CantDoReason.NOT_AUTHORIZED),
    Action.ADMIN_CANCEL: _refuse_with(CantDoReason.NOT_AUTHORIZED),
    Action.ADMIN_TAKE_DISPUTE: _refuse_with(CantDoReason.NOT_AUTHORIZED),
}


# LND invoice events that go to ``taker_bonds`` when their hash is a bond's
BOND_INVOICE_EVENTS = (
    HoldInvoiceCreated,
    HoldInvoiceCreateFailed,
    InvoiceAccepted,
    InvoiceCanceled,
    InvoiceSettled,
)


def decide(state: OrderState | None, event: OrderEvent, ctx: DecisionContext) -> Decision:
    """The whole outcome of one event for one order (``state`` None = no such order yet)."""
    if isinstance(event, ClientRequest):
        return _decide_request(state, event, ctx)
    if state is None:
        return Decision(None)
    return _decide_event(state, event, ctx)


def _decide_request(
    state: OrderState | None, request: ClientRequest, ctx: DecisionContext
) -> Decision:
    action = request.message.action
    if state is None:
        if action == Action.NEW_ORDER:
            return handle_new_order(request, ctx)
        if action in CLIENT_ACTIONS:
            return Decision(None, (cant_do(request, CantDoReason.NOT_FOUND),))
        return Decision(None)
    handler = CLIENT_ACTIONS.get(action)
    if handler is None:
        return Decision(state)
    return handler(state, request, ctx)


def _decide_event(state: OrderState, event: OrderEvent, ctx: DecisionContext) -> Decision:
    if isinstance(event, BOND_INVOICE_EVENTS):
        bond = bond_hooks.bond_with_hash(state, event.hash)
        if bond is not None:
            return _bond_invoice_event(state, event, ctx)
    if isinstance(event, HoldInvoiceCreated):
        return on_hold_invoice_created(state, event)
    if isinstance(event, HoldInvoiceCreateFailed):
        return on_hold_invoice_create_failed(state, event, ctx)
    if isinstance(event, InvoiceAccepted):
        return on_invoice_accepted(state, event, ctx)
    if isinstance(event, InvoiceCanceled):
        return on_invoice_canceled(state, event, ctx)
    if isinstance(event, InvoiceSettled):
        return Decision(state)  # only logged (our own settle, or a bond slash in Part B)
    if isinstance(event, PaymentSucceeded):
        return on_payment_succeeded(state, event, ctx)
    if isinstance(event, PaymentFailed):
        return on_payment_failed(state, event, ctx)
    if isinstance(event, DeadlineReached):
        return on_deadline(state, event.deadline, ctx)
    return Decision(state)


def _bond_invoice_event(state: OrderState, event: OrderEvent, ctx: DecisionContext) -> Decision:
    bonds = bond_hooks.taker_bonds_module()
    if isinstance(event, HoldInvoiceCreated):
        return bonds.on_bond_invoice_created(
            state, event.hash, event.payment_request, ctx, request_id=event.request_id
        )
    if isinstance(event, HoldInvoiceCreateFailed):
        return bonds.on_bond_invoice_failed(state, event.hash, ctx)
    if isinstance(event, InvoiceAccepted):
        return bonds.on_bond_accepted(state, event.hash, ctx, apply_take)
    if isinstance(event, InvoiceSettled):
        return bonds.on_bond_settled(state, event.hash, ctx)
    return bonds.on_bond_canceled(state, event.hash, ctx)
