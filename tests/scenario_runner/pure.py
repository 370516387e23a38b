"""The pure-logic scenario runner: drives ``decide`` with a mailbox, an outbox and a fake LND.

How events are delivered here (the actor runners deliver them differently,
and share ``format`` and ``expectations``): one mailbox per order, handled
one event at a time; every decision's effects go to an outbox that is run
right after the decision (a refused LND call stays in it and is retried);
answers from the fake LND go to the back of the mailbox. ``restart``
reloads the state from its JSON copy, re-sends the outbox and re-subscribes
the active bonds (LND reports what changed while down, in its own order).
Invariants I1–I9 are checked after every step. Deterministic: the clock
starts at ``START`` and entropy is ``sha256(name:step:decision)``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actors.order_logic import taker_bonds
from actors.order_logic.deadlines import deadlines_of
from actors.order_logic.decide import decide
from actors.order_logic.invariants import BondHistory, check_invariants
from actors.order_logic.model import (
    AddHoldInvoice,
    BondRecord,
    BondRole,
    BondState,
    CancelHoldInvoice,
    ClientRequest,
    Deadline,
    DeadlineKind,
    DeadlineReached,
    Decision,
    DecisionContext,
    Effect,
    OrderState,
    PaymentSucceeded,
    PriceSnapshot,
    PublishOrder,
    SendMessage,
    SendPayment,
    SettleHoldInvoice,
)
from adapters.nostr.protocol.enums import Action, Kind
from adapters.nostr.protocol.payloads import Amount, Message, PaymentRequest

from .expectations import Observed, check_expectations
from .fake_lnd import FakeLnd
from .format import Scenario, Step
from .initial import MAKER_BOND_MEMO, MAKER_BOND_SATS, initial_order, locked_maker_bond
from .observe import observe_order
from .state_codec import dump_state, load_state

START = 1_700_000_000
NODE_SECRET_HEX = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
BASE_SETTINGS: dict[str, Any] = {
    "mostro": {"fee": 0.006, "expiration_seconds": 900},
    "lightning": {
        "lnd_cert_file": "/nonexistent/tls.cert",
        "lnd_macaroon_file": "/nonexistent/admin.macaroon",
        "lnd_grpc_host": "127.0.0.1:10009",
    },
    "nostr": {"relays": ["ws://127.0.0.1:7000"]},
    "anti_abuse_bond": {"enabled": True},
    "price": {"max_price_staleness_seconds": 1800},
}

Decide = Callable[[OrderState | None, object, DecisionContext], Decision]


def _merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = {section: dict(values) for section, values in base.items()}
    for section, values in overrides.items():
        merged.setdefault(section, {}).update(values)
    return merged


def build_settings(overrides: Mapping[str, Any]) -> Any:
    from config.loader import parse_settings

    return parse_settings(
        _merge(BASE_SETTINGS, overrides), env={"MOSTRO_NSEC_PRIVKEY": NODE_SECRET_HEX}
    )


def _hex(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


@dataclass
class Party:
    name: str
    pubkey: str
    identity: str
    trade_index: int = 1


@dataclass
class RunFailure:
    """Why a run failed, with the trace of what happened before."""

    step: str
    problems: list[str]
    trace: list[str]

    def __str__(self) -> str:
        lines = [f"{self.step}:", *(f"  - {p}" for p in self.problems), "trace:"]
        lines.extend(f"  {line}" for line in self.trace)
        return "\n".join(lines)


@dataclass
class PureRun:
    scenario: Scenario
    decide: Decide = decide
    now: int = START
    trace: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.settings = build_settings(self.scenario.settings)
        self.lnd = FakeLnd()
        self.history = BondHistory(bonds_on_take=taker_bonds.bonds_on_take(self.settings))
        self.mailbox: deque[object] = deque()
        self.outbox: list[Effect] = []
        self.inbox: dict[str, list[Message]] = {}
        self.parties: dict[str, Party] = {}
        self.prices: dict[str, float] = dict(self.scenario.prices)
        self.payment_failed: list[str] = []
        self.bond_invoices: set[str] = set()  # hashes of bond invoices LND made
        self.release_causes: dict[str, str] = {}  # bond id -> the event that released it
        # every handled event with its context and decision, in mailbox order (DESIGN.md §3)
        self.journal: list[tuple[object, DecisionContext, Decision]] = []
        self.step_index = 0
        self.decision_no = 0
        self.frozen = False  # crash_after_commit: decisions commit, effects wait for the restart
        self.state = self._initial_state()
        self.initial_state = self.state

    # ------------------------------------------------------------ set-up
    def party(self, name: str) -> Party:
        if name not in self.parties:
            self.parties[name] = Party(name, _hex(f"trade:{name}"), _hex(f"identity:{name}"))
        return self.parties[name]

    def _initial_state(self) -> OrderState:
        spec = self.scenario.order
        maker = self.party(spec.maker)
        order = initial_order(
            spec,
            self.settings,
            order_id=str(uuid.UUID(_hex(f"order:{self.scenario.name}")[:32])),
            maker_pubkey=maker.pubkey,
            maker_identity=maker.identity,
            now=self.now,
        )
        bonds: tuple[BondRecord, ...] = ()
        if spec.maker_bond == "locked":
            preimage = _hex(f"maker-bond:{self.scenario.name}")
            bond_hash = hashlib.sha256(bytes.fromhex(preimage)).hexdigest()
            self.lnd.add_hold_invoice(
                AddHoldInvoice(bond_hash, MAKER_BOND_SATS, MAKER_BOND_MEMO, 144)
            )
            self.lnd.pay(bond_hash)
            bonds = (
                locked_maker_bond(
                    bond_id=str(uuid.UUID(_hex(f"maker-bond-id:{self.scenario.name}")[:32])),
                    order_id=order.id,
                    maker_pubkey=maker.pubkey,
                    preimage=preimage,
                    payment_hash=bond_hash,
                    now=self.now,
                ),
            )
        self.history.last_published = "pending"  # the new-order publication
        return OrderState(order, bonds)

    # ------------------------------------------------------------ the machinery
    def ctx(self) -> DecisionContext:
        self.decision_no += 1
        entropy = hashlib.sha256(
            f"{self.scenario.name}:{self.step_index}:{self.decision_no}".encode()
        ).digest()
        prices = PriceSnapshot(dict(self.prices), self.now) if self.prices else None
        return DecisionContext(self.settings, self.now, entropy, "regtest", prices)

    def deliver(self, *events: object) -> None:
        """Put events in the order's mailbox (back-to-back), then handle everything queued."""
        self.mailbox.extend(events)
        self.drain()

    def drain(self) -> None:
        while self.mailbox:
            self._handle(self.mailbox.popleft())

    def _handle(self, event: object) -> None:
        before = self.state
        context = self.ctx()
        decision = self.decide(self.state, event, context)
        self.journal.append((event, context, decision))
        self.history.record_decision(before, decision)
        if decision.state is not None:
            self._note_release_causes(before, decision.state, event)
            self.state = decision.state
        self.trace.append(
            f"    {type(event).__name__}{_short(event)} -> {_effects(decision, self)}"
        )
        self.outbox.extend(decision.effects)
        if not self.frozen:
            self.run_outbox()

    def _note_release_causes(self, before: OrderState, after: OrderState, event: object) -> None:
        """Remember which event released each bond (tests ask "was this one told?")."""
        released_before = {b.id for b in before.bonds if b.state == BondState.RELEASED}
        for bond in after.bonds:
            if bond.state == BondState.RELEASED and bond.id not in released_before:
                cause = type(event).__name__
                if isinstance(event, DeadlineReached):
                    cause = f"DeadlineReached:{event.deadline.kind}"
                self.release_causes.setdefault(bond.id, cause)

    def run_outbox(self) -> None:
        pending, self.outbox = self.outbox, []
        for effect in pending:
            if not self._execute(effect):
                self.outbox.append(effect)

    def _execute(self, effect: Effect) -> bool:
        """Carry out one effect; False leaves it in the outbox for a retry."""
        if isinstance(effect, SendMessage):
            self.inbox.setdefault(effect.recipient, []).append(effect.message)
            return True
        if isinstance(effect, AddHoldInvoice):
            events = self.lnd.add_hold_invoice(effect)
            if events is None:
                return False
            created = self.lnd.state_of(effect.hash) != "none"
            if created and effect.memo.startswith(taker_bonds.BOND_MEMO_PREFIX):
                self.bond_invoices.add(effect.hash)
            self.mailbox.extend(events)
            return True
        if isinstance(effect, CancelHoldInvoice):
            events = self.lnd.cancel(effect.hash)
            if events is None:
                return False
            self.history.cancelled.update(
                h for h in (effect.hash,) if self.lnd.state_of(h) in ("canceled", "none")
            )
            self.mailbox.extend(events)
            return True
        if isinstance(effect, SettleHoldInvoice):
            events = self.lnd.settle(effect.hash)
            if self.lnd.state_of(effect.hash) == "settled":
                self.history.settled.add(effect.hash)
            self.mailbox.extend(events)
            return True
        if isinstance(effect, SendPayment):
            self.mailbox.append(PaymentSucceeded(effect.payment_hash))
            return True
        if isinstance(effect, PublishOrder):
            return True  # recorded by the history when decided
        return True  # RecordTradeIndex, RecordRating, PublishDispute: storage/relay concerns

    # ------------------------------------------------------------ client side
    def request(self, who: str, action: Action, payload: object = None) -> ClientRequest:
        party = self.party(who)
        message = Message(
            action=action,
            request_id=self.step_index,
            trade_index=party.trade_index,
            id=self.state.order.id,
            payload=payload,
        )
        return ClientRequest(message, party.pubkey, party.identity)

    def latest_bond(self, who: str) -> BondRecord | None:
        pubkey = self.party(who).pubkey
        mine = [b for b in self.state.bonds if b.pubkey == pubkey and b.role == BondRole.TAKER]
        return mine[-1] if mine else None

    def take(self, who: str, amount: int | None = None, invoice: str | None = None) -> None:
        action = Action.TAKE_SELL if self.state.order.kind == Kind.SELL else Action.TAKE_BUY
        payload: object = None
        if invoice is not None:
            payload = PaymentRequest(None, invoice, amount)
        elif amount is not None:
            payload = Amount(amount)
        self.deliver(self.request(who, action, payload))

    def pay(self, *who: str) -> None:
        """Each payer pays its latest bond invoice; LND's ACCEPTEDs queue back-to-back."""
        events: list[object] = []
        for name in who:
            bond = self.latest_bond(name)
            answer = None if bond is None else self.lnd.pay(bond.hash)
            if answer is None:
                self.payment_failed.append(name)
                continue
            self.history.accepted.add(bond.hash)
            events.extend(answer)
        self.deliver(*events)

    # ------------------------------------------------------------ steps
    def run_step(self, step: Step) -> None:
        self.step_index = step.index
        self.decision_no = 0
        self.trace.append(step.describe())
        self.frozen = step.crash_after_commit
        getattr(self, f"_op_{step.op}")(**step.args)
        if step.crash_after_commit:
            self.restart(())

    def _op_take(self, who: str, amount: int | None = None, invoice: str | None = None) -> None:
        self.take(who, amount, invoice)

    def _op_take_many(self, prefix: str, count: int) -> None:
        for n in range(1, count + 1):
            self.take(f"{prefix}{n}")

    def _op_pay(self, who: str | list[str]) -> None:
        self.pay(*([who] if isinstance(who, str) else who))

    def _op_pay_many(self, prefix: str, count: int) -> None:
        self.pay(*(f"{prefix}{n}" for n in range(1, count + 1)))

    def _op_cancel(self, who: str) -> None:
        self.deliver(self.request(who, Action.CANCEL))

    def _op_send(
        self, who: str, action: str, invoice: str | None = None, amount: int | None = None
    ) -> None:
        payload: object = None
        if invoice is not None:
            payload = PaymentRequest(None, invoice, amount)
        self.deliver(self.request(who, Action(action), payload))

    def _op_pay_escrow(self) -> None:
        escrow = self.state.order.hash
        answer = None if escrow is None else self.lnd.pay(escrow)
        if answer is None:
            self.payment_failed.append("escrow")
            return
        self.deliver(*answer)

    def _op_expire_bond(self, who: str) -> None:
        bond = self.latest_bond(who)
        if bond is None or bond.expires_at is None:
            self.trace.append(f"    ({who} has no bond: nothing to expire)")
            return
        self.now = max(self.now, bond.expires_at)
        self.deliver(DeadlineReached(Deadline(DeadlineKind.BOND_EXPIRY, bond.expires_at, bond.id)))

    def _op_lnd_expires(self, who: str) -> None:
        bond = self.latest_bond(who)
        if bond is not None:
            self.deliver(*self.lnd.expire(bond.hash))

    def _op_expire_order(self) -> None:
        """The clock passes the order's expires_at: every deadline due by then fires, in time
        order, as the Clock actor fires them (a bond invoice sized to end with the order
        expires one second before the order's PENDING_EXPIRY)."""
        at = self.state.order.expires_at + 1
        self.now = max(self.now, at)
        due = sorted(
            (d for d in deadlines_of(self.state, self.settings)
             if d.at <= at and d.kind == DeadlineKind.BOND_EXPIRY),
            key=lambda d: d.at,
        )
        self.deliver(*(DeadlineReached(d) for d in due),
                     DeadlineReached(Deadline(DeadlineKind.PENDING_EXPIRY, at)))

    def _op_timeout(self) -> None:
        at = self.state.order.taken_at + self.settings.mostro.expiration_seconds + 1
        self.now = max(self.now, at)
        self.deliver(DeadlineReached(Deadline(DeadlineKind.WAITING_TIMEOUT, at)))

    def _op_lnd_cancel_fails(self) -> None:
        self.lnd.cancel_fails = True

    def _op_lnd_recovers(self) -> None:
        self.lnd.cancel_fails = False
        self.lnd.slow = False
        self.lnd.refuses_invoices = False
        self.run_outbox()
        self.drain()

    def _op_lnd_refuses_invoices(self) -> None:
        self.lnd.refuses_invoices = True

    def _op_lnd_slow(self) -> None:
        self.lnd.slow = True

    def _op_set_price(self, prices: Mapping[str, float]) -> None:
        self.prices.update(prices)

    def _op_advance(self, seconds: int) -> None:
        self.now += seconds

    def _op_redeliver(self, who: str) -> None:
        bond = self.latest_bond(who)
        if bond is not None:
            self.deliver(*self.lnd.subscription_updates([bond.hash]))

    def _op_restart(self, while_down: tuple[Step, ...] = ()) -> None:
        self.restart(while_down)

    def restart(self, while_down: tuple[Step, ...]) -> None:
        """Kill: the mailbox is lost, state and outbox survive. Start: reload, re-send, re-subscribe."""
        saved = dump_state(self.state)
        self.mailbox.clear()
        self.frozen = True
        for sub in while_down:  # only LND and the clock move while we are down
            if sub.op == "pay":
                who = sub.args["who"]
                for name in [who] if isinstance(who, str) else who:
                    bond = self.latest_bond(name)
                    if bond is None or self.lnd.pay(bond.hash) is None:
                        self.payment_failed.append(name)
            elif sub.op == "lnd_expires":
                bond = self.latest_bond(sub.args["who"])
                if bond is not None:
                    self.lnd.expire(bond.hash)
            elif sub.op == "advance":
                self.now += sub.args["seconds"]
        self.trace.append("    restart: state reloaded from JSON")
        self.state = load_state(saved)
        assert dump_state(self.state) == saved, "state does not round-trip through JSON"
        self.frozen = False
        self.run_outbox()
        active = [
            b.hash for b in self.state.bonds if b.state in (BondState.REQUESTED, BondState.LOCKED)
        ]
        if self.state.order.hash is not None:
            active.append(self.state.order.hash)
        updates = self.lnd.subscription_updates(active)
        for update in updates:
            if type(update).__name__ == "InvoiceAccepted":
                self.history.accepted.add(update.hash)
        self.mailbox.extend(updates)
        self.drain()

    # ------------------------------------------------------------ checking
    def name_of(self, pubkey: str | None) -> str | None:
        for party in self.parties.values():
            if pubkey in (party.pubkey, party.identity):
                return party.name
        return pubkey

    def observe(self) -> Observed:
        messages: dict[str, list[Message]] = {}
        for pubkey, received in self.inbox.items():
            messages.setdefault(self.name_of(pubkey) or pubkey, []).extend(received)
        return observe_order(
            self.state,
            name_of=self.name_of,
            messages=messages,
            htlc_of=self.lnd.state_of,
            published=self.history.last_published,
            payment_failed=self.payment_failed,
            bond_invoices=len(self.bond_invoices),
        )

    def check(self, where: str, expect: Mapping[str, Any] | None, *, final: bool) -> None:
        quiet = final and not self.lnd.cancel_fails and not self.outbox
        problems = check_invariants(self.state, self.history, final=quiet)
        if expect:
            problems.extend(check_expectations(expect, self.observe()))
        if problems:
            raise ScenarioFailed(RunFailure(where, problems, list(self.trace)))

    def run(self) -> PureRun:
        for step in self.scenario.steps:
            self.run_step(step)
            self.check(step.describe(), step.expect, final=False)
        self.check("end", self.scenario.expect, final=True)
        return self


class ScenarioFailed(AssertionError):
    def __init__(self, failure: RunFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


def _short(event: object) -> str:
    if isinstance(event, ClientRequest):
        return f"({event.message.action} from {event.sender[:6]})"
    payment_hash = getattr(event, "hash", None)
    if payment_hash:
        return f"({payment_hash[:8]})"
    deadline = getattr(event, "deadline", None)
    if deadline is not None:
        return f"({deadline.kind} {deadline.key[:8]})"
    return ""


def _effects(decision: Decision, run: PureRun) -> str:
    shown = []
    for effect in decision.effects:
        if isinstance(effect, SendMessage):
            shown.append(f"{effect.message.action}→{run.name_of(effect.recipient)}")
        elif isinstance(effect, CancelHoldInvoice | AddHoldInvoice | SettleHoldInvoice):
            shown.append(f"{type(effect).__name__}({effect.hash[:8]})")
        elif isinstance(effect, PublishOrder):
            shown.append(f"publish {effect.public_status}")
        else:
            shown.append(type(effect).__name__)
    status = decision.state.order.status if decision.state is not None else "-"
    return f"[{status}] " + ", ".join(shown)


def run_scenario(scenario: Scenario, decide_fn: Decide = decide) -> PureRun:
    """Run every step, checking invariants and expectations; raises ``ScenarioFailed``."""
    return PureRun(scenario, decide_fn).run()
