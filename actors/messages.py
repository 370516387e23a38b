"""Messages between the daemon's own actors (directory, order actors, clock, outbox).

Frozen, picklable dataclasses: they cross process boundaries on the
multiprocess bases. Adapter vocabularies live with their adapters; the order
logic's events and effects live in ``order_logic.model``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .order_logic.model import Deadline, OrderEvent


@dataclass(frozen=True)
class Peers:
    """Addresses of the top-level actors, handed to each actor when it is configured."""

    directory: Any = None
    clock: Any = None
    outbox: Any = None
    nostr: Any = None
    lightning: Any = None


@dataclass(frozen=True)
class RuntimeConfig:
    """What every daemon actor needs to start: settings, the database and its peers."""

    settings: Any
    database_url: str
    peers: Peers = field(default_factory=Peers)
    network: str = "regtest"


@dataclass(frozen=True)
class RouteToOrder:
    """An event for one order; ``now`` pins the decision's clock (tests, clock), else wall time."""

    order_id: str
    event: OrderEvent
    now: int | None = None
    # set by the directory when it sends this again to a fresh actor after the first one
    # died: the event may already be committed (the order actor then skips it)
    redelivered: bool = False


@dataclass(frozen=True)
class RouteBatch:
    """The routed requests of one intake wake-up, in arrival order: one message to the
    directory instead of one per request (the directory routes each as a RouteToOrder)."""

    routes: tuple[RouteToOrder, ...]


@dataclass(frozen=True)
class InvoiceUpdate:
    """An LND invoice state change, routed by payment hash to the order that owns it."""

    hash: str
    event: OrderEvent
    now: int | None = None


@dataclass(frozen=True)
class ActivateOrder:
    """Directory → new order actor: which order it is (None: a new order about to be created),
    and the first event for it (handled as if sent right after: one message instead of two)."""

    order_id: str
    config: RuntimeConfig
    first: Any = None  # RouteToOrder | None (declared below)
    # the directory forwards the actor's DispatchEffects (carried in its OrderHandled) to the
    # outbox, several orders' in one DispatchBatch, instead of the actor sending each itself
    dispatch_via_directory: bool = False


@dataclass(frozen=True)
class OrderHandled:
    """Order actor → directory: one envelope processed (for idle tracking and tests)."""

    order_id: str
    status: str | None
    terminal: bool
    dispatch: Any = None  # DispatchEffects | None, when activated with dispatch_via_directory
    # the deadlines the decision changed, for the clock (also only with dispatch_via_directory)
    schedules: tuple[ScheduleDeadlines, ...] = ()


@dataclass(frozen=True)
class HandledBatch:
    """Order actors → directory: the `OrderHandled` of one group commit's decisions, each with
    the address of the actor that sent it (simpleSystemBase: storage/commit_group.py)."""

    handled: tuple[tuple[Any, OrderHandled], ...]


@dataclass(frozen=True)
class Passivate:
    order_id: str


@dataclass(frozen=True)
class Passivated:
    order_id: str


@dataclass(frozen=True)
class ScheduleDeadlines:
    """Order actor → clock: the complete set of deadlines this order wants now."""

    order_id: str
    deadlines: tuple[Deadline, ...]


@dataclass(frozen=True)
class ScheduleBatch:
    """Directory → clock: the `ScheduleDeadlines` order actors reported in one burst."""

    schedules: tuple[ScheduleDeadlines, ...]


@dataclass(frozen=True)
class SetManualTime:
    """Tests: switch the clock to manual time and set it; due deadlines fire at once."""

    now: int


@dataclass(frozen=True)
class DispatchEffects:
    """Order actor → outbox: effect rows committed with a decision, ready to run.

    `effects`, when given, are those rows' effects (same order as `effect_ids`) and
    `order_id` their order: the outbox then runs them without reading back the rows the
    decision has just written (fresh rows cannot be done yet). `new_order`: the decision
    created the order, so it has published nothing before (the outbox need not look)."""

    effect_ids: tuple[int, ...]
    effects: tuple[Any, ...] = ()
    order_id: str | None = None
    new_order: bool = False


@dataclass(frozen=True)
class DispatchBatch:
    """Directory → outbox: the DispatchEffects of several decisions, in the order they came."""

    dispatches: tuple[DispatchEffects, ...]


@dataclass(frozen=True)
class StatusRequest:
    """Ask an actor for a snapshot of itself (inspection tools)."""


@dataclass(frozen=True)
class DirectoryStatus:
    live_orders: tuple[str, ...]
    buffered: dict[str, int]
    handled: int
    # scale-out: host name → order actors placed there; order id → its host and actor address
    hosts: dict[str, int] = field(default_factory=dict)
    placement: dict[str, str] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Quiesce:
    """Tests and shutdown: reply ``Quiet`` once no order actor has work in flight."""


@dataclass(frozen=True)
class Quiet:
    handled: int


@dataclass(frozen=True)
class DispatchTransient:
    """Effects that change no state and need no outbox row (a cant-do for an unknown order,
    a cancel for an HTLC nobody owns); lost on a crash, which loses nothing."""

    effects: tuple[Any, ...]


@dataclass(frozen=True)
class ResendUndone:
    """Supervisor → outbox at start: run every effect that was committed but never confirmed."""


@dataclass(frozen=True)
class Announce:
    """Daemon → outbox: publish the node's info (and metadata) events now and periodically."""

    lightning_info: Any = None
