"""The taker bond: concurrent bonds on one order, first ACCEPTED wins (BONDS.md §4, Part A).

Every rule about a taker bond's life lives here: asking for it at take time,
the idempotent retake, the lock race, releasing losers, cancels during the
bond window, expiry, and the release on every exit. The order-flow
dispatcher (``decide``) calls these functions; it owns the rest of the order.

Rules of this file: pure functions of ``(state, input, ctx)`` returning a new
state and effect values — no I/O, no clock, no randomness (ids and
preimages come from ``derive_bytes(ctx.entropy, …)``). A bond decided
``released`` stays released whatever LND later reports; its cancel is an
outbox effect, and an ACCEPTED for it is only ever answered with another
cancel. This file never settles a bond (that is Part B's slash) and never
writes the take onto the order row itself: promotion goes through the
``continue_take`` callback the dispatcher passes in.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable

from actors.bond_amount import bond_amount_sats
from adapters.nostr.protocol.enums import Action, CantDoReason, Status
from adapters.nostr.protocol.payloads import PaymentRequest, SmallOrder

from .evolve import replace
from .model import (
    ACTIVE_BOND_STATES,
    AddHoldInvoice,
    BondRecord,
    BondRole,
    BondState,
    CancelHoldInvoice,
    ClientRequest,
    Deadline,
    DeadlineKind,
    Decision,
    DecisionContext,
    Effect,
    OrderRecord,
    OrderState,
    PublishOrder,
    RecordTradeIndex,
    SendMessage,
    TakeSnapshot,
    derive_bytes,
)
from .publication import public_status
from .replies import cant_do, notify

# How the dispatcher continues a take once a bond won: ``apply_take`` of take.py.
ContinueTake = Callable[
    [OrderState, TakeSnapshot, DecisionContext, int | None],
    tuple[OrderState, tuple[Effect, ...]],
]

BOND_MEMO_PREFIX = "mostro bond order_id="
# Bond invoice expiry (ours, BONDS.md §4.1): at most LND's default, at least a minute.
MAX_BOND_INVOICE_EXPIRY = 86_400
MIN_BOND_INVOICE_EXPIRY = 60
# Statuses in which a requested bond may still win the race.
RACE_STATUSES = frozenset({Status.PENDING, Status.WAITING_TAKER_BOND})

# LND's view of a bond invoice, recorded in ``BondRecord.invoice_state``.
INVOICE_OPEN = "open"
INVOICE_ACCEPTED = "accepted"
INVOICE_SETTLED = "settled"
INVOICE_CANCELED = "canceled"


# ---------------------------------------------------------------- queries
def bonds_on_take(settings: object) -> bool:
    """Whether a take must post a bond now (BONDS.md §4: enabled and apply_to take/both)."""
    bond = getattr(settings, "anti_abuse_bond", None)
    if bond is None or not getattr(bond, "enabled", False):
        return False
    return getattr(bond, "apply_to", "take") in ("take", "both")


def taker_bonds(state: OrderState) -> tuple[BondRecord, ...]:
    return tuple(b for b in state.bonds if b.role == BondRole.TAKER)


def active_taker_bonds(state: OrderState) -> tuple[BondRecord, ...]:
    """Requested or locked taker bonds, oldest first (the repository's order)."""
    return tuple(
        sorted(
            (b for b in taker_bonds(state) if b.state in ACTIVE_BOND_STATES),
            key=lambda b: b.created_at,
        )
    )


def has_active_taker_bonds(state: OrderState) -> bool:
    """True while bonds race or a winner holds; the dispatcher must route through here then."""
    return bool(active_taker_bonds(state))


def locked_taker_bond(state: OrderState) -> BondRecord | None:
    return next((b for b in taker_bonds(state) if b.state == BondState.LOCKED), None)


def active_bond_of(state: OrderState, pubkey: str) -> BondRecord | None:
    """The active taker bond of one trade key on this order (never "the" bond of the order)."""
    return next((b for b in active_taker_bonds(state) if b.pubkey == pubkey), None)


def bond_by_hash(state: OrderState, payment_hash: str) -> BondRecord | None:
    return next((b for b in state.bonds if b.hash == payment_hash), None)


def bond_by_id(state: OrderState, bond_id: str) -> BondRecord | None:
    return next((b for b in state.bonds if b.id == bond_id), None)


def snapshot_of(bond: BondRecord) -> TakeSnapshot:
    """The take a bond holds, as the order flow's ``apply_take`` expects it."""
    return TakeSnapshot(
        taker_pubkey=bond.pubkey,
        identity=bond.taker_identity or bond.pubkey,
        trade_index=bond.taker_trade_index,
        invoice=bond.taker_invoice,
        fiat_amount=bond.taker_fiat_amount or 0,
        amount=bond.taker_amount or 0,
        fee=bond.taker_fee or 0,
        dev_fee=bond.taker_dev_fee or 0,
    )


def bond_deadlines(state: OrderState) -> tuple[Deadline, ...]:
    """One BOND_EXPIRY per requested taker bond, keyed by bond id."""
    return tuple(
        Deadline(DeadlineKind.BOND_EXPIRY, bond.expires_at, bond.id)
        for bond in active_taker_bonds(state)
        if bond.state == BondState.REQUESTED and bond.expires_at is not None
    )


# ---------------------------------------------------------------- small builders
def _with_bonds(state: OrderState, changed: Iterable[BondRecord]) -> OrderState:
    """``state`` with the given bonds replaced by id (new ids appended)."""
    by_id = {b.id: b for b in changed}
    bonds = [by_id.pop(b.id, b) for b in state.bonds]
    bonds.extend(by_id.values())
    return replace(state, bonds=tuple(bonds))


def _canceled_notice(order: OrderRecord, bond: BondRecord) -> SendMessage:
    return notify(bond.pubkey, Action.CANCELED, order.id, trade_index=bond.taker_trade_index)


def _release(
    order: OrderRecord, bond: BondRecord, now: int, *, tell: bool
) -> tuple[BondRecord, tuple[Effect, ...]]:
    """Decide a bond ``released``: cancel its HTLC (outbox, retried) and maybe tell its taker."""
    effects: list[Effect] = [CancelHoldInvoice(bond.hash)]
    released = replace(bond, state=BondState.RELEASED, released_at=now)
    if tell and bond.role == BondRole.TAKER and not bond.canceled_notice_sent:
        effects.append(_canceled_notice(order, bond))
        released = replace(released, canceled_notice_sent=True)
    return released, tuple(effects)


def _pay_bond_invoice(order: OrderRecord, bond: BondRecord, request_id: int | None) -> SendMessage:
    """``pay-bond-invoice`` with ``[SmallOrder(status pending, amount = bond), bolt11, null]``."""
    assert bond.payment_request is not None, "a bolt11 is sent only once LND made it"
    small = SmallOrder(
        amount=bond.amount_sats,
        fiat_code=order.fiat_code,
        fiat_amount=bond.taker_fiat_amount if bond.taker_fiat_amount is not None else 0,
        payment_method=order.payment_method,
        premium=order.premium,
        id=order.id,
        kind=order.kind,
        status=Status.PENDING,
        min_amount=order.min_amount,
        max_amount=order.max_amount,
        created_at=order.created_at,
        expires_at=order.expires_at,
    )
    return notify(
        bond.pubkey,
        Action.PAY_BOND_INVOICE,
        order.id,
        PaymentRequest(small, bond.payment_request, None),
        request_id=request_id,
        trade_index=bond.taker_trade_index,
    )


def _back_to_pending_if_unbonded(state: OrderState) -> tuple[OrderState, tuple[Effect, ...]]:
    """The last racing bond went away: ``waiting-taker-bond`` → ``pending``, republished."""
    if state.order.status != Status.WAITING_TAKER_BOND or active_taker_bonds(state):
        return state, ()
    order = replace(state.order, status=Status.PENDING)
    return replace(state, order=order), (_publish(order),)


def _publish(order: OrderRecord) -> PublishOrder:
    published = public_status(order.status, order.kind)
    assert published is not None, f"{order.status} publishes nothing"
    return PublishOrder(order, published)


def bond_invoice_expiry(order: OrderRecord, now: int) -> int:
    """Seconds the bond invoice stays payable: min(24 h, until the order expires), ≥ 60 s."""
    if order.expires_at > 0:
        seconds = min(MAX_BOND_INVOICE_EXPIRY, order.expires_at - now)
    else:
        seconds = MAX_BOND_INVOICE_EXPIRY
    return max(MIN_BOND_INVOICE_EXPIRY, seconds)


# ---------------------------------------------------------------- take (§4.1)
def precheck_take(
    state: OrderState, request: ClientRequest, ctx: DecisionContext
) -> Decision | None:
    """§4.1 checks 2–3, after the usual take checks.

    A locked *taker* bond refuses the take; a sender that already holds an
    active bond gets its own bolt11 again (nothing new is created). ``None``
    means "go on with the take". The dispatcher calls it when bonds apply to
    takes (``bonds_on_take``), after its own take checks.
    """
    if locked_taker_bond(state) is not None:
        return Decision(state, (cant_do(request, CantDoReason.PENDING_ORDER_EXISTS),))
    own = active_bond_of(state, request.sender)
    if own is None:
        return None
    if own.payment_request is None:
        # LND has not answered yet: the bolt11 goes out on HoldInvoiceCreated.
        return Decision(state, ())
    return Decision(state, (_pay_bond_invoice(state.order, own, request.message.request_id),))


def request_bond(
    state: OrderState, snapshot: TakeSnapshot, request: ClientRequest, ctx: DecisionContext
) -> Decision:
    """§4.1 steps 4–7: a new ``requested`` bond holding the take; the order row is untouched."""
    order = state.order
    settings = ctx.settings.anti_abuse_bond
    preimage = derive_bytes(ctx.entropy, "bond-preimage")
    payment_hash = hashlib.sha256(preimage).hexdigest()
    bond_id = str(uuid.UUID(bytes=derive_bytes(ctx.entropy, "bond-id")[:16], version=4))
    expiry = bond_invoice_expiry(order, ctx.now)
    amount = bond_amount_sats(snapshot.amount, settings.amount_pct, settings.base_amount_sats)
    bond = BondRecord(
        id=bond_id,
        order_id=order.id,
        pubkey=snapshot.taker_pubkey,
        role=BondRole.TAKER,
        amount_sats=amount,
        state=BondState.REQUESTED,
        hash=payment_hash,
        preimage=preimage.hex(),
        created_at=ctx.now,
        expires_at=ctx.now + expiry,
        taker_identity=snapshot.identity,
        taker_trade_index=snapshot.trade_index,
        taker_invoice=snapshot.invoice,
        taker_fiat_amount=snapshot.fiat_amount,
        taker_amount=snapshot.amount,
        taker_fee=snapshot.fee,
        taker_dev_fee=snapshot.dev_fee,
    )
    effects: list[Effect] = []
    if snapshot.trade_index is not None:
        effects.append(RecordTradeIndex(snapshot.identity, snapshot.trade_index))
    effects.append(
        AddHoldInvoice(
            hash=payment_hash,
            amount_sat=amount,
            memo=f"{BOND_MEMO_PREFIX}{order.id}",
            cltv_expiry=ctx.settings.lightning.hold_invoice_cltv_delta,
            expiry=expiry,
            request_id=request.message.request_id,
        )
    )
    new_order = replace(order, status=Status.WAITING_TAKER_BOND)
    new_state = replace(_with_bonds(state, (bond,)), order=new_order)
    # The published status stays `pending` (pending and waiting-taker-bond share it).
    return Decision(new_state, tuple(effects))


# ---------------------------------------------------------------- LND answers
def on_bond_invoice_created(
    state: OrderState,
    payment_hash: str,
    payment_request: str,
    ctx: DecisionContext,
    request_id: int | None = None,
) -> Decision:
    """LND made the bond invoice: show it to a still-racing taker, or cancel it if it lost.

    ``request_id`` is the take's, echoed by LND's answer (``HoldInvoiceCreated.request_id``).
    """
    bond = bond_by_hash(state, payment_hash)
    if bond is None:
        return Decision(state, ())
    stored = replace(
        bond, payment_request=payment_request, invoice_state=bond.invoice_state or INVOICE_OPEN
    )
    new_state = _with_bonds(state, (stored,))
    if bond.state == BondState.REQUESTED:
        if bond.payment_request == payment_request:
            # A repeated answer (AddHoldInvoice re-sent from the outbox): the bolt11 already
            # went out through the outbox; a retake asks for it again if needed.
            return Decision(new_state, ())
        return Decision(new_state, (_pay_bond_invoice(state.order, stored, request_id),))
    if bond.state == BondState.RELEASED:
        # Released before LND answered (lost, cancelled, expired): the invoice exists now, kill it.
        return Decision(new_state, (CancelHoldInvoice(bond.hash),))
    return Decision(new_state, ())


def on_bond_invoice_failed(state: OrderState, payment_hash: str, ctx: DecisionContext) -> Decision:
    """LND refused to make the bond invoice: the take cannot go on, its bond is released."""
    bond = bond_by_hash(state, payment_hash)
    if bond is None or bond.state != BondState.REQUESTED:
        return Decision(state, ())
    released, effects = _release(state.order, bond, ctx.now, tell=True)
    new_state, publish = _back_to_pending_if_unbonded(_with_bonds(state, (released,)))
    return Decision(new_state, effects + publish)


def on_bond_accepted(
    state: OrderState, payment_hash: str, ctx: DecisionContext, continue_take: ContinueTake
) -> Decision:
    """§4.2: the first ACCEPTED in this order's mailbox locks; everything else is cancelled.

    The winner's lock, the losers' releases and the promoted take are one
    decision, so no half-promoted order can exist.
    """
    bond = bond_by_hash(state, payment_hash)
    if bond is None:
        return Decision(state, ())  # unknown hash: the dispatcher logs it
    seen = replace(bond, invoice_state=INVOICE_ACCEPTED)
    order = state.order

    if bond.state == BondState.LOCKED:
        # Duplicate ACCEPTED (reconnect, restart): the outbox still carries any undone effects.
        return Decision(_with_bonds(state, (seen,)), ())

    if bond.state != BondState.REQUESTED:
        # Released (lost, cancelled, expired, order gone) or Part B state: never lock, never
        # resurrect the take; cancel again (idempotent) and tell the taker once.
        effects: list[Effect] = [CancelHoldInvoice(bond.hash)]
        if bond.role == BondRole.TAKER and not bond.canceled_notice_sent:
            effects.append(_canceled_notice(order, bond))
            seen = replace(seen, canceled_notice_sent=True)
        return Decision(_with_bonds(state, (seen,)), tuple(effects))

    if bond.role != BondRole.TAKER:
        # A maker bond's lock is Part B (waiting-maker-bond); record what LND said.
        return Decision(_with_bonds(state, (seen,)), ())

    if locked_taker_bond(state) is not None or order.status not in RACE_STATUSES:
        # Lost the race (or the order left the bond window): refund, never settle.
        released, effects_lost = _release(order, seen, ctx.now, tell=True)
        return Decision(_with_bonds(state, (released,)), effects_lost)

    winner = replace(seen, state=BondState.LOCKED, locked_at=ctx.now)
    changed: list[BondRecord] = [winner]
    loser_effects: list[Effect] = []
    for other in active_taker_bonds(state):
        if other.id == bond.id or other.state != BondState.REQUESTED:
            continue
        released, effs = _release(order, other, ctx.now, tell=True)
        changed.append(released)
        loser_effects.extend(effs)
    racing_over = _with_bonds(state, changed)
    promoted, take_effects = continue_take(racing_over, snapshot_of(winner), ctx, None)
    return Decision(promoted, tuple(loser_effects) + tuple(take_effects))


def on_bond_canceled(state: OrderState, payment_hash: str, ctx: DecisionContext) -> Decision:
    """LND CANCELED a bond invoice: it expired there, or a cancel we sent went through."""
    bond = bond_by_hash(state, payment_hash)
    if bond is None:
        return Decision(state, ())
    seen = replace(bond, invoice_state=INVOICE_CANCELED)
    if bond.state == BondState.REQUESTED:
        released = replace(
            seen, state=BondState.RELEASED, released_at=ctx.now, release_confirmed_at=ctx.now
        )
        new_state, publish = _back_to_pending_if_unbonded(_with_bonds(state, (released,)))
        return Decision(new_state, publish)
    if bond.state == BondState.RELEASED and bond.release_confirmed_at is None:
        seen = replace(seen, release_confirmed_at=ctx.now)
    # A locked bond cancelled behind our back stays locked: the inspector flags the mismatch.
    return Decision(_with_bonds(state, (seen,)), ())


def on_bond_settled(state: OrderState, payment_hash: str, ctx: DecisionContext) -> Decision:
    """SETTLED is only ever our own slash (Part B); here it is recorded for the inspector."""
    bond = bond_by_hash(state, payment_hash)
    if bond is None:
        return Decision(state, ())
    return Decision(_with_bonds(state, (replace(bond, invoice_state=INVOICE_SETTLED),)), ())


def on_bond_expired(state: OrderState, bond_id: str, ctx: DecisionContext) -> Decision:
    """The BOND_EXPIRY deadline: an unpaid bond past its invoice expiry is released."""
    bond = bond_by_id(state, bond_id)
    if (
        bond is None
        or bond.state != BondState.REQUESTED
        or bond.expires_at is None
        or ctx.now < bond.expires_at
    ):
        return Decision(state, ())
    released, effects = _release(state.order, bond, ctx.now, tell=False)
    new_state, publish = _back_to_pending_if_unbonded(_with_bonds(state, (released,)))
    return Decision(new_state, effects + publish)


# ---------------------------------------------------------------- cancel (§4.3)
def cancel_in_bond_window(
    state: OrderState, request: ClientRequest, ctx: DecisionContext
) -> Decision:
    """``cancel`` while bonds race: the maker cancels the order, a racer only its own bond."""
    order = state.order
    request_id = request.message.request_id
    if request.sender == order.creator_pubkey:
        canceled = replace(order, status=Status.CANCELED)
        changed: list[BondRecord] = []
        bond_effects: list[Effect] = []
        for bond in state.bonds:
            if bond.state in ACTIVE_BOND_STATES:
                released, effs = _release(order, bond, ctx.now, tell=True)
                changed.append(released)
                bond_effects.extend(effs)
        new_state = replace(_with_bonds(state, changed), order=canceled)
        effects: tuple[Effect, ...] = (
            _publish(canceled),
            notify(order.creator_pubkey, Action.CANCELED, order.id, request_id=request_id),
            *bond_effects,
        )
        return Decision(new_state, effects)

    own = active_bond_of(state, request.sender)
    if own is None or own.state != BondState.REQUESTED:
        return Decision(state, (cant_do(request, CantDoReason.IS_NOT_YOUR_ORDER),))
    released = replace(
        own, state=BondState.RELEASED, released_at=ctx.now, canceled_notice_sent=True
    )
    notice = notify(
        own.pubkey,
        Action.CANCELED,
        order.id,
        request_id=request_id,
        trade_index=own.taker_trade_index,
    )
    new_state, publish = _back_to_pending_if_unbonded(_with_bonds(state, (released,)))
    return Decision(new_state, (CancelHoldInvoice(own.hash), notice, *publish))


# ---------------------------------------------------------------- every exit (§4.4)
def release_taker_bonds(
    state: OrderState, ctx: DecisionContext, notify: bool
) -> tuple[OrderState, tuple[Effect, ...]]:
    """Release every active taker bond (order exit, re-list, expiry); tell takers if asked.

    Never gated on the current setting: bonds made while the feature was on are
    released after it is switched off. Order status is the caller's business.
    """
    changed: list[BondRecord] = []
    effects: list[Effect] = []
    for bond in active_taker_bonds(state):
        released, effs = _release(state.order, bond, ctx.now, tell=notify)
        changed.append(released)
        effects.extend(effs)
    return _with_bonds(state, changed), tuple(effects)
