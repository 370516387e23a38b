"""The actor-system scenario runner: replays a scenario file through the real daemon.

The same files and the same expectation checks as the pure runner
(``format``, ``observe``, ``expectations``); only delivery differs. Here a
real ``Daemon`` runs on a thespian base with a real relay and the LND
simulator:

- takes, cancels and other client messages are real requests: signed,
  encrypted events sent by a ``MostroClient`` per party through the relay
  (``RequestPath.WIRE``), or, when a scenario moves the clock between
  requests (``advance``), ``RouteToOrder(order_id, ClientRequest, now)`` told
  to the directory (``RequestPath.DIRECT``; intake's checks are then skipped);
- bond payments are made by simulator wallets paying the bolt11 the party
  received in ``pay-bond-invoice``; several payers pay at once from threads;
- expiries are the clock's: ``SetManualTime(t)`` fires what is due at ``t``,
  then the clock is put back to wall time (requests carry wall time);
  LND's own expiry is the simulator's manual clock;
- LND faults are the simulator's switches; a restart stops the daemon and
  starts a new one on the same database (payments made while it is down are
  held by the simulator and reported on start);
- ``crash_after_commit``: the daemon is stopped, the step's LND events are
  decided and committed by ``OrderProcessor`` (the order actor's own code,
  without the actor), so nothing of their effects runs; then a new daemon
  starts and its outbox must carry them out.

Observed values come from the database (state), the parties' clients
(messages) and the simulator's ledger (invoice and payment states). The bond
history for the invariants is folded from the journal; the journal is
replayed through ``decide`` at the end. This module never changes the
daemon's code paths and never writes the database except the initial order.
"""

from __future__ import annotations

import enum
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from thespian.actors import ActorSystem

from actors import order_store, records_json
from actors.daemon import Daemon
from actors.messages import (
    DirectoryStatus,
    Peers,
    RouteToOrder,
    RuntimeConfig,
    SetManualTime,
    StatusRequest,
)
from actors.order_actor import OrderProcessor
from actors.order_logic.invariants import BondHistory, check_invariants
from actors.order_logic.model import (
    BondRecord,
    BondRole,
    BondState,
    ClientRequest,
    InvoiceAccepted,
    OrderState,
)
from adapters.lnd.protos import invoices_pb2, lightning_pb2
from adapters.lnd.sim.payreq import decode_payreq
from adapters.lnd.sim.wallet import Wallet
from adapters.nostr.client import MostroClient, TradeKey
from adapters.nostr.protocol.enums import Action, Kind, Transport
from adapters.nostr.protocol.payloads import Amount, Message, PaymentRequest
from storage import migrate, models, open_database, repository
from tests.conftest import wait_until

from .expectations import Observed, check_expectations
from .format import Scenario, Step
from .initial import MAKER_BOND_MEMO, MAKER_BOND_SATS, initial_order, locked_maker_bond
from .journal_checks import bond_creation_order, fold_history
from .journal_checks import replay_problems as replay_journal
from .observe import observe_order
from .pure import RunFailure, ScenarioFailed

MOSTRO_NODE = "mostro"
QUIET_SECONDS = 0.1  # no progress for this long (and every condition met) = settled
STEP_TIMEOUT = 30.0
POLL_SECONDS = 0.02
# the runner's base settings (BASE_SETTINGS of the pure runner, for a real stack)
BASE_SECTIONS: dict[str, dict[str, Any]] = {
    "mostro": {"fee": 0.006, "expiration_seconds": 900},
    "anti_abuse_bond": {"enabled": True},
}


class RequestPath(enum.StrEnum):
    WIRE = "wire"  # signed, encrypted events through the relay and intake
    DIRECT = "direct"  # RouteToOrder told to the directory, with the runner's clock


class Unsupported(Exception):
    """A step this runtime cannot reproduce faithfully (the test skips with the reason)."""


def request_path_for(scenario: Scenario) -> RequestPath:
    """Wire, unless the scenario moves the clock between requests (wire requests carry wall time)."""
    moves_clock = any(step.op == "advance" for step in scenario.steps)
    return RequestPath.DIRECT if moves_clock else RequestPath.WIRE


def unsupported_reason(scenario: Scenario) -> str | None:
    """Why a scenario cannot run on the actor system, or None."""
    for step in scenario.steps:
        if step.op == "lnd_refuses_invoices":
            return ("the simulator only refuses calls with UNAVAILABLE (retryable), so a "
                    "permanent AddHoldInvoice refusal (HoldInvoiceCreateFailed) cannot be made")
        if step.crash_after_commit and step.op != "pay":
            return f"crash_after_commit is only reproduced for pay steps, not {step.op}"
    return None


@dataclass
class ActorParty:
    name: str
    client: MostroClient
    trade: TradeKey
    next_trade_index: int = 1
    wallet: Wallet | None = None
    wallet_node: str = ""

    @property
    def pubkey(self) -> str:
        return self.trade.pair.public_hex

    @property
    def identity(self) -> str:
        return self.client.identity.public_hex

    def received(self) -> list[Message]:
        return [r.message for r in list(self.client.inbox) if r.trade_pubkey == self.pubkey]


@dataclass
class BondPayment:
    """One payment a party made on a bond (or escrow) invoice, and what LND did with it."""

    payer: str
    wallet_node: str
    bolt11: str
    hash_hex: str
    accepted: bool = False  # the HTLC reached the invoice and was held


@dataclass
class StackParts:
    """What a run needs from the test: a relay URL, the simulator handle, a work directory."""

    relay_url: str
    lnsim: Any  # tests.fixtures.lnsim.LnSimHandle
    workdir: Path
    make_settings: Callable[..., Any]  # tests.e2e.conftest.make_settings
    # the relay's REQ answer for some filters (RelayProcess.query); None skips the book check
    query_relay: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None


@dataclass
class ActorRun:
    scenario: Scenario
    parts: StackParts
    base: str = "simpleSystemBase"
    path: RequestPath | None = None
    trace: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.path is None:
            self.path = request_path_for(self.scenario)
        self.prices: dict[str, float] = dict(self.scenario.prices)
        self.offset = 0  # seconds the scenario's clock is ahead of wall time (DIRECT only)
        self.parties: dict[str, ActorParty] = {}  # by the name each party was created under
        # scenario name -> the party playing it; racers who paid at once may swap (see pay)
        self.cast: dict[str, str] = {}
        self.payments: list[BondPayment] = []
        self.payment_failed: list[str] = []
        self.invoice_names: dict[str, str] = {}  # real bolt11 -> the file's placeholder
        self.faults: set[str] = set()  # effect names LND refuses now
        self.daemon: Daemon | None = None
        self.settings: Any = None
        self.order_id = ""
        self.initial_state: OrderState | None = None
        self.handled_mark = 0
        self._payloads: dict[int, Any] = {}
        self._wallet_turn = 0
        self._closed = False
        self._own_system = False
        self.step_index = 0

    # ------------------------------------------------------------ set-up and teardown
    @property
    def sim(self) -> Any:
        return self.parts.lnsim.sim

    def _build_settings(self) -> Any:
        sections = {name: dict(values) for name, values in BASE_SECTIONS.items()}
        for name, values in self.scenario.settings.items():
            sections.setdefault(name, {}).update(values)
        if self.prices:
            sections.setdefault("price", {})["fixed"] = dict(self.prices)
        return self.parts.make_settings(self.parts.workdir, self.parts.relay_url,
                                        self.parts.lnsim, self.base, **sections)

    def start(self) -> ActorRun:
        self.settings = self._build_settings()
        migrate(open_database(self.settings.database.url))
        spec = self.scenario.order
        maker = self.party(spec.maker)
        now = int(time.time())
        order = initial_order(spec, self.settings, order_id=_uuid(), maker_pubkey=maker.pubkey,
                              maker_identity=maker.identity, now=now)
        bonds: tuple[BondRecord, ...] = ()
        if spec.maker_bond == "locked":
            bonds = (self._held_maker_bond(order.id, maker, now),)
        state = OrderState(order, bonds)
        with models.database_proxy.atomic():
            order_store._save_state(None, state)
        self.order_id, self.initial_state = order.id, state
        self._start_daemon()
        return self

    def _held_maker_bond(self, order_id: str, maker: ActorParty, now: int) -> BondRecord:
        """A maker bond LND really holds: a hold invoice at the node, paid by the maker."""
        preimage = os.urandom(32)
        payment_hash = hashlib.sha256(preimage).digest()
        node = self.parts.lnsim.client(MOSTRO_NODE)
        reply = node.invoices.AddHoldInvoice(invoices_pb2.AddHoldInvoiceRequest(
            hash=payment_hash, value=MAKER_BOND_SATS, memo=MAKER_BOND_MEMO, expiry=86_400,
            cltv_expiry=144), timeout=10)
        self._pay_all([(maker, reply.payment_request)])
        return locked_maker_bond(bond_id=_uuid(), order_id=order_id, maker_pubkey=maker.pubkey,
                                 preimage=preimage.hex(), payment_hash=payment_hash.hex(),
                                 now=now, payment_request=reply.payment_request)

    def _start_daemon(self) -> None:
        if self.daemon is not None:
            # a new admin port: the old one may linger after a multiprocess shutdown
            self.settings = self._build_settings()
        system = None
        if self.base != "simpleSystemBase":
            # spawn, never fork: this process runs the simulator's gRPC server and wallets'
            # streams, and a forked actor process (or the order actors it forks in turn)
            # inherits that gRPC state and can die in it (seen: an order actor exiting
            # mid-race, its in-flight events lost with it)
            system = ActorSystem(self.base, {"Admin Port": self.settings.actors.admin_port,
                                             "Process Startup Method": "spawn"})
        self._own_system = system is not None
        self.daemon = Daemon(self.settings, system=system)
        self.daemon.start()
        self.handled_mark = 0
        self._clock_to_wall()

    def _stop_daemon(self) -> None:
        if self.daemon is None or self.daemon.system is None:
            return
        system = self.daemon.system
        self.daemon.stop()
        if self._own_system:
            system.shutdown()  # the runner made this system, so the daemon leaves it up

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for party in self.parties.values():
            party.client.close()
            if party.wallet is not None:
                party.wallet.close()
        self._stop_daemon()

    # ------------------------------------------------------------ parties
    def party(self, name: str) -> ActorParty:
        """The party playing ``name`` of the scenario (created on first use)."""
        name = self.cast.get(name, name)
        party = self.parties.get(name)
        if party is None:
            assert self.settings is not None
            client = MostroClient(name, (self.parts.relay_url,), self.settings.nostr.public_key_hex(),
                                  Transport(self.settings.mostro.transport)).connect()
            party = ActorParty(name, client, client.new_trade_key())
            self.parties[name] = party
        return party

    def _wallet_of(self, party: ActorParty) -> Wallet:
        if party.wallet is None:
            names = self.sim.wallet_names
            node = names[self._wallet_turn % len(names)]
            self._wallet_turn += 1
            party.wallet = Wallet.of(self.sim.endpoint(node))
            party.wallet_node = node
            # connect now (TLS handshake), so that paying "at once" really is at once
            party.wallet.client.lightning.GetInfo(lightning_pb2.GetInfoRequest(), timeout=10)
        return party.wallet

    def role_of(self, party: ActorParty) -> str:
        """The scenario name ``party`` plays now."""
        for role, actor in self.cast.items():
            if actor == party.name:
                return role
        return party.name

    def name_of(self, pubkey: str | None) -> str | None:
        for party in self.parties.values():
            if pubkey in (party.pubkey, party.identity):
                return self.role_of(party)
        return pubkey

    def _recast_race(self, made: list[BondPayment]) -> None:
        """Racers who paid at the same moment are interchangeable: the file names the first
        payer in its list as the winner (its mailbox is ordered), the real race may crown
        another. Swap the two names so the file's expectations read the real race."""
        # The file's winner is the first payer it lists that it does not expect to fail
        # (a taker who cancelled before paying). Any other refused payer lost the same race:
        # the winner's lock cancelled its invoice before its payment arrived.
        payers = [p.payer for p in made]
        doomed = set((self.scenario.expect or {}).get("payment_failed", ()))
        candidates = [p for p in payers if p not in doomed]
        if len(candidates) < 2:
            return
        winners = [b for b in self.state().bonds
                   if b.role == BondRole.TAKER and b.state == BondState.LOCKED]
        if len(winners) != 1:
            return
        actual, expected = self.name_of(winners[0].pubkey), candidates[0]
        if actual == expected or actual not in candidates or actual is None:
            return
        playing_expected = self.cast.get(expected, expected)
        self.cast[expected] = self.cast.get(actual, actual)
        self.cast[actual] = playing_expected
        self.trace.append(f"    the race was won by {actual}'s payment: {actual} and "
                          f"{expected} swap names (the file expects {expected} to win)")

    # ------------------------------------------------------------ the actor system
    def pump(self) -> None:
        assert self.daemon is not None and self.daemon.system is not None
        if self.daemon.base == "simpleSystemBase":  # the multiprocess bases run alone
            self.daemon.system.listen(POLL_SECONDS)

    def directory_status(self) -> DirectoryStatus:
        assert self.daemon is not None and self.daemon.system is not None
        reply = self.daemon.system.ask(self.daemon.peers.directory, StatusRequest(), 10.0)
        if not isinstance(reply, DirectoryStatus):
            raise self.failure("directory", [f"the directory did not answer a status request: {reply!r}"])
        return reply

    def now(self) -> int:
        return int(time.time()) + self.offset

    def _set_clock(self, at: int) -> None:
        assert self.daemon is not None and self.daemon.system is not None
        reply = self.daemon.system.ask(self.daemon.peers.clock, SetManualTime(at), 10.0)
        if not isinstance(reply, SetManualTime):
            raise self.failure("clock", [f"the clock did not confirm SetManualTime: {reply!r}"])

    def _clock_to_wall(self) -> None:
        self._set_clock(self.now())

    def fire_clock(self, at: int) -> None:
        """The clock reaches ``at`` (what is due fires), then returns to the requests' time."""
        self._set_clock(at)
        self.settle()
        self._clock_to_wall()

    # ------------------------------------------------------------ reading the world
    def state(self) -> OrderState:
        """The order as stored, its bonds in the order the order actor created them.

        The database orders bonds by (created_at, id): two bonds made in the same
        second come back in uuid order, not creation order (see the report), so
        "oldest first" is taken from the journal instead.
        """
        state = order_store.load_state(self.order_id)
        assert state is not None, "the order vanished from the database"
        assert self.initial_state is not None
        order = bond_creation_order(self.initial_state, self.journal())
        created = {bond_id: n for n, bond_id in enumerate(order)}
        bonds = sorted(state.bonds, key=lambda b: (created.get(b.id, len(created)), b.created_at))
        return replace(state, bonds=tuple(bonds))

    def journal(self) -> list[models.JournalEntry]:
        return list(repository.journal_of(self.order_id))

    def invoice(self, hash_hex: str) -> Any:
        found = self.sim.ledger.lookup_invoice(MOSTRO_NODE, bytes.fromhex(hash_hex))
        return None if type(found).__name__ == "SimError" else found

    def htlc_state(self, hash_hex: str) -> str:
        invoice = self.invoice(hash_hex)
        return "none" if invoice is None else str(invoice.state).lower()

    def payment_status(self, payment: BondPayment) -> str:
        found = self.sim.ledger.lookup_payment(payment.wallet_node, bytes.fromhex(payment.hash_hex))
        return "NONE" if type(found).__name__ == "SimError" else str(found.status)

    def latest_bond(self, who: str) -> BondRecord | None:
        pubkey = self.party(who).pubkey
        mine = [b for b in self.state().bonds if b.pubkey == pubkey and b.role == BondRole.TAKER]
        return mine[-1] if mine else None

    def _effect_payload(self, row: models.OutboxEffect) -> Any:
        if row.id not in self._payloads:
            self._payloads[row.id] = records_json.loads(row.payload)
        return self._payloads[row.id]

    def _outbox_problems(self) -> list[str]:
        """Why the run is not settled: an undone effect no fault explains, an invoice change
        at LND the order has not seen yet, or a message sent but not received yet."""
        problems = []
        sent: dict[str, int] = {}
        for row in models.OutboxEffect.select().where(models.OutboxEffect.order_id == self.order_id):
            if row.done_at is None:
                if row.effect not in self.faults:
                    problems.append(f"effect {row.id} {row.effect} not done")
            elif row.effect == "SendMessage":
                recipient = self._effect_payload(row).recipient
                sent[recipient] = sent.get(recipient, 0) + 1
        for bond in self.state().bonds:
            at_lnd = self.htlc_state(bond.hash)
            if at_lnd in ("accepted", "canceled", "settled") and bond.invoice_state != at_lnd:
                problems.append(f"LND's {at_lnd} of bond {bond.id[:8]} not handled yet")
        for party in self.parties.values():
            got = len(party.received())
            if got < sent.get(party.pubkey, 0):
                problems.append(f"{party.name} received {got} of {sent[party.pubkey]} messages")
        return problems

    def settle(self, routed: int = 0, timeout: float = STEP_TIMEOUT) -> None:
        """Wait until ``routed`` more events reached the order actor, nothing is left to do
        (outbox done but for what a fault holds, every sent message received) and nothing
        moved for ``QUIET_SECONDS``."""
        last: tuple[Any, ...] | None = None
        quiet_since = time.monotonic()
        problems: list[str] = []

        def settled() -> bool:
            nonlocal last, quiet_since, problems
            handled = self.directory_status().handled
            problems = self._outbox_problems()
            if handled < self.handled_mark + routed:
                problems.append(f"{self.handled_mark + routed - handled} event(s) not handled yet")
            journal = models.JournalEntry.select().where(
                models.JournalEntry.order_id == self.order_id).count()
            inboxes = tuple(len(p.client.inbox) for p in self.parties.values())
            fingerprint = (handled, journal, inboxes, tuple(problems))
            if fingerprint != last:
                last, quiet_since = fingerprint, time.monotonic()
                return False
            if problems or time.monotonic() - quiet_since < QUIET_SECONDS:
                return False
            self.handled_mark = handled
            return True

        try:
            wait_until(settled, timeout, "the order settling", interval=POLL_SECONDS,
                       pump=self.pump)
        except TimeoutError:
            raise self.failure("settling", [f"not settled within {timeout} s", *problems]) from None

    def failure(self, where: str, problems: list[str]) -> ScenarioFailed:
        return ScenarioFailed(RunFailure(where, problems, list(self.trace)))

    # ------------------------------------------------------------ client requests
    def _request(self, who: str, action: Action, payload: Any = None, *,
                 with_trade_index: bool = False) -> None:
        party = self.party(who)
        index = None
        if with_trade_index:
            index = party.next_trade_index
            party.next_trade_index += 1
        self.trace.append(f"    {who}: {action.value} (trade index {index})")
        before = len(party.client.inbox)
        if self.path == RequestPath.WIRE:
            if index is not None:
                party.trade.index = index
            party.client.send(party.trade, action, self.order_id, payload,
                              request_id=self.step_index, with_trade_index=with_trade_index)
            self._wait_routed_or_answered(party, before)
        else:
            message = Message(action=action, request_id=self.step_index, trade_index=index,
                              id=self.order_id, payload=payload)
            pending = False
            if action in (Action.TAKE_SELL, Action.TAKE_BUY):
                kind = "sell" if action == Action.TAKE_SELL else "buy"
                pending = repository.identity_has_pending_take(party.identity, kind)
            request = ClientRequest(message, party.pubkey, party.identity, pending)
            assert self.daemon is not None and self.daemon.system is not None
            self.daemon.system.tell(self.daemon.peers.directory,
                                    RouteToOrder(self.order_id, request, self.now()))
            self.settle(routed=1)

    def _wait_routed_or_answered(self, party: ActorParty, inbox_before: int) -> None:
        """A wire request is in when the order actor handled it or intake answered it."""
        try:
            wait_until(lambda: (self.directory_status().handled > self.handled_mark
                                or len(party.client.inbox) > inbox_before),
                       STEP_TIMEOUT, "the request reaching the order", interval=POLL_SECONDS,
                       pump=self.pump)
        except TimeoutError:
            raise self.failure("request",
                               [f"{party.name}'s request never reached the order"]) from None
        self.settle()

    def _real_invoice(self, who: str, text: str | None) -> str | None:
        """A placeholder invoice of the file (``t1@example.com``) becomes a real, amountless
        bolt11 of the party's wallet: resolving a Lightning address would need the internet."""
        if text is None:
            return None
        for real, name in self.invoice_names.items():
            if name == text:
                return real
        real = self._wallet_of(self.party(who)).invoice(0, f"payout {who}")
        self.invoice_names[real] = text
        return real

    def take(self, who: str, amount: int | None = None, invoice: str | None = None) -> None:
        kind = self.state().order.kind
        action = Action.TAKE_SELL if kind == Kind.SELL else Action.TAKE_BUY
        payload: Any = None
        if invoice is not None:
            payload = PaymentRequest(None, self._real_invoice(who, invoice), amount)
        elif amount is not None:
            payload = Amount(amount)
        self._request(who, action, payload, with_trade_index=True)

    # ------------------------------------------------------------ payments
    def _latest_bolt11(self, who: str, action: Action) -> str | None:
        for message in reversed(self.party(who).received()):
            if message.action == action and isinstance(message.payload, PaymentRequest):
                return message.payload.invoice
        return None

    def _pay_all(self, payers: list[tuple[ActorParty, str]]) -> list[BondPayment]:
        """Every payer pays at the same moment, each from its own thread; returns once LND
        has either held each HTLC or refused the payment."""
        made = []
        for party, bolt11 in payers:
            self._wallet_of(party)
            decoded = decode_payreq(bolt11)
            made.append(BondPayment(self.role_of(party), party.wallet_node, bolt11,
                                    decoded.payment_hash.hex()))
        # The files' races mean every HTLC is held before the daemon's cancel of a loser's
        # invoice can land. simpleSystemBase decides nothing until pumped; the multiprocess
        # bases run alone, so there LND refuses the node's cancels (the outbox retries them)
        # until every payment has reached it.
        hold_cancels = (len(payers) > 1 and not self.faults and self.daemon is not None
                        and self.daemon.base != "simpleSystemBase")
        if hold_cancels:
            self.sim.refuse("CancelInvoice")
            self.faults.add("CancelHoldInvoice")
        try:
            return self._pay_together(payers, made)
        finally:
            if hold_cancels:
                self.sim.clear_faults()
                self.faults.discard("CancelHoldInvoice")

    def _pay_together(self, payers: list[tuple[ActorParty, str]],
                      made: list[BondPayment]) -> list[BondPayment]:
        barrier = threading.Barrier(len(payers))
        errors: list[BaseException] = []

        def pay(party: ActorParty, bolt11: str) -> None:
            try:
                barrier.wait(timeout=10)
                assert party.wallet is not None
                party.wallet.pay(bolt11)
            except BaseException as error:  # reported by the test thread
                errors.append(error)

        threads = [threading.Thread(target=pay, args=payer, name=f"pay-{payer[0].name}")
                   for payer in payers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=15)
        if errors:
            raise errors[0]
        deadline = time.monotonic() + STEP_TIMEOUT
        pump = self.pump if self.daemon is not None and self.daemon.system is not None else None
        for payment in made:
            try:
                wait_until(lambda p=payment: self.payment_status(p) in ("IN_FLIGHT", "FAILED", "SUCCEEDED"),
                           max(deadline - time.monotonic(), 0.0), "the payment reaching LND",
                           interval=POLL_SECONDS, pump=pump)
            except TimeoutError:
                raise self.failure("pay", [f"{payment.payer}'s payment never reached LND"]) from None
            invoice = self.invoice(payment.hash_hex)
            payment.accepted = (invoice is not None and invoice.htlc is not None
                                and invoice.payer == payment.wallet_node)
        self.payments.extend(made)
        return made

    def pay(self, names: list[str], *, while_down: bool = False) -> list[BondPayment]:
        payers = []
        for name in names:
            bolt11 = self._latest_bolt11(name, Action.PAY_BOND_INVOICE)
            if bolt11 is None:
                self.payment_failed.append(name)
                self.trace.append(f"    {name} has no bond invoice to pay")
                continue
            payers.append((self.party(name), bolt11))
        made = self._pay_all(payers) if payers else []
        for payment in made:
            if not payment.accepted:
                self.payment_failed.append(payment.payer)
        self.trace.append("    paid: " + ", ".join(
            f"{p.payer}={'held' if p.accepted else 'refused'}" for p in made))
        if not while_down:
            self.settle(routed=sum(1 for p in made if p.accepted))
            self._recast_race(made)
        return made

    # ------------------------------------------------------------ steps
    def run_step(self, step: Step) -> None:
        self.step_index = step.index
        self.trace.append(step.describe())
        if step.crash_after_commit:
            self._crash_after_commit(step)
            return
        getattr(self, f"_op_{step.op}")(**step.args)

    def _op_take(self, who: str, amount: int | None = None, invoice: str | None = None) -> None:
        self.take(who, amount, invoice)

    def _op_take_many(self, prefix: str, count: int) -> None:
        for n in range(1, count + 1):
            self.take(f"{prefix}{n}")

    def _op_pay(self, who: str | list[str]) -> None:
        self.pay([who] if isinstance(who, str) else list(who))

    def _op_pay_many(self, prefix: str, count: int) -> None:
        self.pay([f"{prefix}{n}" for n in range(1, count + 1)])

    def _op_cancel(self, who: str) -> None:
        self._request(who, Action.CANCEL)

    def _op_send(self, who: str, action: str, invoice: str | None = None,
                 amount: int | None = None) -> None:
        payload: Any = None
        if invoice is not None:
            payload = PaymentRequest(None, self._real_invoice(who, invoice), amount)
        self._request(who, Action(action), payload)

    def _op_pay_escrow(self) -> None:
        order = self.state().order
        seller = order.seller_pubkey
        name = self.name_of(seller)
        bolt11 = None if name is None else self._latest_bolt11(name, Action.PAY_INVOICE)
        if name is None or bolt11 is None:
            self.payment_failed.append("escrow")
            return
        made = self._pay_all([(self.party(name), bolt11)])
        self.settle(routed=sum(1 for p in made if p.accepted))

    def _op_expire_bond(self, who: str) -> None:
        bond = self.latest_bond(who)
        if bond is None or bond.expires_at is None:
            self.trace.append(f"    ({who} has no bond: nothing to expire)")
            return
        self.fire_clock(bond.expires_at)

    def _lnd_expires(self, who: str) -> None:
        bond = self.latest_bond(who)
        invoice = None if bond is None else self.invoice(bond.hash)
        if invoice is None:
            return
        due = invoice.creation_date + invoice.expiry - self.sim.ledger.now()
        self.sim.advance_clock(max(due, 0) + 1)

    def _op_lnd_expires(self, who: str) -> None:
        self._lnd_expires(who)
        self.settle()

    def _op_expire_order(self) -> None:
        self.fire_clock(self.state().order.expires_at + 1)

    def _op_timeout(self) -> None:
        order = self.state().order
        self.fire_clock(order.taken_at + self.settings.mostro.expiration_seconds + 1)

    def _op_lnd_cancel_fails(self) -> None:
        self.sim.refuse("CancelInvoice")
        self.faults.add("CancelHoldInvoice")

    def _op_lnd_slow(self) -> None:
        self.sim.refuse("AddHoldInvoice")
        self.faults.add("AddHoldInvoice")

    def _op_lnd_refuses_invoices(self) -> None:
        raise Unsupported(unsupported_reason(self.scenario) or "lnd_refuses_invoices")

    def _op_lnd_recovers(self) -> None:
        self.sim.clear_faults()
        self.faults.clear()
        self.settle(timeout=STEP_TIMEOUT + 30)  # the outbox retries on its own backoff

    def _op_set_price(self, prices: Mapping[str, float]) -> None:
        """This daemon reads prices from its settings only, so a new price table is a restart
        with new settings (a restart must not change any outcome: BONDS.md I11)."""
        self.prices.update(prices)
        self.restart(())

    def _op_advance(self, seconds: int) -> None:
        if self.path == RequestPath.WIRE:
            raise Unsupported("advance needs the direct request path (wire requests carry wall time)")
        self.offset += seconds
        self._clock_to_wall()

    def _op_redeliver(self, who: str) -> None:
        """The invoice streams break and reconnect; LND reports the invoices' states again."""
        dropped = self.sim.drop_streams()
        self.trace.append(f"    {dropped} stream(s) dropped")
        self.settle()

    def _op_restart(self, while_down: tuple[Step, ...] = ()) -> None:
        self.restart(while_down)

    def restart(self, while_down: tuple[Step, ...]) -> None:
        self.trace.append("    restart: daemon stopped")
        self._stop_daemon()
        for sub in while_down:
            if sub.op == "pay":
                who = sub.args["who"]
                self.pay([who] if isinstance(who, str) else list(who), while_down=True)
            elif sub.op == "lnd_expires":
                self._lnd_expires(sub.args["who"])
            elif sub.op == "advance":
                self.offset += sub.args["seconds"]
        self._start_daemon()
        self.trace.append("    restart: a new daemon on the same database")
        self.settle()

    def _crash_after_commit(self, step: Step) -> None:
        """The step's LND events are decided and committed, then the daemon dies before any
        effect runs; a new daemon must carry them out from its outbox."""
        if step.op != "pay":
            raise Unsupported(f"crash_after_commit is only reproduced for pay, not {step.op}")
        self._stop_daemon()
        who = step.args["who"]
        made = self.pay([who] if isinstance(who, str) else list(who), while_down=True)
        processor = OrderProcessor(self.order_id, RuntimeConfig(
            self.settings, self.settings.database.url, Peers(), "regtest"))
        for payment in made:
            if payment.accepted:
                invoice = self.invoice(payment.hash_hex)
                processor.handle(InvoiceAccepted(payment.hash_hex, invoice.value_msat // 1000),
                                 None)
        self.trace.append("    committed without effects; restarting")
        self._start_daemon()
        self.settle()

    # ------------------------------------------------------------ checking
    def history(self) -> BondHistory:
        """The bond history of the invariants: the journal's decisions and LND's facts."""
        assert self.initial_state is not None
        history = fold_history(self.initial_state, self.journal(), self.settings)
        for bond in self.state().bonds:
            invoice = self.invoice(bond.hash)
            if invoice is None:
                continue
            if invoice.htlc is not None:
                history.accepted.add(bond.hash)
            if invoice.state == "SETTLED":
                history.settled.add(bond.hash)
            elif invoice.state == "CANCELED":
                history.cancelled.add(bond.hash)
        return history

    def observe(self, history: BondHistory) -> Observed:
        state = self.state()
        hashes = {b.hash for b in state.bonds if b.role == BondRole.TAKER}
        return observe_order(
            state,
            name_of=self.name_of,
            messages={self.role_of(party): party.received() for party in self.parties.values()},
            htlc_of=self.htlc_state,
            published=history.last_published,
            payment_failed=self.payment_failed,
            bond_invoices=sum(1 for h in hashes if self.invoice(h) is not None),
            invoice_label=lambda invoice: self.invoice_names.get(invoice or "", invoice),
        )

    def payment_problems(self) -> list[str]:
        """Payer side: a bond HTLC is never settled; a held one that LND cancelled was refunded."""
        problems = []
        bond_hashes = {b.hash for b in self.state().bonds}
        for payment in self.payments:
            if payment.hash_hex not in bond_hashes:
                continue  # the escrow: the trade's business
            status = self.payment_status(payment)
            if status == "SUCCEEDED":
                problems.append(f"{payment.payer}'s bond payment SUCCEEDED (I2)")
            if payment.accepted and self.htlc_state(payment.hash_hex) == "canceled" \
                    and status != "FAILED":
                problems.append(f"{payment.payer}'s cancelled bond HTLC left the payment {status}")
        return problems

    def book_problems(self, history: BondHistory) -> list[str]:
        """The relay's order book shows the status the order actor last published."""
        if self.parts.query_relay is None or not any(
                row.effect == "PublishOrder" for row in models.OutboxEffect.select().where(
                    models.OutboxEffect.order_id == self.order_id)):
            return []
        events = self.parts.query_relay([{"kinds": [38383], "#d": [self.order_id]}])
        if not events:
            return ["the order was published but the relay has no revision of it"]
        newest = max(events, key=lambda e: e["created_at"])
        shown = [t[1] for t in newest["tags"] if t[0] == "s"]
        if shown != [history.last_published]:
            return [f"the relay shows status {shown}, last published {history.last_published!r}"]
        return []

    def check(self, where: str, expect: Mapping[str, Any] | None, *, final: bool) -> None:
        history = self.history()
        quiet = final and not self.faults
        problems = check_invariants(self.state(), history, final=quiet)
        problems += self.payment_problems()
        if final:
            problems += self.book_problems(history)
        if expect:
            problems += check_expectations(expect, self.observe(history))
        if problems:
            raise self.failure(where, problems)

    def replay_problems(self) -> list[str]:
        """The journal replays through ``decide`` to every recorded decision and the final
        state in the database (DESIGN.md §3)."""
        assert self.initial_state is not None
        return replay_journal(self.initial_state, self.journal(), self.settings, self.state())

    def run(self) -> ActorRun:
        self.step_index = 0
        self.settle()
        for step in self.scenario.steps:
            self.run_step(step)
            self.check(step.describe(), step.expect, final=False)
        self.check("end", self.scenario.expect, final=True)
        problems = self.replay_problems()
        if problems:
            raise self.failure("journal replay", problems)
        return self


def _uuid() -> str:
    return str(uuid.uuid4())


def run_on_actors(scenario: Scenario, parts: StackParts, base: str = "simpleSystemBase",
                  path: RequestPath | None = None) -> ActorRun:
    """Start, run every step (checking as the pure runner does), stop; raises ``ScenarioFailed``
    or ``Unsupported``."""
    run = ActorRun(scenario, parts, base, path)
    try:
        run.start()
        return run.run()
    finally:
        run.close()

