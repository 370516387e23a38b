"""The supervisor: the process operators launch (`mostro-py run`).

It loads and validates the settings (exit 2 listing every problem), checks
the database and applies migrations (exit 3 with one clear line when it is
locked, read-only, missing or full: never a crash loop), creates the thespian
actor system with structured logging, starts the daemon's top-level actors
(``actors.daemon.Daemon``: re-sent outbox effects, re-watched invoices),
watches them, restarts them with backoff when one dies (and logs why), logs
a health line periodically, and shuts down gracefully on SIGTERM/SIGINT: let
intake stop (inbox closed, relays kept for replies), in-flight order messages
finish, flush the outbox, close the relays, stop the
actors and the system. A second signal skips straight to stopping the system.

`mostro-py run --join LEADER` (or ``[actors] convention_leader``) runs a
*worker* instead (``Worker``): an actor system that joins the leader's
convention and offers order capacity, with no adapters, no directory and no
LND; it logs whether it is a member, and on SIGTERM/SIGINT leaves the
convention (the leader then re-activates its orders elsewhere) and exits.

`mostro-py health` (``health_main``) asks a running daemon how it is, from
another process, through the thespian admin port.

It holds no business logic: wiring lives in ``actors.daemon``, rules in
``actors.order_logic``.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any

from config import ConfigError, Settings, load_settings

log = logging.getLogger("mostro.supervisor")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_STORAGE = 3
EXIT_FORCED = 130

QUIESCE_TIMEOUT = 10.0  # in-flight order messages at shutdown
# allocations between two young-generation collections (CPython's default: 700)
YOUNG_COLLECTION_THRESHOLD = 20_000
PUMP_SLICE = 0.02  # simpleSystemBase: longest the supervisor stays inside one listen
FLUSH_TIMEOUT = 5.0  # undone outbox effects at shutdown (the rest are re-sent at the next start)
TOP_LEVEL_KINDS = {
    "OutboxActor": "outbox", "ClockActor": "clock", "OrderDirectoryActor": "directory",
    "LightningAdapter": "lightning", "NostrAdapter": "nostr",
}


# ------------------------------------------------------------------ structured logs
# record attributes shown as fields when a log call passes them in `extra`
_FIELD_ATTRIBUTES = ("order_id", "bond_id", "effect_id", "actor")


def _field_value(value: object) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text)
    return text


class StructuredFormatter(logging.Formatter):
    """One line per event: time, level, logger, message, then key=value fields.

    Fields come from ``extra={"fields": {...}}`` and from the well-known
    attributes ``order_id`` / ``bond_id`` / ``effect_id`` / ``actor``. A
    traceback is folded into the line (``exc=...``) so a log stays one event
    per line; the full trace is kept at DEBUG level only.
    """

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {}
        for name in _FIELD_ATTRIBUTES:
            if getattr(record, name, None) is not None:
                fields[name] = getattr(record, name)
        fields.update(getattr(record, "fields", None) or {})
        message = record.getMessage().replace("\n", " | ")
        line = (f"{self.formatTime(record, '%Y-%m-%dT%H:%M:%S')} {record.levelname} "
                f"{record.name}: {message}")
        line += "".join(f" {key}={_field_value(value)}" for key, value in fields.items())
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            line += f" exc={_field_value(f'{type(error).__name__}: {error}')}"
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                line += " trace=" + json.dumps(self.formatException(record.exc_info))
        return line


def logging_config(level: str) -> dict[str, Any]:
    """A dictConfig for this process and for thespian's logger process (actors log through it)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": f"{__name__}.StructuredFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "structured",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def configure_logging(level: str) -> None:
    import logging.config

    logging.config.dictConfig(logging_config(level))


def fields(**values: object) -> dict[str, dict[str, object]]:
    """``log.info("...", extra=fields(order_id=...))``."""
    return {"fields": values}


# ------------------------------------------------------------------ signals
class ForcedExit(BaseException):
    """A second signal: skip the graceful steps (raised in the main thread by the handler)."""


class ShutdownSignal:
    """First SIGTERM/SIGINT asks for a graceful stop; a second forces it; a third exits at once."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._count = 0

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._count += 1
        name = signal.Signals(signum).name
        if self._count == 1:
            log.info("shutting down gracefully", extra=fields(signal=name))
            self.requested.set()
        elif self._count == 2:
            log.warning("second signal: forcing the shutdown", extra=fields(signal=name))
            raise ForcedExit()
        else:
            os._exit(EXIT_FORCED)


# ------------------------------------------------------------------ storage
def storage_problem(error: BaseException, url: str) -> str:
    """One line an operator can act on, for a database that cannot be used."""
    text = str(error).lower()
    if "locked" in text:
        return (f"the database {url} is locked by another process "
                "(is another mostro-py running on it?)")
    if "readonly" in text or "read-only" in text:
        return f"the database {url} is read-only: give this user write access to it and its folder"
    if "full" in text or getattr(error, "errno", None) == 28:
        return f"the disk holding the database {url} is full: free space and start again"
    if "unable to open" in text:
        return (f"cannot open the database {url}: its folder is missing or not writable "
                "by this user")
    if "disk i/o" in text:
        return f"disk I/O error on the database {url}: check the disk"
    return f"the database {url} cannot be used: {error}"


def prepare_storage(settings: Settings) -> str | None:
    """Open the database and bring its schema up to date; None, or why it cannot be used."""
    import peewee

    from storage import migrate, open_database

    url = settings.database.url
    database = open_database(url)  # lazy: nothing is opened yet
    try:
        applied = migrate(database)
    except (peewee.DatabaseError, OSError) as error:
        return storage_problem(error, url)
    finally:
        database.close()  # no open SQLite handle may cross the fork of the actor processes
    if applied:
        log.info("migrations applied", extra=fields(versions=",".join(map(str, applied))))
    return None


# ------------------------------------------------------------------ health
@dataclass(frozen=True)
class HealthReport:
    """How the daemon is doing: each top-level actor, LND, and how often it was restarted."""

    ok: bool
    actors: dict[str, bool]
    lightning: str
    restarts: int | None = None  # known only to the supervisor itself
    note: str = ""

    def fields(self) -> dict[str, object]:
        values: dict[str, object] = {"ok": self.ok, "lnd": self.lightning}
        if self.restarts is not None:
            values["restarts"] = self.restarts
        values.update({f"actor_{name}": "up" if alive else "down"
                       for name, alive in self.actors.items()})
        if self.note:
            values["note"] = self.note
        return values

    def line(self) -> str:
        return ("healthy" if self.ok else "unhealthy") + "".join(
            f" {key}={_field_value(value)}" for key, value in self.fields().items())


def daemon_health(daemon: Any, restarts: int, timeout: float = 5.0) -> HealthReport:
    """The health of the daemon this process runs."""
    actors = daemon.liveness(timeout)
    lightning = "down"
    if actors.get("lightning"):
        lightning = daemon.health().lightning
    ok = all(actors.values()) and len(actors) == len(TOP_LEVEL_KINDS) and lightning == "connected"
    return HealthReport(ok, actors, lightning, restarts)


def probe_health(settings: Settings, timeout: float = 5.0) -> HealthReport:
    """The health of a daemon running in another process, asked through the admin port."""
    from thespian.system.messages.status import (
        Thespian_ActorStatus,
        Thespian_StatusReq,
        Thespian_SystemStatus,
    )

    from actors.inspection import join_actor_system
    from adapters.lnd import messages as ln

    down = {name: False for name in TOP_LEVEL_KINDS.values()}
    joined = join_actor_system(settings)
    if isinstance(joined, str):
        return HealthReport(False, down, "unknown", note=joined)
    system, admin = joined
    status = system.ask(admin, Thespian_StatusReq(), timeout)
    if not isinstance(status, Thespian_SystemStatus):
        return HealthReport(False, down, "unknown", note="the actor system admin did not answer")
    actors = dict(down)
    lightning_address = None
    for address in status.childActors:
        actor = system.ask(address, Thespian_StatusReq(), timeout)
        if not isinstance(actor, Thespian_ActorStatus):
            continue
        name = TOP_LEVEL_KINDS.get(str(actor.actorClass).rsplit(".", 1)[-1])
        if name is not None:
            actors[name] = True
            if name == "lightning":
                lightning_address = address
    lightning = "down"
    if lightning_address is not None:
        reply = system.ask(lightning_address, ln.GetLightningStatus(), timeout)
        if isinstance(reply, ln.LightningStatus) and reply.connected:
            lightning = "connected"
    return HealthReport(all(actors.values()) and lightning == "connected", actors, lightning)


# ------------------------------------------------------------------ supervision
@dataclass
class Backoff:
    """Delays between restarts: doubling from `initial` up to `maximum`; reset when stable."""

    initial: float = 1.0
    maximum: float = 60.0
    _next: float = field(default=0.0, init=False)

    def next_delay(self) -> float:
        delay = self._next or self.initial
        self._next = min(delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = 0.0


@dataclass(frozen=True)
class SupervisorOptions:
    check_interval: float = 5.0  # liveness check of the top-level actors
    health_log_interval: float = 60.0  # one health line in the log this often
    probe_timeout: float = 5.0
    restart_backoff: Backoff = field(default_factory=Backoff)


def create_actor_system(settings: Settings) -> Any:
    """The thespian system the daemon runs on, with the supervisor's log format in every actor.

    While the admin process forks from us, SIGINT is ignored (a Ctrl-C meant for
    the supervisor must not kill the admin or the actors it forks) and SIGTERM
    has its default action (the admin must not inherit our graceful handler).
    """
    from thespian.actors import ActorSystem

    from actors.placement import system_capabilities, tune_convention_checkin

    capabilities = system_capabilities(settings.actors)
    if settings.actors.base == "multiprocTCPBase":
        tune_convention_checkin(settings.actors.member_checkin_seconds)
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        system = ActorSystem(settings.actors.base, capabilities,
                             logDefs=logging_config(settings.logging.level))
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
    if settings.actors.base == "multiprocTCPBase":
        watch_supervisor(system, settings.actors.admin_port)
    return system


def watch_supervisor(system: Any, admin_port: int, timeout: float = 10.0) -> None:
    """Have the system stop itself if this process dies without stopping it.

    thespian's TCP admin lives in its own session: without the watch a SIGKILLed
    supervisor leaves the actors serving the node unwatched (actors/supervisor_watch.py)."""
    from actors.supervisor_watch import (
        WATCH_NAME,
        SupervisorWatch,
        Watching,
        WatchSupervisor,
        process_start_ticks,
    )

    pid = os.getpid()
    watch = system.createActor(SupervisorWatch, globalName=WATCH_NAME)
    reply = system.ask(watch, WatchSupervisor(pid, process_start_ticks(pid), admin_port), timeout)
    if not isinstance(reply, Watching):
        log.warning("the supervisor watch did not start: a killed supervisor would leave its "
                    "actor system running (stop it with `mostro-py stop`)")


class _SystemOwner:
    """What the supervisor and a worker share: they create one actor system and, however they
    end (a signal, a forced exit, an error), shut it down."""

    def __init__(self, settings: Settings, stop: ShutdownSignal,
                 options: SupervisorOptions | None = None) -> None:
        self.settings = settings
        self.stop = stop
        self.options = options or SupervisorOptions()
        self.system: Any = None

    def run(self) -> int:
        try:
            self.system = create_actor_system(self.settings)
            if not self._serve():
                return EXIT_OK
        except ForcedExit:
            return EXIT_FORCED
        finally:
            self._stop_system()
        log.info("stopped")
        return EXIT_OK

    def _serve(self) -> bool:
        """Run until asked to stop; False when it stopped before there was anything to serve."""
        raise NotImplementedError

    def _stop_system(self) -> None:
        system, self.system = self.system, None
        if system is not None:
            system.shutdown()


class Supervisor(_SystemOwner):
    """Starts the daemon, keeps its top-level actors alive, and stops it in order."""

    def __init__(self, settings: Settings, stop: ShutdownSignal,
                 options: SupervisorOptions | None = None) -> None:
        super().__init__(settings, stop, options)
        self.daemon: Any = None
        self.restarts = 0

    def _serve(self) -> bool:
        from actors.daemon import Daemon

        self.daemon = Daemon(self.settings, system=self.system)
        if not self._start_with_backoff():
            log.info("stopped before the daemon came up")
            return False
        log.info("daemon running", extra=fields(**self.daemon.describe()))
        self._watch()
        self._shutdown_gracefully()
        return True

    def _start_with_backoff(self) -> bool:
        """Start the daemon, retrying with backoff while LND or the relays are unreachable."""
        backoff = Backoff(self.options.restart_backoff.initial, self.options.restart_backoff.maximum)
        while not self.stop.requested.is_set():
            try:
                self.daemon.start()
                return True
            except Exception as error:  # noqa: BLE001 - any start failure is logged and retried
                delay = backoff.next_delay()
                log.error("daemon did not start; retrying",
                          extra=fields(error=str(error), retry_in_s=delay))
                self.daemon.stop_actors(timeout=self.options.probe_timeout)
                if self._pause(delay):
                    return False
        return False

    def _watch(self) -> None:
        last_health_log = time.monotonic()
        misses: dict[str, int] = {}
        healthy_since = time.monotonic()
        backoff = self.options.restart_backoff
        while not self._pause(self.options.check_interval):
            alive = self.daemon.liveness(self.options.probe_timeout)
            for name, up in alive.items():
                misses[name] = 0 if up else misses.get(name, 0) + 1
            dead = sorted(name for name, count in misses.items() if count >= 2)
            if dead:
                healthy_since = self._restart(dead, backoff)
                misses.clear()
                continue
            if time.monotonic() - healthy_since > 60.0:
                backoff.reset()
            if time.monotonic() - last_health_log >= self.options.health_log_interval:
                last_health_log = time.monotonic()
                report = daemon_health(self.daemon, self.restarts, self.options.probe_timeout)
                level = logging.INFO if report.ok else logging.WARNING
                log.log(level, "health", extra=fields(**report.fields()))

    def _restart(self, dead: list[str], backoff: Backoff) -> float:
        """Restart every top-level actor (they hold each other's addresses) after a delay."""
        delay = backoff.next_delay()
        log.error("top-level actor stopped answering; restarting the daemon's actors",
                  extra=fields(actors=",".join(dead), restart_in_s=delay))
        if self._pause(delay):
            return time.monotonic()
        self.daemon.stop_actors(timeout=self.options.probe_timeout)
        if self._start_with_backoff():
            self.restarts += 1
            log.info("daemon's actors restarted", extra=fields(restarts=self.restarts))
        return time.monotonic()

    def _shutdown_gracefully(self) -> None:
        from storage import repository

        daemon = self.daemon
        if daemon.peers.directory is None:  # stopped half-way through a restart
            daemon.stop_actors(timeout=self.options.probe_timeout)
            return
        if daemon.pause_intake():
            log.info("intake closed")
        else:
            log.warning("the Nostr adapter did not confirm closing the inbox subscription")
        try:
            handled = daemon.quiesce(QUIESCE_TIMEOUT)
            log.info("order actors quiet", extra=fields(events_handled=handled))
        except TimeoutError:
            log.warning("order actors still busy; stopping anyway",
                        extra=fields(waited_s=QUIESCE_TIMEOUT))
        deadline = time.monotonic() + FLUSH_TIMEOUT
        undone = len(repository.undone_outbox())
        while undone and time.monotonic() < deadline:
            self._pump(0.05)  # the outbox reports each effect as LND / the relays confirm it
            undone = len(repository.undone_outbox())
        log.info("outbox flushed" if not undone else "outbox not empty; re-sent at next start",
                 extra=fields(undone=undone))
        if not daemon.close_intake():
            log.warning("the Nostr adapter did not confirm closing its relays")
        daemon.stop_actors(timeout=self.options.probe_timeout)

    def _pump(self, seconds: float) -> None:
        """Let `seconds` pass. On simpleSystemBase the actors run only inside this thread's
        calls into the system (there is no admin process), so waiting means running them."""
        if self.settings.actors.base != "simpleSystemBase" or self.system is None:
            time.sleep(seconds)
            return
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self.system.listen(min(remaining, PUMP_SLICE))

    def _pause(self, seconds: float) -> bool:
        """Wait `seconds` (running the actors on simpleSystemBase); True once a stop is asked."""
        if self.settings.actors.base != "simpleSystemBase":
            return self.stop.requested.wait(seconds)
        deadline = time.monotonic() + seconds
        while not self.stop.requested.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._pump(min(remaining, PUMP_SLICE))
        return True


# ------------------------------------------------------------------ worker (convention member)
@dataclass(frozen=True)
class Membership:
    """A worker's view of its convention: whom it joined, and how many order actors it runs."""

    joined: bool
    leader: str
    order_actors: int

    def fields(self) -> dict[str, object]:
        return {"joined": self.joined, "leader": self.leader, "order_actors": self.order_actors}


def convention_membership(system: Any, timeout: float = 5.0) -> Membership:
    """Ask this process's own actor system whether the leader has registered it."""
    from thespian.system.messages.status import Thespian_StatusReq, Thespian_SystemStatus

    status = system.ask(system._systemBase.adminAddr, Thespian_StatusReq(), timeout)
    if not isinstance(status, Thespian_SystemStatus):
        return Membership(False, "", 0)
    leader = status.conventionLeader
    joined = leader is not None and any(
        member == leader for member, _valid in status.conventionAttendees)
    named = list(getattr(status, "globalActors", {}).values())  # the watch; order actors have none
    return Membership(joined, str(leader or ""),
                      sum(1 for actor in status.childActors if actor not in named))


class Worker(_SystemOwner):
    """A convention member: its actor system runs the order actors the leader places here.

    Nothing else runs here (no Nostr, no Lightning, no directory): the order actors get
    their settings and database URL from the leader's directory when activated.
    """

    def _serve(self) -> bool:
        leader = self.settings.actors.convention_leader
        log.info("worker running; joining the convention",
                 extra=fields(leader=leader, admin_port=self.settings.actors.admin_port,
                              orders=self.settings.actors.orders))
        joined = False
        last_health_log = time.monotonic()
        interval = min(self.options.check_interval, 1.0)
        while not self.stop.requested.wait(interval if not joined else self.options.check_interval):
            membership = convention_membership(self.system, self.options.probe_timeout)
            if membership.joined != joined:
                joined = membership.joined
                if joined:
                    log.info("joined the convention", extra=fields(**membership.fields()))
                else:
                    log.warning("not a member of the convention (leader unreachable?)",
                                extra=fields(**membership.fields()))
            if time.monotonic() - last_health_log >= self.options.health_log_interval:
                last_health_log = time.monotonic()
                log.log(logging.INFO if joined else logging.WARNING, "health",
                        extra=fields(**membership.fields()))
        log.info("leaving the convention; the leader re-activates this host's orders elsewhere")
        return True


def database_reachable(url: str) -> str | None:
    """None when this host can open the shared database, else one line saying why not."""
    import peewee

    from storage import open_database

    database = open_database(url)
    try:
        database.connect(reuse_if_open=True)
        database.execute_sql("SELECT 1")
    except (peewee.DatabaseError, OSError) as error:
        return storage_problem(error, url)
    finally:
        database.close()
    return None


# ------------------------------------------------------------------ entry points
def load_or_report(path: str, leader: str = "") -> Settings | None:
    """Settings, or None after printing every problem (no traceback); `leader` (from --join)
    stands for `[actors] convention_leader`."""
    overrides = {"actors": {"convention_leader": leader}} if leader else None
    try:
        return load_settings(path, overrides=overrides)
    except ConfigError as err:
        problems = str(err).splitlines()
        print(f"mostro-py: invalid settings in {path} ({len(problems)} problem"
              f"{'s' if len(problems) != 1 else ''}):", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return None


def build_parser(prog: str = "mostro-py run") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/settings.toml", help="settings file (TOML)")
    parser.add_argument("--check-interval", type=float, default=5.0,
                        help="seconds between liveness checks of the top-level actors")
    parser.add_argument("--health-log-interval", type=float, default=60.0,
                        help="seconds between health lines in the log")
    parser.add_argument("--join", metavar="LEADER", default="",
                        help="run as a worker joining the convention of the leader's admin address "
                             "(host:port); overrides [actors] convention_leader")
    return parser


def tune_collector() -> None:
    """Tune the cyclic garbage collector for a long-running daemon (and, before the actor
    system forks, for every actor process).

    Almost everything a request allocates is acyclic and freed by reference counting, yet at
    the default threshold the collector ran a young pass every ~10 requests and a full pass
    walking every live object, all under the GIL: 7 % of benchmark (2)'s run. Young passes
    become ~30 times rarer, and the objects built at start-up (imported modules, settings),
    which live as long as the process, are never walked again (``gc.freeze``). Cyclic garbage
    is still collected, a little later."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def main(argv: Sequence[str] | None = None) -> int:
    """`mostro-py run`: exit 0 after a graceful stop, 2 for bad settings, 3 for an unusable
    database, 1 when the daemon fails, 130 when a second signal forced the stop."""
    args = build_parser().parse_args(argv)
    settings = load_or_report(args.config, args.join)
    if settings is None:
        return EXIT_CONFIG
    configure_logging(settings.logging.level)
    stop = ShutdownSignal()
    stop.install()
    if settings.actors.base == "multiprocTCPBase":
        from actors.inspection import admin_port_in_use

        if admin_port_in_use(settings.actors.admin_port):
            log.critical(f"the actor admin port {settings.actors.admin_port} is in use "
                         "(is another mostro-py running? If its supervisor was killed, "
                         "`mostro-py stop` shuts down the actor system it left; "
                         "else change actors.admin_port)")
            return EXIT_FAILURE
    options = SupervisorOptions(check_interval=args.check_interval,
                                health_log_interval=args.health_log_interval)
    worker = settings.actors.joins_convention()
    # a worker: the leader migrates; this host only has to reach the same database
    problem = database_reachable(settings.database.url) if worker else prepare_storage(settings)
    if problem is not None:
        log.critical(problem)
        return EXIT_STORAGE
    process = Worker if worker else Supervisor
    tune_collector()
    try:
        return process(settings, stop, options).run()
    except ForcedExit:
        return EXIT_FORCED
    except Exception as error:  # noqa: BLE001 - the operator gets one line, not a traceback
        log.critical(f"the {'worker' if worker else 'supervisor'} failed", exc_info=error)
        return EXIT_FAILURE


def health_main(argv: Sequence[str] | None = None) -> int:
    """`mostro-py health [--config F] [--json]`: 0 healthy, 1 unhealthy or not running, 2 bad
    settings."""
    parser = argparse.ArgumentParser(prog="mostro-py health",
                                     description="ask a running daemon how it is")
    parser.add_argument("--config", default="config/settings.toml", help="settings file (TOML)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per question")
    args = parser.parse_args(argv)
    settings = load_or_report(args.config)
    if settings is None:
        return EXIT_CONFIG
    if settings.actors.joins_convention():
        return worker_health(settings, args.timeout, args.json)
    report = probe_health(settings, args.timeout)
    print(json.dumps(asdict(report)) if args.json else report.line())
    return EXIT_OK if report.ok else EXIT_FAILURE


def stop_main(argv: Sequence[str] | None = None) -> int:
    """`mostro-py stop [--config F]`: shut down the actor system on the admin port.

    For a system whose supervisor is gone: thespian's admin runs in its own session,
    so a supervisor killed alone (SIGKILL, OOM) leaves the actors serving the node
    with nobody watching them, and a new `run` refuses the busy port. Nothing is
    lost: every order, bond and effect is in the database and the next `run`
    resumes them. A running supervisor is stopped with SIGTERM or Ctrl-C instead
    (it drains first). Exit 0 stopped or nothing running, 1 still running after
    the timeout, 2 bad settings or a base another process cannot reach.
    """
    from actors.inspection import admin_port_in_use, join_actor_system

    parser = argparse.ArgumentParser(prog="mostro-py stop",
                                     description="shut down an actor system left without its supervisor")
    parser.add_argument("--config", default="config/settings.toml", help="settings file (TOML)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds to wait for the admin port to close")
    args = parser.parse_args(argv)
    settings = load_or_report(args.config)
    if settings is None:
        return EXIT_CONFIG
    port = settings.actors.admin_port
    if settings.actors.base != "multiprocTCPBase":
        print(f"{settings.actors.base} runs inside its supervisor: stop that process instead",
              file=sys.stderr)
        return EXIT_CONFIG
    if not admin_port_in_use(port):
        print(f"not running (nothing on admin port {port})")
        return EXIT_OK
    joined = join_actor_system(settings)
    if isinstance(joined, str):
        print(joined, file=sys.stderr)
        return EXIT_FAILURE
    joined[0].shutdown()
    deadline = time.monotonic() + args.timeout
    while admin_port_in_use(port):
        if time.monotonic() > deadline:
            print(f"the actor system on admin port {port} is still running", file=sys.stderr)
            return EXIT_FAILURE
        time.sleep(0.1)  # the admin closes its port once every actor has exited
    print(f"stopped the actor system on admin port {port}")
    return EXIT_OK


def worker_health(settings: Settings, timeout: float, as_json: bool) -> int:
    """`mostro-py health` on a worker: 0 when its actor system is a member of the convention."""
    from actors.inspection import join_actor_system

    joined = join_actor_system(settings)
    if isinstance(joined, str):
        membership, note = Membership(False, settings.actors.convention_leader, 0), joined
    else:
        membership, note = convention_membership(joined[0], timeout), ""
    values = {**membership.fields(), **({"note": note} if note else {})}
    if as_json:
        print(json.dumps(values))
    else:
        print(("member" if membership.joined else "not a member") + "".join(
            f" {key}={_field_value(value)}" for key, value in values.items()))
    return EXIT_OK if membership.joined else EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
