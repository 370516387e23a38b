"""The daemon's inbound checks in the Nostr adapter's check worker, end to end on
simpleSystemBase: requests are answered through the worker, and still answered (checked
inline) after the worker is killed.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from adapters.nostr.protocol.enums import Action, Kind
from tests.e2e.conftest import Stack
from tests.e2e.helpers import fixed_order, make_order, wait_published, wait_until


def check_workers_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if (ppid == parent and b"adapters.nostr.check_worker" in cmdline
                and cmdline.rstrip(b"\0").endswith(b"intake-check")):
            found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True


def test_requests_are_answered_through_the_check_worker_and_without_it(stack: Stack) -> None:
    maker = stack.client("maker")
    key, order_id = make_order(stack, maker, fixed_order(Kind.SELL, 20_000))
    wait_published(stack, order_id, "pending")
    (worker,) = check_workers_of(os.getpid())  # started by the first request

    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: gone(worker), pump=stack.pump)
    maker.send(key, Action.CANCEL, order_id)  # checked inline from now on
    maker.wait_for(Action.CANCELED, trade=key, pump=stack.pump)
    wait_published(stack, order_id, "canceled")
    assert check_workers_of(os.getpid()) == []  # not restarted: one failure, logged once
