"""The order directory: the single way into an order.

Every event for order X — from clients, LND, the clock — passes through here,
so each order sees exactly one total order of events. The directory activates
an order actor from the database on demand and retires idle or finished ones
(LRU cap, idle timeout) only when every event sent to them is confirmed, so
nothing is lost or reordered across a retirement. It decides nothing about
orders: refusals come from the order logic, except "no such order".

Scale-out (several actor systems in one thespian convention): the directory
chooses the host of each new or re-activated order actor (``actors.placement``:
fewest live order actors, workers before the leader) and pins the creation there
by capability requirements. It listens to the convention's membership: when the
leader declares a member gone (missed check-ins) or it re-registers after a
restart, every order placed there is re-activated elsewhere from the database
and its unconfirmed events are re-sent, marked ``redelivered``. With no host
offering orders, events wait here until one joins.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
import uuid
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from thespian.actors import (
    Actor,
    ActorExitRequest,
    ActorSystemConventionUpdate,
    ChildActorExited,
    WakeupMessage,
)

from adapters.nostr.protocol.enums import Action, CantDoReason
from storage import models, open_database, repository

from .held_batch import HeldBatch, holds_on
from .messages import (
    ActivateOrder,
    DirectoryStatus,
    DispatchBatch,
    DispatchEffects,
    DispatchTransient,
    HandledBatch,
    InvoiceUpdate,
    OrderHandled,
    Passivated,
    Quiesce,
    Quiet,
    RouteBatch,
    RouteToOrder,
    RuntimeConfig,
    ScheduleBatch,
    ScheduleDeadlines,
    StatusRequest,
)
from .order_actor import OrderActor
from .order_logic.model import CancelHoldInvoice, ClientRequest, InvoiceAccepted
from .order_logic.replies import cant_do
from .placement import HOST, ORDERS, Host, choose_host, host_name, requirements_for

log = logging.getLogger(__name__)

IDLE_SWEEP_SECONDS = 5.0
_FLUSH_DISPATCH = "flush-dispatch"


@dataclasses.dataclass
class LiveOrder:
    address: Any
    host: str = ""
    in_flight: int = 0
    last_used: float = 0.0
    terminal: bool = False
    # sent and not yet confirmed by OrderHandled, oldest first (an actor handles its mailbox
    # in order): re-sent to a fresh actor if this one dies, so no event dies with it
    unconfirmed: collections.deque[RouteToOrder] = dataclasses.field(
        default_factory=collections.deque)


class OrderDirectoryActor(Actor):
    def __init__(self) -> None:
        super().__init__()
        self._config: RuntimeConfig | None = None
        self._live: OrderedDict[str, LiveOrder] = OrderedDict()
        self._handled = 0
        self._quiesce_waiters: list[Any] = []
        self._sweep_armed = False
        # hosts that may run order actors, by name (this system's own one included if it may)
        self._hosts: dict[str, Host] = {}
        # events for orders that no host can run right now, in arrival order
        self._homeless: OrderedDict[str, list[RouteToOrder]] = OrderedDict()
        # members where an order actor died unexpectedly: not used until the given time
        # (monotonic), so a host that is gone but not yet declared gone is not tried again
        self._suspect: dict[str, tuple[Host, float]] = {}
        # set by ActorExitRequest: the order actors are going down with us, nothing is moved
        self._exiting = False
        # committed effects reported by order actors, not yet handed to the outbox
        # effects order actors report in their OrderHandled, for the outbox as one DispatchBatch
        self._held_dispatch: HeldBatch[DispatchEffects | ScheduleDeadlines] = HeldBatch(
            _FLUSH_DISPATCH)
        # address strings of actors retired on purpose, until their ChildActorExited: those
        # exits are expected, and finding them among thousands of live orders would cost a
        # comparison each
        self._retiring: set[str] = set()

    # ------------------------------------------------------------ dispatch
    def receiveMessage(self, msg: object, sender: object) -> None:
        if isinstance(msg, RuntimeConfig):
            self._configure(msg)
            self.send(sender, msg)
        elif isinstance(msg, RouteToOrder):
            self._route(msg)
        elif isinstance(msg, RouteBatch):
            for route in msg.routes:
                self._route(route)
        elif isinstance(msg, InvoiceUpdate):
            self._route_invoice(msg)
        elif isinstance(msg, OrderHandled):
            self._dispatch(self._on_handled(msg, sender))
        elif isinstance(msg, HandledBatch):
            # one group commit's decisions: their effects and deadlines go on as one batch each
            self._dispatch([item for address, handled in msg.handled
                            for item in self._on_handled(handled, address)])
        elif isinstance(msg, Passivated):
            pass  # answer to a Passivate of an older directory version: nothing waits on it
        elif isinstance(msg, ActorExitRequest):
            self._exiting = True
            self._flush_dispatch()  # committed and due: hand them over before going down
        elif isinstance(msg, ChildActorExited):
            if not self._exiting:
                self._on_child_exited(msg.childAddress)
        elif isinstance(msg, ActorSystemConventionUpdate):
            if not self._exiting:
                self._on_member_update(msg)
        elif isinstance(msg, WakeupMessage) and msg.payload == _FLUSH_DISPATCH:
            self._flush_dispatch()
        elif isinstance(msg, WakeupMessage):
            self._sweep_armed = False
            self._restore_suspects()
            self._sweep_idle()
        elif isinstance(msg, Quiesce):
            self._quiesce_waiters.append(sender)
            self._maybe_quiet()
        elif isinstance(msg, StatusRequest):
            self.send(sender, DirectoryStatus(
                live_orders=tuple(self._live),
                buffered={k: len(v) for k, v in self._homeless.items()},
                handled=self._handled,
                hosts={name: host.live for name, host in self._hosts.items()},
                placement={order_id: live.host for order_id, live in self._live.items()},
                addresses={order_id: str(live.address) for order_id, live in self._live.items()},
            ))

    def _configure(self, config: RuntimeConfig) -> None:
        self._config = config
        if models.database_proxy.obj is None:
            open_database(config.database_url)
        actors = getattr(config.settings, "actors", None)
        if getattr(actors, "orders", True):
            own = host_name(int(getattr(actors, "admin_port", 0))
                            if getattr(actors, "base", "") != "simpleSystemBase" else 0)
            self._hosts.setdefault(own, Host(own))
        self._held_dispatch.holding = holds_on(config.settings)
        if getattr(actors, "base", "") == "multiprocTCPBase":
            # members joining / leaving the convention (this system must be its leader)
            self.notifyOnSystemRegistrationChanges(True)
        self._arm_sweep()

    # ------------------------------------------------------------ routing
    def _route(self, msg: RouteToOrder) -> None:
        event = msg.event
        if isinstance(event, ClientRequest) and event.message.action == Action.NEW_ORDER:
            order_id = str(uuid.uuid4())
            message = dataclasses.replace(event.message, id=order_id)
            msg = RouteToOrder(order_id, dataclasses.replace(event, message=message), msg.now)
            self._deliver(msg, new=True)
            return
        if msg.order_id in self._homeless:
            self._homeless[msg.order_id].append(msg)
            return
        if msg.order_id not in self._live and not self._exists(msg.order_id):
            if isinstance(event, ClientRequest):
                self._transient(cant_do(event, CantDoReason.NOT_FOUND))
            else:
                log.warning("event %s for unknown order %s dropped", type(event).__name__, msg.order_id)
            return
        self._deliver(msg, new=False)

    def _route_invoice(self, msg: InvoiceUpdate) -> None:
        order_id = repository.order_id_for_hash(msg.hash)
        if order_id is None:
            if isinstance(msg.event, InvoiceAccepted):
                # An HTLC nobody owns must not stay held: refund it.
                self._transient(CancelHoldInvoice(msg.hash))
            log.warning("invoice event for unknown hash %s", msg.hash)
            return
        self._route(RouteToOrder(order_id, msg.event, msg.now))

    def _exists(self, order_id: str) -> bool:
        return repository.order_exists(order_id)

    def _deliver(self, msg: RouteToOrder, new: bool) -> None:
        live = self._live.get(msg.order_id)
        if live is None:
            host = choose_host(self._hosts.values())
            if host is None:
                log.warning("no host offers order actors; order %s waits for one", msg.order_id)
                self._homeless.setdefault(msg.order_id, []).append(msg)
                return
            # this system's own host needs no pin (a bare test system declares no name)
            pin = host.name if host.admin_address is not None else None
            live = LiveOrder(self.createActor(OrderActor, requirements_for(pin)), host.name)
            self._retiring.discard(str(live.address))  # a port reused after an exit we missed
            host.live += 1
            self._live[msg.order_id] = live
            first: RouteToOrder | None = msg  # the event rides with the activation
        else:
            first = None
        self._live.move_to_end(msg.order_id)
        live.in_flight += 1
        live.last_used = time.monotonic()
        live.unconfirmed.append(msg)
        if first is not None:
            assert self._config is not None
            self.send(live.address, ActivateOrder(msg.order_id, self._config, first,
                                                  dispatch_via_directory=True))
        else:
            self.send(live.address, msg)
        self._enforce_cap()

    def _transient(self, effect: Any) -> None:
        outbox = self._config.peers.outbox if self._config else None
        if outbox is not None:
            self.send(outbox, DispatchTransient((effect,)))

    # ------------------------------------------------------------ lifecycle
    def _on_handled(self, msg: OrderHandled, sender: Any) -> list[DispatchEffects | ScheduleDeadlines]:
        """Count the event handled; return its committed effects and deadlines to pass on
        (whichever actor of the order reported them: they are committed)."""
        self._handled += 1
        to_dispatch = ([msg.dispatch] if msg.dispatch is not None else []) + list(msg.schedules)
        live = self._live.get(msg.order_id)
        if live is not None and live.address != sender:
            # from an actor of this order that died and was replaced since: what it had
            # not confirmed was re-sent to the new one, whose confirmations count
            live = None
        if live is not None:
            live.in_flight = max(0, live.in_flight - 1)
            if live.unconfirmed:
                live.unconfirmed.popleft()
            live.terminal = msg.terminal
            if msg.terminal and live.in_flight == 0:
                self._passivate(msg.order_id)
        self._maybe_quiet()
        return to_dispatch

    def _cap(self) -> int:
        actors = getattr(self._config.settings, "actors", None) if self._config else None
        return int(getattr(actors, "live_order_actor_cap", 1000))

    def _idle_seconds(self) -> float:
        actors = getattr(self._config.settings, "actors", None) if self._config else None
        return float(getattr(actors, "order_actor_idle_seconds", 300))

    def _enforce_cap(self) -> None:
        excess = len(self._live) - self._cap()
        if excess <= 0:
            return
        # oldest first; collected before passivating (which edits `_live`) without copying
        # the whole map, which this runs for every routed event once the cap is reached
        idle: list[str] = []
        for order_id, live in self._live.items():
            if live.in_flight == 0:
                idle.append(order_id)
                if len(idle) == excess:
                    break
        for order_id in idle:
            self._passivate(order_id)

    def _sweep_idle(self) -> None:
        limit = time.monotonic() - self._idle_seconds()
        for order_id, live in list(self._live.items()):
            if live.in_flight == 0 and live.last_used < limit:
                self._passivate(order_id)
        self._arm_sweep()

    def _arm_sweep(self) -> None:
        if not self._sweep_armed:
            self._sweep_armed = True
            self.wakeupAfter(timedelta(seconds=IDLE_SWEEP_SECONDS))

    def _passivate(self, order_id: str) -> None:
        """Retire an order actor with nothing in flight (callers check `in_flight == 0`):
        every event it was sent is confirmed by its OrderHandled, which it sends after its
        commit and its sends, and only the directory sends it events, so it can exit at once
        and the order's next event activates a fresh actor from the database. (No
        Passivate/Passivated round trip: two transport hops saved per retired order.)"""
        live = self._live.pop(order_id, None)
        if live is None:
            return
        self._release_host(live)
        self._retiring.add(str(live.address))
        self.send(live.address, ActorExitRequest())

    def _on_child_exited(self, address: Any) -> None:
        key = str(address)
        if key in self._retiring:
            self._retiring.discard(key)
            return
        for order_id, live in list(self._live.items()):
            if live.address == address:
                log.error("order actor for %s exited unexpectedly; it will be re-activated", order_id)
                self._suspend_host(live.host)
                self._reactivate(order_id)
                self._maybe_quiet()
                return

    def _reactivate(self, order_id: str) -> None:
        """Replace a dead order actor: a fresh one (placed anew) gets what the dead one had not
        confirmed, marked re-delivered (it may have been committed: the new actor skips
        those it finds in the journal), in order."""
        live = self._live.pop(order_id)
        self._release_host(live)
        resent = [dataclasses.replace(msg, redelivered=True) for msg in live.unconfirmed]
        for msg in resent:
            self._deliver(msg, new=False)

    def _suspend_host(self, name: str) -> None:
        host = self._hosts.get(name)
        if host is None or host.admin_address is None:
            return  # this system's own host stays: there is no other fallback
        self._hosts.pop(name)
        actors = getattr(self._config.settings, "actors", None) if self._config else None
        pause = 3 * float(getattr(actors, "member_checkin_seconds", 10))
        self._suspect[name] = (host, time.monotonic() + pause)
        log.warning("order actors are not placed on %s for %.0f s", name, pause)

    def _restore_suspects(self) -> None:
        now = time.monotonic()
        for name, (host, until) in list(self._suspect.items()):
            if until <= now:
                del self._suspect[name]
                self._hosts.setdefault(name, host)
        if self._homeless and self._hosts:
            self._place_homeless()

    def _release_host(self, live: LiveOrder) -> None:
        host = self._hosts.get(live.host) or self._suspect.get(live.host, (None, 0.0))[0]
        if host is not None:
            host.live = max(0, host.live - 1)

    # ------------------------------------------------------------ convention membership
    def _on_member_update(self, msg: ActorSystemConventionUpdate) -> None:
        capabilities = msg.remoteCapabilities or {}
        name = capabilities.get(HOST) or str(msg.remoteAdminAddress)
        if msg.remoteAdded:
            if capabilities.get(ORDERS):
                log.info("convention member %s joined; it runs order actors", name)
                known = self._hosts.get(name) or self._suspect.pop(name, (None, 0.0))[0]
                if known is None:
                    known = Host(name, msg.remoteAdminAddress)
                known.admin_address = msg.remoteAdminAddress
                self._hosts[name] = known
                self._place_homeless()
            return
        gone = self._hosts.pop(name, None) or self._suspect.pop(name, (None, 0.0))[0]
        if gone is None:
            return
        moved = [order_id for order_id, live in self._live.items() if live.host == name]
        log.error("convention member %s is gone; re-activating its %d order(s) elsewhere",
                  name, len(moved))
        for order_id in moved:
            self._reactivate(order_id)
        self._maybe_quiet()

    def _place_homeless(self) -> None:
        homeless, self._homeless = self._homeless, OrderedDict()
        for messages in homeless.values():
            for msg in messages:
                self._deliver(msg, new=False)

    def _dispatch(self, items: list[DispatchEffects | ScheduleDeadlines]) -> None:
        """Hand order actors' committed effects to the outbox and their deadlines to the
        clock (held briefly: held_batch.py)."""
        if items:
            self._send_dispatch(self._held_dispatch.add(self, items))

    def _flush_dispatch(self) -> None:
        self._send_dispatch(self._held_dispatch.take())

    def _send_dispatch(self, held: list[DispatchEffects | ScheduleDeadlines]) -> None:
        peers = self._config.peers if self._config else None
        if not held or peers is None:
            return
        dispatches = [item for item in held if isinstance(item, DispatchEffects)]
        schedules = [item for item in held if isinstance(item, ScheduleDeadlines)]
        if dispatches and peers.outbox is not None:
            self.send(peers.outbox,
                      dispatches[0] if len(dispatches) == 1 else DispatchBatch(tuple(dispatches)))
        if schedules and peers.clock is not None:
            self.send(peers.clock,
                      schedules[0] if len(schedules) == 1 else ScheduleBatch(tuple(schedules)))

    def _maybe_quiet(self) -> None:
        if not self._quiesce_waiters:
            return
        if any(live.in_flight for live in self._live.values()) or self._homeless:
            return
        self._flush_dispatch()  # quiet means every handled event's effects reached the outbox
        waiters, self._quiesce_waiters = self._quiesce_waiters, []
        for waiter in waiters:
            self.send(waiter, Quiet(self._handled))
