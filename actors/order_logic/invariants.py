"""The bond invariants I1–I9 of BONDS.md §5, checked over a state and what happened so far.

``BondHistory`` accumulates what a test harness saw (decisions' effects, what
LND did with each HTLC, which bonds were ever locked or released, which
``canceled`` notice belongs to which bond); ``check_invariants`` returns one
line per broken rule, empty when all hold. Used after every step of every
scenario and of the property test.

Rules of this file: pure and read-only over the order state — it never
decides anything and never changes a state; it knows Part A only (any
settled bond HTLC is a violation, there is no slash yet).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from adapters.nostr.protocol.enums import Action, Kind, Status

from .model import (
    BondRecord,
    BondRole,
    BondState,
    CancelHoldInvoice,
    Decision,
    OrderState,
    PublishOrder,
    SendMessage,
    SettleHoldInvoice,
)

TERMINAL_STATUSES = frozenset(
    {
        Status.SUCCESS,
        Status.CANCELED,
        Status.COOPERATIVELY_CANCELED,
        Status.CANCELED_BY_ADMIN,
        Status.COMPLETED_BY_ADMIN,
        Status.EXPIRED,
    }
)
# Statuses of a running trade: the winner's bond is locked and its take is on the row.
TRADE_STATUSES = frozenset(
    {
        Status.WAITING_BUYER_INVOICE,
        Status.WAITING_PAYMENT,
        Status.ACTIVE,
        Status.FIAT_SENT,
        Status.DISPUTE,
    }
)
RACE_STATUSES = frozenset({Status.PENDING, Status.WAITING_TAKER_BOND})


@dataclass
class BondHistory:
    """Everything a harness observed about one order's bonds, accumulated step by step.

    ``bonds_on_take`` says whether takes of this run post bonds (I4 then demands a
    locked bond in every trade state). LND facts (``accepted``, ``settled``,
    ``cancelled``) are reported by the harness's Lightning side.
    """

    bonds_on_take: bool = True
    accepted: set[str] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)
    cancelled: set[str] = field(default_factory=set)
    cancel_requested: set[str] = field(default_factory=set)
    settle_requested: set[str] = field(default_factory=set)
    messages: dict[str, list[Action]] = field(default_factory=dict)
    ever_locked: set[str] = field(default_factory=set)
    ever_released: set[str] = field(default_factory=set)
    bond_notices: Counter[str] = field(default_factory=Counter)
    stray_canceled: Counter[str] = field(default_factory=Counter)
    last_published: str | None = None
    transition_faults: list[str] = field(default_factory=list)

    def record_decision(self, before: OrderState | None, decision: Decision) -> None:
        """Fold one decision in: bond transitions, effects, and whose ``canceled`` is whose."""
        after = decision.state
        old = {b.id: b for b in before.bonds} if before is not None else {}
        canceled_to: Counter[str] = Counter()
        for effect in decision.effects:
            if isinstance(effect, SendMessage):
                self.messages.setdefault(effect.recipient, []).append(effect.message.action)
                if effect.message.action == Action.CANCELED:
                    canceled_to[effect.recipient] += 1
            elif isinstance(effect, CancelHoldInvoice):
                self.cancel_requested.add(effect.hash)
            elif isinstance(effect, SettleHoldInvoice):
                self.settle_requested.add(effect.hash)
            elif isinstance(effect, PublishOrder):
                self.last_published = effect.public_status
        if after is None:
            return
        newly_told: dict[str, list[str]] = {}
        for bond in after.bonds:
            prior = old.get(bond.id)
            left_released = prior is None or prior.state == BondState.RELEASED
            if bond.id in self.ever_released and bond.state != BondState.RELEASED and left_released:
                self.transition_faults.append(
                    f"I9: released bond {bond.id[:8]} became {bond.state}"
                )
            if bond.state == BondState.LOCKED:
                self.ever_locked.add(bond.id)
            if bond.state == BondState.RELEASED:
                self.ever_released.add(bond.id)
            if bond.canceled_notice_sent and (prior is None or not prior.canceled_notice_sent):
                newly_told.setdefault(bond.pubkey, []).append(bond.id)
            if prior is not None and prior.canceled_notice_sent and not bond.canceled_notice_sent:
                self.transition_faults.append(f"bond {bond.id[:8]} forgot its canceled notice")
        for pubkey, bond_ids in newly_told.items():
            if canceled_to[pubkey] < len(bond_ids):
                self.transition_faults.append(
                    f"I7: bond(s) of {pubkey[:8]} marked told without a canceled message"
                )
            for bond_id in bond_ids:
                self.bond_notices[bond_id] += 1
            canceled_to[pubkey] -= len(bond_ids)
        for pubkey, extra in canceled_to.items():
            if extra > 0:
                self.stray_canceled[pubkey] += extra


def _taker_bonds(state: OrderState) -> list[BondRecord]:
    return [b for b in state.bonds if b.role == BondRole.TAKER]


def _taker_fields_mismatch(state: OrderState, bond: BondRecord) -> list[str]:
    """I4: the order row's taker side against the locked bond's snapshot."""
    order = state.order
    if order.kind == Kind.SELL:
        row = (order.buyer_pubkey, order.master_buyer_pubkey, order.trade_index_buyer)
    else:
        row = (order.seller_pubkey, order.master_seller_pubkey, order.trade_index_seller)
    wanted = (bond.pubkey, bond.taker_identity, bond.taker_trade_index)
    problems = []
    if row != wanted:
        problems.append(f"I4: taker keys on the order {row} != locked bond's {wanted}")
    amounts = (order.fiat_amount, order.amount, order.fee, order.dev_fee)
    snap = (bond.taker_fiat_amount, bond.taker_amount, bond.taker_fee, bond.taker_dev_fee)
    if amounts != snap:
        problems.append(f"I4: (fiat, amount, fee, dev_fee) {amounts} != snapshot {snap}")
    if (
        order.kind == Kind.SELL
        and order.status == Status.WAITING_PAYMENT
        and bond.taker_invoice is not None
        and order.buyer_invoice != bond.taker_invoice
    ):
        problems.append("I4: buyer_invoice is not the winning take's invoice")
    return problems


def _untaken_row_problems(state: OrderState) -> list[str]:
    """I5: a listed order carries nothing of any take."""
    order = state.order
    if order.kind == Kind.SELL:
        taker_keys = (order.buyer_pubkey, order.master_buyer_pubkey, order.buyer_invoice)
    else:
        taker_keys = (order.seller_pubkey, order.master_seller_pubkey)
    problems = []
    if any(value is not None for value in taker_keys):
        problems.append(f"I5: {order.status} order carries taker fields {taker_keys}")
    if order.taken_at != 0 or order.hash is not None:
        problems.append(f"I5: {order.status} order has taken_at/hash set")
    if order.price_from_api and (order.amount, order.fee) != (0, 0):
        problems.append("I5: listed market order carries a quoted amount/fee")
    return problems


def check_invariants(state: OrderState, history: BondHistory, *, final: bool = False) -> list[str]:
    """Every broken invariant (I1–I9) as one line; ``final`` also demands settled outcomes.

    ``final`` means the harness is quiescent (LND reachable, outbox drained): then a
    paid loser's HTLC must actually be cancelled at LND, not only asked to be.
    """
    problems = list(history.transition_faults)
    order = state.order
    takers = _taker_bonds(state)
    bond_hashes = {b.hash for b in state.bonds}
    locked = [b for b in takers if b.state == BondState.LOCKED]
    requested = [b for b in takers if b.state == BondState.REQUESTED]

    # I1
    if len(locked) > 1:
        problems.append(f"I1: {len(locked)} taker bonds locked")
    # I2
    for hash_ in sorted((history.settled | history.settle_requested) & bond_hashes):
        problems.append(f"I2: bond HTLC {hash_[:8]} settled (no slash in Part A)")
    # I3
    if order.status in TERMINAL_STATUSES:
        for bond in state.bonds:
            if bond.state in (BondState.REQUESTED, BondState.LOCKED):
                problems.append(f"I3: {order.status} order keeps a {bond.state} bond")
    # I4
    if order.status in TRADE_STATUSES and history.bonds_on_take and not locked:
        problems.append(f"I4: {order.status} order without a locked taker bond")
    if locked and order.status not in RACE_STATUSES:
        problems.extend(_taker_fields_mismatch(state, locked[0]))
    # I5
    if order.status in RACE_STATUSES:
        problems.extend(_untaken_row_problems(state))
        if history.last_published not in (None, "pending"):
            problems.append(f"I5: {order.status} order published as {history.last_published}")
    # I6
    racing = bool(requested) and not locked
    if order.status == Status.WAITING_TAKER_BOND and not racing:
        problems.append("I6: waiting-taker-bond without requested bonds (or with a lock)")
    if racing and order.status != Status.WAITING_TAKER_BOND:
        problems.append(f"I6: requested bonds race but the order is {order.status}")
    if order.status == Status.PENDING and (requested or locked):
        problems.append("I6: pending order with active taker bonds")
    if locked and requested:
        problems.append("I6: requested bonds left beside a locked one")
    # I7
    for bond in takers:
        if history.bond_notices[bond.id] > 1:
            problems.append(
                f"I7: bond {bond.id[:8]} told canceled {history.bond_notices[bond.id]}×"
            )
        if bond.hash not in history.accepted or bond.id in history.ever_locked:
            continue
        if bond.state != BondState.RELEASED:
            problems.append(f"I7: paid loser bond {bond.id[:8]} is {bond.state}")
        if bond.hash not in history.cancel_requested:
            problems.append(f"I7: paid loser bond {bond.id[:8]} never cancelled")
        if final and bond.hash not in history.cancelled:
            problems.append(f"I7: paid loser bond {bond.id[:8]} HTLC still held at the end")
        if history.bond_notices[bond.id] != 1:
            problems.append(
                f"I7: paid loser bond {bond.id[:8]} told canceled "
                f"{history.bond_notices[bond.id]}× (want exactly 1)"
            )
    winners = {b.pubkey for b in takers if b.id in history.ever_locked}
    for pubkey, extra in history.stray_canceled.items():
        if pubkey not in winners and pubkey != order.creator_pubkey and extra:
            if any(b.pubkey == pubkey for b in takers):
                problems.append(f"I7: racer {pubkey[:8]} got {extra} canceled not tied to a bond")
    # I8
    active_by_key = Counter(
        b.pubkey for b in takers if b.state in (BondState.REQUESTED, BondState.LOCKED)
    )
    for pubkey, count in active_by_key.items():
        if count > 1:
            problems.append(f"I8: {pubkey[:8]} holds {count} active bonds")
    # I9
    for bond in state.bonds:
        if bond.id in history.ever_released and bond.state == BondState.LOCKED:
            problems.append(f"I9: released bond {bond.id[:8]} is locked")
    return problems
