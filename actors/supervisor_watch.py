"""Stops an actor system whose supervisor is gone.

thespian's TCP admin runs in a session of its own, so a supervisor killed alone (SIGKILL, the
OOM killer) leaves every actor serving the node with nobody restarting, draining or stopping
them, and the next `mostro-py run` refuses the busy admin port. The watch runs inside the
system, looks at the supervisor's process every few seconds and, once it is gone, starts a
detached process that shuts the system down the way `mostro-py stop` does (an actor cannot
shut down the system it runs in and wait for that itself). Nothing is lost by stopping: every
order, bond and effect is in the database and the next run resumes them.

This module must not decide anything about orders, and must never stop a system whose
supervisor still runs: a recycled pid is told apart by the process's start time.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from thespian.actors import Actor, WakeupMessage

log = logging.getLogger("mostro.supervisor_watch")

CHECK_SECONDS = 2.0
WATCH_NAME = "mostro-supervisor-watch"


@dataclass(frozen=True)
class WatchSupervisor:
    """Watch process `pid` (started at `start_ticks`, see `process_start_ticks`)."""

    pid: int
    start_ticks: int | None
    admin_port: int
    check_seconds: float = CHECK_SECONDS


@dataclass(frozen=True)
class Watching:
    pid: int


def process_start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), or None if there is no such process.

    Where /proc is missing the answer is 0 for any live process: the pid alone is checked."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0
        return 0
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
    return int(fields[19])  # field 22 of proc(5); the first after the name is field 3


def supervisor_alive(pid: int, start_ticks: int | None) -> bool:
    ticks = process_start_ticks(pid)
    return ticks is not None and (start_ticks is None or ticks == start_ticks)


def start_detached_shutdown(admin_port: int) -> subprocess.Popen[bytes]:
    """A process of its own session that shuts down the system on `admin_port` and outlives it."""
    program = ("from thespian.actors import ActorSystem; "
               f"ActorSystem('multiprocTCPBase', {{'Admin Port': {admin_port}}}, "
               "transientUnique=True).shutdown()")
    return subprocess.Popen([sys.executable, "-c", program], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


class SupervisorWatch(Actor):
    """One per actor system the supervisor starts on multiprocTCPBase."""

    def __init__(self) -> None:
        super().__init__()
        self.watched: WatchSupervisor | None = None

    def receiveMessage(self, message: object, sender: object) -> None:
        if isinstance(message, WatchSupervisor):
            first = self.watched is None
            self.watched = message
            self.send(sender, Watching(message.pid))
            if first:
                self.wakeupAfter(timedelta(seconds=message.check_seconds))
        elif isinstance(message, WakeupMessage) and self.watched is not None:
            watched = self.watched
            if supervisor_alive(watched.pid, watched.start_ticks):
                self.wakeupAfter(timedelta(seconds=watched.check_seconds))
                return
            log.error("supervisor gone; shutting down its actor system (orders and effects "
                      "are in the database: the next run resumes them)",
                      extra={"fields": {"supervisor_pid": watched.pid,
                                        "admin_port": watched.admin_port}})
            self.watched = None
            start_detached_shutdown(watched.admin_port)
