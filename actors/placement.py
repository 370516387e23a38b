"""Where order actors run: thespian capabilities of each host and the directory's placement choice.

Every actor system of a convention declares what it offers (``system_capabilities``):
``mostro-orders`` (it may run order actors), ``mostro-member`` (it joined another
host's convention) and ``mostro-host`` (a name unique in the convention). The
directory pins each new order actor to one host by naming it in the creation's
requirements (``requirements_for``); ``accepts_order_actor`` is the check thespian
runs on a host for such a request.

Why the directory chooses instead of thespian: thespian 4.0.1 always creates an actor
locally when the local system qualifies, and among remote candidates it picks the one
with the fewest *recorded* remote actors, a count it never records (``createdActor``
is never called) — so every actor would go to the first worker that registered, and
the leader would not tell anyone which actors died with a member. Choosing the host
here gives an even spread by live actors and lets the directory know which orders
to re-activate when a member is gone.

Also here: ``tune_convention_checkin`` — how often members check in with the leader
(thespian's default of 7 min 22 s means a dead member is noticed after ~22 min).

This module decides nothing about orders and sends no messages.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

ORDERS = "mostro-orders"
MEMBER = "mostro-member"
HOST = "mostro-host"
# thespian's names
ADMIN_PORT = "Admin Port"
CONVENTION_ADDRESS = "Convention Address.IPv4"

# a member that missed this many check-ins is declared gone by the leader (thespian's rule)
CHECKINS_MISSED_BEFORE_GONE = 3


def host_name(admin_port: int) -> str:
    """This host's name in the convention: machine name and admin port (unique per system)."""
    return f"{socket.gethostname()}:{admin_port}"


def system_capabilities(actors_settings: Any) -> dict[str, Any]:
    """The thespian capabilities an actor system of these `[actors]` settings declares."""
    capabilities: dict[str, Any] = {}
    if actors_settings.base == "simpleSystemBase":
        return {ORDERS: bool(actors_settings.orders), HOST: host_name(0)}
    capabilities[ADMIN_PORT] = actors_settings.admin_port
    leader = actors_settings.convention_address()
    if leader is not None:
        capabilities[CONVENTION_ADDRESS] = leader
    capabilities[ORDERS] = bool(actors_settings.orders)
    capabilities[MEMBER] = leader is not None
    capabilities[HOST] = host_name(actors_settings.admin_port)
    return capabilities


def accepts_order_actor(capabilities: Mapping[str, Any], requirements: Mapping[str, Any] | None) -> bool:
    """Thespian's capability check for an order actor on a host.

    A system that declares nothing (a test's bare actor system) runs order actors;
    one that says ``mostro-orders: False`` does not; a pinned request runs only on
    the host it names.
    """
    if not capabilities.get(ORDERS, True):
        return False
    wanted = (requirements or {}).get(HOST)
    return wanted is None or capabilities.get(HOST) == wanted


def requirements_for(host: str | None) -> dict[str, str] | None:
    """Creation requirements pinning an order actor to `host` (None: wherever thespian likes)."""
    return None if host is None else {HOST: host}


@dataclass
class Host:
    """One actor system that may run order actors, as the directory sees it."""

    name: str
    admin_address: Any = None  # None: the directory's own system
    live: int = 0  # order actors the directory placed here and still counts as live


def choose_host(hosts: Iterable[Host]) -> Host | None:
    """A member (worker) with the fewest live order actors, ties by name; the directory's own
    host only when no member offers orders: it already runs the adapters and the outbox."""
    candidates = sorted(hosts, key=lambda h: (h.admin_address is None, h.live, h.name))
    return candidates[0] if candidates else None


def tune_convention_checkin(seconds: float) -> None:
    """Make members check in every `seconds` (leader: declare a member gone after 3 misses).

    Must run in the process that creates the actor system, before it does (the admin
    is forked from it and reads these at import and at every check). Sets both the
    environment (for admin processes that import thespian afresh) and the module.
    """
    whole = max(1, int(round(seconds)))
    os.environ["CONVENTION_REREGISTRATION_PERIOD"] = f"{whole // 60}:{whole % 60}"
    from thespian.system.admin import convention

    convention.CONVENTION_REREGISTRATION_PERIOD = timedelta(seconds=whole)
