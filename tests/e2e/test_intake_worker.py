"""The daemon's inbound checks in the Nostr adapter's check worker, end to end on
simpleSystemBase: requests are answered through the worker, and still answered (checked
inline) after the worker is killed.
"""

from __future__ import annotations

import os
import signal

from adapters.nostr.protocol.enums import Action, Kind
from tests.e2e.conftest import Stack
from tests.e2e.helpers import fixed_order, make_order, wait_published, wait_until
from tests.fixtures.processes import check_worker_pids, gone


def test_requests_are_answered_through_the_check_worker_and_without_it(stack: Stack) -> None:
    maker = stack.client("maker")
    key, order_id = make_order(stack, maker, fixed_order(Kind.SELL, 20_000))
    wait_published(stack, order_id, "pending")
    (worker,) = check_worker_pids(os.getpid())  # started by the first request

    os.kill(worker, signal.SIGKILL)
    wait_until(lambda: gone(worker), pump=stack.pump)
    maker.send(key, Action.CANCEL, order_id)  # checked inline from now on
    maker.wait_for(Action.CANCELED, trade=key, pump=stack.pump)
    wait_published(stack, order_id, "canceled")
    assert check_worker_pids(os.getpid()) == []  # not restarted: one failure, logged once
