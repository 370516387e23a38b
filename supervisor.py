"""The supervisor: the process operators launch (`mostro-py run`).

It loads and validates the settings, applies migrations, starts the thespian
actor system and the daemon's top-level actors, and shuts everything down
gracefully on SIGTERM/SIGINT (a second signal forces). It holds no business
logic: wiring lives in ``actors.daemon``, rules in ``actors.order_logic``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from config import ConfigError, Settings, load_settings
from storage import migrate, open_database

log = logging.getLogger("mostro.supervisor")


class StructuredFormatter(logging.Formatter):
    """One line per event: time, level, logger, message, then key=value fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {}
        extra = "".join(f" {k}={v}" for k, v in fields.items())
        base = f"{self.formatTime(record)} {record.levelname} {record.name}: {record.getMessage()}{extra}"
        if record.exc_info:
            base += "\n" + self.formatException(record.exc_info)
        return base


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(StructuredFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class ShutdownSignal:
    """First SIGTERM/SIGINT asks for a graceful stop; a second one forces the exit."""

    def __init__(self) -> None:
        self.requested = threading.Event()

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested.is_set():
            log.warning("second signal: forcing exit")
            raise SystemExit(130)
        log.info("signal %s: shutting down gracefully", signal.Signals(signum).name)
        self.requested.set()


def prepare(settings: Settings) -> None:
    """Open the database and bring its schema up to date."""
    db = open_database(settings.database.url)
    applied = migrate(db)
    if applied:
        log.info("migrations applied", extra={"fields": {"versions": ",".join(map(str, applied))}})


def run(settings: Settings, stop: ShutdownSignal) -> int:
    from actors.daemon import Daemon

    prepare(settings)
    daemon = Daemon(settings)
    daemon.start()
    log.info("daemon running", extra={"fields": daemon.describe()})
    try:
        while not stop.requested.wait(timeout=5.0):
            health = daemon.health()
            if not health.ok:
                log.warning("unhealthy", extra={"fields": health.fields()})
    finally:
        daemon.stop()
    log.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mostro-py run", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/settings.toml", help="settings file (TOML)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as err:
        print(f"mostro-py: invalid settings in {args.config}:\n{err}", file=sys.stderr)
        return 2
    configure_logging(settings.logging.level)
    stop = ShutdownSignal()
    stop.install()
    return run(settings, stop)


if __name__ == "__main__":
    sys.exit(main())
