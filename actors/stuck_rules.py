"""When is an order stuck? The inspector's rules, as pure functions of records and ``now``.

Everything that decides "stuck" lives here; nothing here reads the database,
asks LND or reads a clock: the caller gathers an ``OrderFacts`` (the order's
state, the deadlines it wants, its undone outbox rows, and optionally what
LND says about its invoices) and a ``Thresholds``, and gets back findings
that name the rule and say why in one sentence.

The rules (``ORDER_RULES``, DESIGN.md §5, BONDS.md §3.2):
* ``deadline-passed`` — a deadline the order wants is more than a grace in
  the past (the clock should have fired it and the order moved on);
* ``outbox-undone`` — an effect committed longer ago than a threshold is
  still not done (an adapter is failing or down);
* ``bond-invoice-mismatch`` — a bond's decided ``state`` contradicts the last
  invoice state LND reported (or reports now) for longer than a grace;
* ``escrow-invoice-mismatch`` — only with LND's answer (``--lnd``): the
  order's status says its escrow is held / refunded / settled, LND says
  otherwise;
* ``bond-locked-outside-trade`` — a locked bond on an order that is not in a
  trade (every exit releases, BONDS.md §4.4);
* ``no-path-forward`` — the order is in a status whose way out needs
  something it does not have (waiting-payment without a hash, a trade
  without its escrow, a payout with every attempt spent, ...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from adapters.nostr.protocol.enums import Status

from .order_logic.model import BondRecord, BondState, Deadline, OrderState

RULE_DEADLINE = "deadline-passed"
RULE_OUTBOX = "outbox-undone"
RULE_BOND_MISMATCH = "bond-invoice-mismatch"
RULE_ESCROW_MISMATCH = "escrow-invoice-mismatch"
RULE_LOCKED_OUTSIDE_TRADE = "bond-locked-outside-trade"
RULE_NO_PATH = "no-path-forward"

# LND invoice states, lower-case as the `invoice_state` column stores them.
INVOICE_OPEN = "open"
INVOICE_ACCEPTED = "accepted"
INVOICE_SETTLED = "settled"
INVOICE_CANCELED = "canceled"

# Statuses in which a locked bond belongs to a running trade (it is released at every exit).
TRADE_STATUSES = frozenset({
    Status.WAITING_BUYER_INVOICE, Status.WAITING_PAYMENT, Status.ACTIVE, Status.FIAT_SENT,
    Status.SETTLED_HOLD_INVOICE, Status.DISPUTE,
})
TERMINAL_STATUSES = frozenset({
    Status.SUCCESS, Status.CANCELED, Status.COOPERATIVELY_CANCELED, Status.CANCELED_BY_ADMIN,
    Status.SETTLED_BY_ADMIN, Status.COMPLETED_BY_ADMIN, Status.EXPIRED,
})
# Statuses in which the seller's escrow must be held by LND.
ESCROW_HELD_STATUSES = frozenset({Status.ACTIVE, Status.FIAT_SENT, Status.DISPUTE})


@dataclass(frozen=True)
class Thresholds:
    """How long each condition may last before it counts as stuck (seconds)."""

    deadline_grace: int = 120
    outbox_age: int = 300
    bond_mismatch_grace: int = 300
    payout_in_flight: int = 600


@dataclass(frozen=True)
class OutboxItem:
    """One outbox row as the rules see it."""

    id: int
    order_id: str | None
    effect: str
    target: str
    created_at: int
    attempts: int = 0
    last_error: str | None = None
    done_at: int | None = None
    summary: str = ""  # the effect in one line (what it does, to whom)


@dataclass(frozen=True)
class OrderFacts:
    """Everything the rules may look at for one order.

    ``lnd_states`` maps a payment hash to the state LND reports now
    (lower-case); when a bond's hash is in it, it replaces the stored
    ``invoice_state`` (the ``--lnd`` option).
    """

    state: OrderState
    deadlines: tuple[Deadline, ...]
    undone_outbox: tuple[OutboxItem, ...] = ()
    payment_attempts_limit: int = 3
    lnd_states: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StuckFinding:
    order_id: str | None
    rule: str
    reason: str
    since: int | None = None


Rule = Callable[[OrderFacts, int, Thresholds], Iterable[StuckFinding]]


def _ago(now: int, since: int) -> str:
    seconds = max(0, now - since)
    if seconds >= 3 * 3600:
        return f"{seconds // 3600} h ago"
    if seconds >= 180:
        return f"{seconds // 60} min ago"
    return f"{seconds} s ago"


def deadline_passed(facts: OrderFacts, now: int, limits: Thresholds) -> Iterable[StuckFinding]:
    order_id = facts.state.order.id
    for deadline in facts.deadlines:
        if deadline.at + limits.deadline_grace < now:
            key = f" ({deadline.key})" if deadline.key else ""
            yield StuckFinding(
                order_id, RULE_DEADLINE,
                f"{deadline.kind.value}{key} was due {_ago(now, deadline.at)} "
                f"(status {facts.state.order.status.value}); the clock did not move the order on",
                deadline.at,
            )


def outbox_undone(facts: OrderFacts, now: int, limits: Thresholds) -> Iterable[StuckFinding]:
    return stale_outbox(facts.undone_outbox, now, limits)


def stale_outbox(
    items: Iterable[OutboxItem], now: int, limits: Thresholds
) -> Iterable[StuckFinding]:
    """Undone effects older than the threshold (also used for rows of no order)."""
    for item in items:
        if item.done_at is None and item.created_at + limits.outbox_age < now:
            error = f"; last error: {item.last_error}" if item.last_error else ""
            yield StuckFinding(
                item.order_id, RULE_OUTBOX,
                f"outbox #{item.id} {item.effect} → {item.target} undone since "
                f"{_ago(now, item.created_at)} after {item.attempts} attempt(s){error}",
                item.created_at,
            )


def _bond_contradiction(bond: BondRecord, invoice_state: str) -> tuple[str, int] | None:
    """(what is wrong, since when) if the bond's state and LND's invoice state disagree."""
    state = bond.state
    if state == BondState.RELEASED:
        since = bond.released_at or bond.created_at
        if invoice_state == INVOICE_ACCEPTED:
            return "released but LND still holds its HTLC (accepted): the cancel has not gone through", since
        if invoice_state == INVOICE_SETTLED:
            return "released but LND reports the invoice settled", since
        if invoice_state == INVOICE_OPEN and bond.release_confirmed_at is None:
            return "released but its invoice is still open (cancel not confirmed by LND)", since
        return None
    if state == BondState.LOCKED:
        since = bond.locked_at or bond.created_at
        if invoice_state in (INVOICE_CANCELED, INVOICE_SETTLED):
            return f"locked but LND reports the invoice {invoice_state}: the HTLC is gone", since
        if invoice_state == INVOICE_OPEN:
            return "locked but LND reports the invoice open (never accepted)", since
        return None
    if state == BondState.REQUESTED:
        if invoice_state == INVOICE_ACCEPTED:
            return "requested but LND reports it accepted: it should have locked or been cancelled", bond.created_at
        if invoice_state == INVOICE_SETTLED:
            return "requested but LND reports it settled", bond.created_at
        return None
    if state in (BondState.SLASHED, BondState.PENDING_PAYOUT):
        since = bond.slashed_at or bond.created_at
        if invoice_state in (INVOICE_ACCEPTED, INVOICE_OPEN, INVOICE_CANCELED):
            return f"{state.value} but LND reports the invoice {invoice_state} (not settled)", since
    return None


def bond_invoice_mismatch(facts: OrderFacts, now: int, limits: Thresholds) -> Iterable[StuckFinding]:
    for bond in facts.state.bonds:
        live = facts.lnd_states.get(bond.hash)
        invoice_state = live if live is not None else bond.invoice_state
        if not invoice_state:
            continue
        found = _bond_contradiction(bond, invoice_state.lower())
        if found is None:
            continue
        what, since = found
        if since + limits.bond_mismatch_grace >= now:
            continue
        source = "LND now" if live is not None else "last reported"
        yield StuckFinding(
            facts.state.order.id, RULE_BOND_MISMATCH,
            f"bond {bond.id} ({bond.hash[:12]}…) {what} [{source}: {invoice_state}; "
            f"since {_ago(now, since)}]",
            since,
        )


# order status -> the escrow invoice states LND may report for it (others contradict it)
ESCROW_STATES_BY_STATUS: dict[Status, frozenset[str]] = {
    **{status: frozenset({INVOICE_ACCEPTED}) for status in ESCROW_HELD_STATUSES},
    Status.WAITING_PAYMENT: frozenset({INVOICE_OPEN}),
    Status.SETTLED_HOLD_INVOICE: frozenset({INVOICE_SETTLED}),
    Status.SUCCESS: frozenset({INVOICE_SETTLED}),
    **{status: frozenset({INVOICE_CANCELED, INVOICE_OPEN}) for status in (
        Status.CANCELED, Status.COOPERATIVELY_CANCELED, Status.CANCELED_BY_ADMIN, Status.EXPIRED)},
}


def escrow_invoice_mismatch(facts: OrderFacts, now: int, limits: Thresholds) -> Iterable[StuckFinding]:
    order = facts.state.order
    reported = facts.lnd_states.get(order.hash) if order.hash else None
    allowed = ESCROW_STATES_BY_STATUS.get(order.status)
    if reported is None or allowed is None or reported in allowed:
        return
    since = order.invoice_held_at or order.taken_at or order.created_at
    if since + limits.bond_mismatch_grace >= now:
        return
    yield StuckFinding(
        order.id, RULE_ESCROW_MISMATCH,
        f"order is {order.status.value} but LND reports its escrow invoice "
        f"({order.hash[:12]}…) {reported}, expected {' or '.join(sorted(allowed))}",
        since,
    )


def bond_locked_outside_trade(
    facts: OrderFacts, now: int, limits: Thresholds
) -> Iterable[StuckFinding]:
    order = facts.state.order
    if order.status in TRADE_STATUSES:
        return
    for bond in facts.state.bonds:
        if bond.state == BondState.LOCKED:
            yield StuckFinding(
                order.id, RULE_LOCKED_OUTSIDE_TRADE,
                f"bond {bond.id} ({bond.role.value}) is locked but the order is "
                f"{order.status.value}: every exit should have released it",
                bond.locked_at,
            )


def no_path_forward(facts: OrderFacts, now: int, limits: Thresholds) -> Iterable[StuckFinding]:
    order = facts.state.order
    findings = [StuckFinding(order.id, RULE_NO_PATH, reason, since)
                for reason, since in _dead_ends(facts, now, limits)]
    waits_for_payout = order.status == Status.SETTLED_HOLD_INVOICE and order.payout_payment_hash
    if (not findings and not facts.deadlines and not waits_for_payout
            and order.status not in TERMINAL_STATUSES and order.status != Status.DISPUTE):
        findings.append(StuckFinding(
            order.id, RULE_NO_PATH,
            f"{order.status.value} and the order wants no deadline and waits for no payout: "
            "nothing will move it",
        ))
    return findings


def _dead_ends(facts: OrderFacts, now: int, limits: Thresholds) -> Iterable[tuple[str, int | None]]:
    """(reason, since) for each specific way this order cannot go on."""
    order = facts.state.order
    status = order.status
    if status == Status.WAITING_PAYMENT and not order.hash:
        yield ("waiting-payment without a hold-invoice hash: the seller has nothing to pay",
               order.taken_at or None)
    if status in ESCROW_HELD_STATUSES and not order.hash:
        yield f"{status.value} without an escrow hash: nothing can be settled or cancelled", None
    if status in (Status.ACTIVE, Status.FIAT_SENT) and order.hash and not order.invoice_held_at:
        yield f"{status.value} but the escrow was never recorded as held (invoice_held_at = 0)", None
    if status == Status.DISPUTE and facts.state.dispute is None:
        yield "in dispute without a dispute row: no solver can take it", None
    if status in (Status.ACTIVE, Status.FIAT_SENT, Status.SETTLED_HOLD_INVOICE) and not order.buyer_invoice:
        yield f"{status.value} without a buyer invoice: the payout cannot be made", None
    if status != Status.SETTLED_HOLD_INVOICE:
        return
    limit = facts.payment_attempts_limit
    if order.failed_payment and order.payout_payment_hash is None and order.payment_attempts >= limit:
        yield (f"payout failed {order.payment_attempts} time(s) (limit {limit}) and no new "
               "invoice arrived: it waits for the buyer's add-invoice indefinitely",
               order.payout_claimed_at)
    claimed = order.payout_claimed_at
    if order.payout_payment_hash and claimed is not None and claimed + limits.payout_in_flight < now:
        yield (f"payout {order.payout_payment_hash[:12]}… in flight since {_ago(now, claimed)} "
               "with no result", claimed)


# rule table: every rule is run on every order the inspector looks at
ORDER_RULES: tuple[Rule, ...] = (
    deadline_passed,
    outbox_undone,
    bond_invoice_mismatch,
    escrow_invoice_mismatch,
    bond_locked_outside_trade,
    no_path_forward,
)


def stuck_findings(
    facts: OrderFacts, now: int, limits: Thresholds | None = None,
    rules: Sequence[Rule] = ORDER_RULES,
) -> list[StuckFinding]:
    """Every reason this order is stuck (empty when healthy)."""
    limits = limits or Thresholds()
    return [finding for rule in rules for finding in rule(facts, now, limits)]
