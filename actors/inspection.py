"""What the operator's `inspect` command looks at: orders, one order in depth, actors, stuck orders.

Reads the database (through the bound models, read-only) and, when asked,
the running actor system and LND; returns plain frozen views that the CLI
renders as tables or JSON. The stuck rules themselves are in
``actors.stuck_rules``; this module only gathers their facts. It must not
write anything, start an actor system, or create an actor (asking a
multiprocTCPBase admin that is not there would start one: we probe first).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from storage import models, repository

from . import records_json
from .messages import DirectoryStatus, StatusRequest
from .order_logic.deadlines import deadlines_of
from .order_logic.model import Deadline, OrderState
from .order_store import load_state
from .stuck_rules import (
    RULE_NO_PATH,
    OrderFacts,
    OutboxItem,
    StuckFinding,
    Thresholds,
    stale_outbox,
    stuck_findings,
)

DIRECTORY_NAME = "mostro-directory"  # actors.daemon.DIRECTORY_NAME (not imported: it pulls in adapters)
JOURNAL_TAIL = 10
MAX_ACTORS = 5000  # a walk of the actor tree stops here
DEFAULT_THRESHOLDS = Thresholds()


# ------------------------------------------------------------------ database views
@dataclass(frozen=True)
class OrderSummary:
    id: str
    kind: str
    status: str
    amount: int
    fiat: str
    created_at: int
    expires_at: int
    range_parent_id: str | None


@dataclass(frozen=True)
class BondView:
    id: str
    role: str
    state: str
    hash: str | None
    invoice_state: str | None
    amount_sats: int
    pubkey: str
    created_at: int
    locked_at: int | None
    released_at: int | None
    release_confirmed_at: int | None


@dataclass(frozen=True)
class JournalView:
    seq: int
    created_at: int
    event: str
    status_after: str | None
    effects: tuple[str, ...]


@dataclass(frozen=True)
class ActorLiveness:
    """What the directory says about one order's actor (None fields: system not reachable)."""

    system_running: bool
    live: bool | None = None
    buffered: int | None = None
    note: str = ""


@dataclass(frozen=True)
class OrderReport:
    row: dict[str, Any]
    bonds: tuple[BondView, ...]
    dispute: dict[str, Any] | None
    deadlines: tuple[Deadline, ...]
    journal_entries: int
    journal_tail: tuple[JournalView, ...]
    undone_outbox: tuple[OutboxItem, ...]
    stuck: tuple[StuckFinding, ...]
    actor: ActorLiveness


def _order_summary(row: models.Order) -> OrderSummary:
    return OrderSummary(
        row.id, row.kind, row.status, row.amount, f"{row.fiat_amount} {row.fiat_code}",
        row.created_at, row.expires_at, row.range_parent_id,
    )


def list_orders(statuses: Sequence[str] = ()) -> list[OrderSummary]:
    """Orders, oldest first; only those in `statuses` when given (else every row, even one
    whose status the logic does not know)."""
    if statuses:
        rows = repository.orders_by_status(*statuses)
    else:
        rows = list(models.Order.select().order_by(models.Order.created_at, models.Order.id))
    return [_order_summary(row) for row in rows]


def outbox_item(row: models.OutboxEffect) -> OutboxItem:
    try:
        effect = records_json.loads(row.payload)
    except (KeyError, TypeError, ValueError):
        effect = None
    summary = effect_summary(effect) if dataclasses.is_dataclass(effect) else row.effect
    return OutboxItem(row.id, row.order_id, row.effect, row.target, row.created_at,
                      row.attempts, row.last_error, row.done_at, summary)


def undone_outbox_by_order() -> dict[str | None, tuple[OutboxItem, ...]]:
    grouped: dict[str | None, list[OutboxItem]] = {}
    for row in repository.undone_outbox():
        grouped.setdefault(row.order_id, []).append(outbox_item(row))
    return {key: tuple(items) for key, items in grouped.items()}


def _bond_view(row: models.Bond) -> BondView:
    return BondView(row.id, row.role, row.state, row.hash, row.invoice_state, row.amount_sats,
                    row.pubkey, row.created_at, row.locked_at, row.released_at,
                    row.release_confirmed_at)


def event_summary(event: Any) -> str:
    """One line for an order event (journal message)."""
    name = type(event).__name__
    if name == "ClientRequest":
        action = getattr(event.message.action, "value", event.message.action)
        return f"{action} from {event.sender[:8]}…"
    if name == "DeadlineReached":
        key = f":{event.deadline.key[:8]}" if event.deadline.key else ""
        return f"deadline {event.deadline.kind.value}{key} @ {event.deadline.at}"
    for attribute in ("hash", "payment_hash"):
        value = getattr(event, attribute, None)
        if isinstance(value, str):
            return f"{name} {value[:12]}…"
    return name


def effect_summary(effect: Any) -> str:
    """One short label per effect (journal, replay and outbox views)."""
    name = type(effect).__name__
    if name == "SendMessage":
        action = getattr(effect.message.action, "value", effect.message.action)
        return f"SendMessage({action} → {effect.recipient[:8]}…)"
    if name == "PublishOrder":
        return f"PublishOrder({effect.public_status})"
    if name in ("RecordTradeIndex", "RecordRating"):
        return f"{name}({effect.identity[:8]}…)"
    for attribute in ("hash", "payment_hash"):
        value = getattr(effect, attribute, None)
        if isinstance(value, str):
            return f"{name}({value[:12]}…)"
    return name


def _status_after(decision: dict[str, Any]) -> str | None:
    """The order status a decoded journal decision recorded, None when it does not say (a
    changes entry that left the order as it was: see journal_changes)."""
    state = decision.get("state")
    if isinstance(state, OrderState):
        return state.order.status.value
    order = (decision.get("changes") or {}).get("order")
    return order.status.value if order is not None else None


def _journal_view(row: models.JournalEntry) -> JournalView:
    try:
        event = records_json.loads(row.message)
        decision = records_json.loads(row.decision)
    except (KeyError, TypeError, ValueError) as err:
        return JournalView(row.seq, row.created_at, f"<unreadable: {err}>", None, ())
    effects = tuple(effect_summary(effect) for effect in decision.get("effects", ()))
    return JournalView(row.seq, row.created_at, event_summary(event), _status_after(decision),
                       effects)


def _journal_tail(journal: Sequence[models.JournalEntry], count: int) -> tuple[JournalView, ...]:
    """The last `count` entries; an entry that did not change the order shows the status the
    order had after the one before it (looked up further back when the tail starts there)."""
    tail = [_journal_view(r) for r in (journal[-count:] if count > 0 else [])]
    status: str | None = None
    for row in reversed(journal[:len(journal) - len(tail)]):
        try:
            status = _status_after(records_json.loads(row.decision))
        except (KeyError, TypeError, ValueError):
            break
        if status is not None:
            break
    for index, view in enumerate(tail):
        if view.status_after is None and not view.event.startswith("<unreadable"):
            tail[index] = dataclasses.replace(view, status_after=status)
        status = tail[index].status_after
    return tuple(tail)


def order_facts(
    state: OrderState, settings: Any, outbox: Sequence[OutboxItem] = (),
    lnd_states: Mapping[str, str] | None = None,
) -> OrderFacts:
    return OrderFacts(
        state=state,
        deadlines=tuple(deadlines_of(state, settings)),
        undone_outbox=tuple(outbox),
        payment_attempts_limit=settings.lightning.payment_attempts,
        lnd_states=dict(lnd_states or {}),
    )


def inspect_order(
    order_id: str, settings: Any, now: int, thresholds: Thresholds = DEFAULT_THRESHOLDS,
    liveness: ActorLiveness | None = None, journal_tail: int = JOURNAL_TAIL,
    lnd_states: Mapping[str, str] | None = None,
) -> OrderReport | None:
    """Everything about one order, or None if there is no such order."""
    row = repository.find_order(order_id)
    if row is None:
        return None
    outbox = tuple(outbox_item(r) for r in repository.undone_outbox() if r.order_id == order_id)
    state = load_order_state(order_id)
    if isinstance(state, OrderState):
        facts = order_facts(state, settings, outbox, lnd_states)
        deadlines, stuck = facts.deadlines, tuple(stuck_findings(facts, now, thresholds))
    else:
        deadlines, stuck = (), (unloadable(order_id, str(state)),)
    journal = repository.journal_of(order_id)
    dispute = repository.dispute_of_order(order_id)
    return OrderReport(
        row=repository.as_dict(row),
        bonds=tuple(_bond_view(b) for b in repository.bonds_of_order(order_id)),
        dispute=repository.as_dict(dispute) if dispute is not None else None,
        deadlines=deadlines,
        journal_entries=len(journal),
        journal_tail=_journal_tail(journal, journal_tail),
        undone_outbox=outbox,
        stuck=stuck,
        actor=liveness or ActorLiveness(system_running=False, note="actor system not asked"),
    )


def load_order_state(order_id: str) -> OrderState | str | None:
    """The order as the logic sees it, None if absent, or why its rows cannot be read
    (a status or bond state the logic does not know: the data is the problem, not us)."""
    try:
        return load_state(order_id)
    except (ValueError, KeyError, TypeError) as err:
        return f"{type(err).__name__}: {err}"


def unloadable(order_id: str, why: str) -> StuckFinding:
    return StuckFinding(order_id, RULE_NO_PATH,
                        f"the order logic cannot load this order's rows ({why}): its actor would fail")


def candidate_order_ids(outbox: Mapping[str | None, Sequence[OutboxItem]]) -> list[str]:
    """Orders worth checking: live ones (not terminal or holding an active bond), those with
    undone effects, and those with a released bond LND has not confirmed."""
    ids = list(repository.live_order_ids())
    ids += [order_id for order_id in outbox if order_id is not None]
    ids += [bond.order_id for bond in repository.bonds_by_state("released")
            if bond.release_confirmed_at is None]
    ids += [bond.order_id for bond in repository.bonds_by_state("locked")]
    return list(dict.fromkeys(ids))


def hashes_to_check(states: Iterable[OrderState]) -> list[str]:
    """Invoice hashes whose LND state can reveal a contradiction: escrows, and bonds not
    settled for good."""
    wanted: list[str] = []
    for state in states:
        if state.order.hash:
            wanted.append(state.order.hash)
        for bond in state.bonds:
            final = bond.release_confirmed_at is not None or (bond.invoice_state or "") in (
                "canceled", "settled")
            if bond.hash and not (bond.state == "released" and final):
                wanted.append(bond.hash)
    return wanted


def find_stuck(
    settings: Any, now: int, thresholds: Thresholds = DEFAULT_THRESHOLDS,
    lnd_lookup: Callable[[Sequence[str]], Mapping[str, str]] | None = None,
) -> list[StuckFinding]:
    """Every stuck finding in the database, orders first (oldest first), then orderless effects.

    `lnd_lookup` (the `--lnd` option) maps hashes to LND's current invoice state.
    """
    outbox = undone_outbox_by_order()
    findings: list[StuckFinding] = []
    states: list[OrderState] = []
    for order_id in candidate_order_ids(outbox):
        loaded = load_order_state(order_id)
        if isinstance(loaded, str):
            findings.append(unloadable(order_id, loaded))
        elif loaded is not None:
            states.append(loaded)
    lnd_states = dict(lnd_lookup(hashes_to_check(states))) if lnd_lookup else {}
    for state in states:
        facts = order_facts(state, settings, outbox.get(state.order.id, ()), lnd_states)
        findings += stuck_findings(facts, now, thresholds)
    findings += stale_outbox(outbox.get(None, ()), now, thresholds)
    return findings


def stuck_order_ids(findings: Iterable[StuckFinding]) -> set[str]:
    return {f.order_id for f in findings if f.order_id is not None}


# ------------------------------------------------------------------ LND (the --lnd option)
def lnd_invoice_states(client: Any, hashes: Sequence[str]) -> dict[str, str]:
    """LookupInvoiceV2 for each hash; unknown hashes and errors are left out (lower-case states)."""
    from adapters.lnd.errors import LndError

    states: dict[str, str] = {}
    for payment_hash in hashes:
        snapshot = client.lookup_invoice(payment_hash)
        if not isinstance(snapshot, LndError):
            states[payment_hash] = snapshot.state.value.lower()
    return states


def connect_lnd(settings: Any) -> Any:
    """An `LndClient` for the configured node, or a string saying why not."""
    from adapters.lnd.client import ConnectionSettings, LndClient
    from adapters.lnd.errors import LndError

    lightning = settings.lightning
    client = LndClient.connect(ConnectionSettings(
        host=lightning.grpc_target(), tls_cert_path=lightning.lnd_cert_file,
        macaroon_path=lightning.lnd_macaroon_file,
    ))
    return str(client) if isinstance(client, LndError) else client


# ------------------------------------------------------------------ the running actor system
@dataclass(frozen=True)
class ActorInfo:
    address: str
    kind: str
    parent: str | None
    mailbox: int  # messages received and not yet handled
    outgoing: int  # messages waiting to be sent
    children: int
    global_name: str | None = None
    responsive: bool = True


@dataclass(frozen=True)
class ActorSystemView:
    running: bool
    note: str
    actors: tuple[ActorInfo, ...] = ()
    directory: DirectoryStatus | None = None

    def liveness_of(self, order_id: str) -> ActorLiveness:
        if not self.running:
            return ActorLiveness(False, note=self.note)
        if self.directory is None:
            return ActorLiveness(True, note="the order directory did not answer")
        return ActorLiveness(
            True, live=order_id in self.directory.live_orders,
            buffered=self.directory.buffered.get(order_id, 0),
        )


def admin_port_in_use(port: int) -> bool:
    """Whether something holds the admin port — thespian's own test before it starts an admin."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("", port))
        return False
    except OSError as err:
        return err.errno == errno.EADDRINUSE
    finally:
        probe.close()


def join_actor_system(settings: Any) -> tuple[Any, Any] | str:
    """(ActorSystem, admin address) of the running daemon, or why it cannot be reached.

    Only multiprocTCPBase can be joined from another process; the admin port
    is probed first so that joining never starts a new, empty system. The
    returned system must not be shut down (that would stop the daemon).
    """
    base = settings.actors.base
    port = settings.actors.admin_port
    if base != "multiprocTCPBase":
        return f"the daemon runs on {base}, which another process cannot join"
    if not admin_port_in_use(port):
        return f"actor system not running (nothing on admin port {port})"
    from thespian.actors import ActorSystem, ActorSystemException

    try:
        system = ActorSystem(base, {"Admin Port": port}, transientUnique=True)
    except (ActorSystemException, OSError) as err:
        return f"actor system on admin port {port} not reachable: {err}"
    return system, system._systemBase.adminAddr


def _status(system: Any, address: Any, timeout: float) -> Any:
    from thespian.system.messages.status import Thespian_StatusReq

    return system.ask(address, Thespian_StatusReq(), timeout)


def describe_actor_system(
    system: Any, admin: Any = None, roots: Sequence[Any] = (),
    global_names: Mapping[str, Any] | None = None, timeout: float = 5.0, walk: bool = True,
) -> ActorSystemView:
    """Walk the actor tree with thespian status requests, and ask the directory for its orders.

    Start from the admin's top-level actors (multiprocTCPBase), or from
    `roots` where there is no admin to ask (simpleSystemBase in tests).
    `walk=False` asks only the directory (one order's liveness).
    """
    from thespian.system.messages.status import Thespian_ActorStatus, Thespian_SystemStatus

    names: dict[str, str] = {}
    queue: list[tuple[Any, str | None]] = [(address, None) for address in roots]
    globals_by_name = dict(global_names or {})
    if admin is not None:
        system_status = _status(system, admin, timeout)
        if not isinstance(system_status, Thespian_SystemStatus):
            return ActorSystemView(False, f"the actor system admin at {admin} did not answer")
        globals_by_name.update(system_status.globalActors)
        queue += [(address, str(admin)) for address in system_status.childActors]
    for name, address in globals_by_name.items():
        names[str(address)] = name
    actors: list[ActorInfo] = []
    seen: set[str] = set()
    while walk and queue and len(actors) < MAX_ACTORS:
        address, parent = queue.pop(0)
        if str(address) in seen:
            continue
        seen.add(str(address))
        status = _status(system, address, timeout)
        if not isinstance(status, Thespian_ActorStatus):
            actors.append(ActorInfo(str(address), "?", parent, 0, 0, 0,
                                    names.get(str(address)), responsive=False))
            continue
        actors.append(ActorInfo(
            str(address), status.actorClass, parent, len(status.receivedMessages),
            len(status.pendingMessages), len(status.childActors), names.get(str(address)),
        ))
        queue += [(child, str(address)) for child in status.childActors]
    directory = None
    if DIRECTORY_NAME in globals_by_name:
        reply = system.ask(globals_by_name[DIRECTORY_NAME], StatusRequest(), timeout)
        directory = reply if isinstance(reply, DirectoryStatus) else None
    return ActorSystemView(True, "", tuple(actors), directory)


def actor_system_view(settings: Any, timeout: float = 5.0, walk: bool = True) -> ActorSystemView:
    """The running daemon's actors, or a view saying it is not running (never raises for that)."""
    joined = join_actor_system(settings)
    if isinstance(joined, str):
        return ActorSystemView(False, joined)
    system, admin = joined
    return describe_actor_system(system, admin=admin, timeout=timeout, walk=walk)


# ------------------------------------------------------------------ JSON
def to_jsonable(value: Any) -> Any:
    """Views → plain JSON data (dataclasses as objects, enums as values)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def dumps_json(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2, sort_keys=False)
