"""Wiring: start the actor system and the daemon's top-level actors, resume, and stop.

Used by the supervisor process and by end-to-end tests (which run it on any
thespian base). Start-up order matters for "no lost data": the database is
migrated by the caller; then the outbox, clock and directory are configured;
LND is connected and every open hold invoice re-watched; every live order's
deadlines are re-scheduled; undone effects are re-sent; intake opens last.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

from thespian.actors import ActorExitRequest, ActorSystem

from adapters.lnd import messages as ln
from adapters.lnd.actor import LightningAdapter
from adapters.nostr import transport
from adapters.nostr.actor import NostrAdapter, inbox_subscription
from adapters.nostr.adapter_messages import (
    NostrStarted,
    NostrStopped,
    StartNostr,
    StopNostr,
    Unsubscribe,
    Unsubscribed,
)
from adapters.nostr.unsigned import SignerFactory
from storage import repository
from storage.checkpointer import checkpointer_for

from .clock import ClockActor
from .directory import OrderDirectoryActor
from .intake import IntakeHandlerFactory
from .intake_precheck import IntakePrecheck
from .messages import (
    Announce,
    Peers,
    Quiesce,
    Quiet,
    ResendUndone,
    RuntimeConfig,
    ScheduleDeadlines,
)
from .order_logic.deadlines import deadlines_of
from .order_store import load_states
from .outbox import OutboxActor
from .placement import system_capabilities, tune_convention_checkin

log = logging.getLogger(__name__)

ASK_TIMEOUT = 30.0
DIRECTORY_NAME = "mostro-directory"
INBOX_SUBSCRIPTION = "mostro-inbox"
# the top-level actors by their field in Peers, in the order they are stopped
TOP_LEVEL = ("nostr", "lightning", "directory", "clock", "outbox")


@dataclass(frozen=True)
class Health:
    ok: bool
    lightning: str
    relays: str

    def fields(self) -> dict[str, str]:
        return {"lightning": self.lightning, "relays": self.relays}


class Daemon:
    """One running node: an actor system plus the addresses of its top-level actors."""

    def __init__(self, settings: Any, base: str | None = None, *, own_system: bool = True,
                 system: ActorSystem | None = None) -> None:
        self.settings = settings
        self.base = base or settings.actors.base
        self._own_system = own_system and system is None
        self.system = system
        self.peers = Peers()
        self.network = "regtest"
        self.lightning_status: ln.LightningStatus | None = None
        self.checkpointer = checkpointer_for(settings.database.url)

    # ------------------------------------------------------------ start / stop
    def start(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.start()
        if self.system is None:
            actors = dataclasses.replace(self.settings.actors, base=self.base)
            if self.base == "multiprocTCPBase":
                tune_convention_checkin(actors.member_checkin_seconds)
            self.system = ActorSystem(self.base, system_capabilities(actors))
        system = self.system
        outbox = system.createActor(OutboxActor)
        clock = system.createActor(ClockActor)
        directory = self._live_directory(system)
        lightning = system.createActor(LightningAdapter)
        nostr = system.createActor(NostrAdapter)
        self.peers = Peers(directory=directory, clock=clock, outbox=outbox, nostr=nostr,
                           lightning=lightning)

        self._connect_lightning()
        config = RuntimeConfig(self.settings, self.settings.database.url, self.peers, self.network)
        for address in (outbox, clock, directory):
            reply = system.ask(address, config, ASK_TIMEOUT)
            if reply is None:
                raise RuntimeError(f"actor {address} did not confirm its configuration")
        self._rewatch_invoices()
        self._reschedule_deadlines()
        system.ask(outbox, ResendUndone(), ASK_TIMEOUT)
        self._open_intake()
        info = self.lightning_status.info if self.lightning_status else None
        system.tell(outbox, Announce(info))

    @staticmethod
    def _live_directory(system: ActorSystem, timeout: float = ASK_TIMEOUT) -> Any:
        """The directory by its global name, once one answers. Right after a restart the admin
        can still hand out the old directory's address (under load it has not yet processed
        that actor's exit); configuring a dead address would wait out the whole ask timeout."""
        from thespian.system.messages.status import Thespian_ActorStatus, Thespian_StatusReq

        deadline = time.monotonic() + timeout
        while True:
            address = system.createActor(OrderDirectoryActor, globalName=DIRECTORY_NAME)
            if isinstance(system.ask(address, Thespian_StatusReq(), 1.0), Thespian_ActorStatus):
                return address
            if time.monotonic() > deadline:
                raise RuntimeError("the order directory did not come up")
            log.warning("the order directory's global name still points to an exited actor; "
                        "asking again")

    def _connect_lightning(self) -> None:
        lnd = self.settings.lightning
        configure = ln.Configure(
            host=lnd.grpc_target(),
            tls_cert_path=lnd.lnd_cert_file,
            macaroon_path=lnd.lnd_macaroon_file,
            expected_network=lnd.network,
            owner=self.peers.outbox,
        )
        status = self.system.ask(self.peers.lightning, configure, ASK_TIMEOUT)
        if not isinstance(status, ln.LightningStatus) or not status.connected:
            error = getattr(status, "error", "no answer")
            raise RuntimeError(f"cannot use LND at {lnd.lnd_grpc_host}: {error}")
        self.lightning_status = status
        if status.info is not None:
            self.network = status.info.network

    def _rewatch_invoices(self) -> None:
        for hash_hex, last_state in repository.open_hold_invoices():
            known = ln.InvoiceState(last_state.upper()) if last_state else None
            self.system.tell(self.peers.lightning, ln.WatchInvoice(hash_hex, known))

    def _reschedule_deadlines(self) -> None:
        order_ids = repository.live_order_ids()
        states = load_states(order_ids)
        for order_id in order_ids:
            state = states.get(order_id)
            if state is not None:
                deadlines = deadlines_of(state, self.settings)
                self.system.tell(self.peers.clock, ScheduleDeadlines(order_id, deadlines))

    def _open_intake(self) -> None:
        node_pubkey = self.settings.nostr.public_key_hex()
        kind = transport.TRANSPORT_KIND[self.settings.mostro.transport]
        start = StartNostr(
            relays=tuple(self.settings.nostr.relays),
            subscriptions=(inbox_subscription(node_pubkey, kind, INBOX_SUBSCRIPTION),),
            owner=self.peers.outbox,
            inbound_handler_factory=IntakeHandlerFactory(
                self.settings, self.settings.database.url, self.peers.directory),
            precheck_factory=IntakePrecheck.from_settings(self.settings),
            signer_factory=SignerFactory(self.settings.nostr.secret_key_hex()),
        )
        reply = self.system.ask(self.peers.nostr, start, ASK_TIMEOUT)
        if not isinstance(reply, NostrStarted):
            raise RuntimeError(f"the Nostr adapter did not start: {reply!r}")

    def quiesce(self, timeout: float = ASK_TIMEOUT) -> int:
        """Wait until no order actor has work in flight; return how many events were handled."""
        reply = self.system.ask(self.peers.directory, Quiesce(), timeout)
        if not isinstance(reply, Quiet):
            raise TimeoutError("order actors did not go quiet")
        return reply.handled

    def top_level(self) -> dict[str, Any]:
        """Field name in Peers → address, for every top-level actor started."""
        return {name: getattr(self.peers, name) for name in TOP_LEVEL
                if getattr(self.peers, name) is not None}

    def liveness(self, timeout: float = 5.0) -> dict[str, bool]:
        """Whether each top-level actor answers a thespian status request (a dead one: None)."""
        from thespian.system.messages.status import Thespian_ActorStatus, Thespian_StatusReq

        if self.system is None:
            return {name: False for name in TOP_LEVEL}
        return {name: isinstance(self.system.ask(address, Thespian_StatusReq(), timeout),
                                 Thespian_ActorStatus)
                for name, address in self.top_level().items()}

    def stop_actors(self, timeout: float = 10.0) -> None:
        """Ask every top-level actor to exit and wait until none answers; the system stays up.

        Used before a restart: the directory's global name is free again only
        once the old directory is gone.
        """
        self._stop_checkpointer()
        if self.system is None:
            return
        for address in self.top_level().values():
            self.system.tell(address, ActorExitRequest())
        deadline = time.monotonic() + timeout
        while any(self.liveness(timeout=1.0).values()) and time.monotonic() < deadline:
            time.sleep(0.05)  # exits take a few ms each
        self.peers = Peers()

    def pause_intake(self, timeout: float = 10.0) -> bool:
        """Stop taking requests (close the inbox subscription) while replies still publish."""
        if self.system is None or self.peers.nostr is None:
            return False
        reply = self.system.ask(self.peers.nostr, Unsubscribe(INBOX_SUBSCRIPTION), timeout)
        return isinstance(reply, Unsubscribed)

    def close_intake(self, timeout: float = 10.0) -> bool:
        """Close the relay connections (no new requests, no more publishing); True when done."""
        if self.system is None or self.peers.nostr is None:
            return False
        return isinstance(self.system.ask(self.peers.nostr, StopNostr(), timeout), NostrStopped)

    def stop(self) -> None:
        self._stop_checkpointer()
        if self.system is None:
            return
        # Inputs first (no new requests, no LND events), then let the order actors finish,
        # so the directory is not creating an order actor while the system goes down.
        for address in (self.peers.nostr, self.peers.lightning):
            if address is not None:
                self.system.tell(address, ActorExitRequest())
        if self.peers.directory is not None:
            try:
                self.quiesce(timeout=5.0)
            except TimeoutError:
                log.warning("order actors still busy at shutdown")
        for address in (self.peers.directory, self.peers.clock, self.peers.outbox):
            if address is not None:
                self.system.tell(address, ActorExitRequest())
        if self._own_system:
            self.system.shutdown()
            self.system = None

    def _stop_checkpointer(self) -> None:
        """Nothing waits on it: what is committed after its last checkpoint, the next start's
        checkpointer copies (or a connection's backstop, `storage.database.BACKSTOP_PAGES`)."""
        if self.checkpointer is not None:
            self.checkpointer.stop()

    # ------------------------------------------------------------ status
    def health(self) -> Health:
        status = self.system.ask(self.peers.lightning, ln.GetLightningStatus(), 5.0) if self.system else None
        connected = isinstance(status, ln.LightningStatus) and status.connected
        return Health(ok=connected, lightning="connected" if connected else "down", relays="?")

    def describe(self) -> dict[str, str]:
        return {"base": self.base, "network": self.network,
                "node": self.settings.nostr.public_key_hex()[:16]}
