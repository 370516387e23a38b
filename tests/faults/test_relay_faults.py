"""Relay faults: the relay restarts mid-trade, and the adapters' wake-up path never goes deaf.

- A relay restart (same port, same database) in the middle of a trade: the
  daemon and the clients reconnect, and the trade's messages keep flowing in
  both directions until the order is `success`.
- ``ThreadBridge`` (how relay and LND threads wake their actor): a `put` that
  lands between the actor's emptying of the self-pipe and its clearing of the
  "signalled" flag must still wake the actor next time. Before the fix, that
  interleaving left the flag set with no byte in the pipe, so every later event
  (inbound requests, publish confirmations) sat in the queue until some other
  message woke the adapter: requests went unanswered for good.
"""

from __future__ import annotations

import os
import select
from typing import Any

import pytest

from adapters import bridge as bridge_module
from adapters.bridge import ThreadBridge

from .conftest import FaultStack
from .test_kill_restart import check_final_state
from .trade_kit import SellTrade


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


def test_put_racing_a_drain_still_wakes_the_actor(monkeypatch: pytest.MonkeyPatch) -> None:
    bridge = ThreadBridge(can_watch=True)
    watch = bridge.watch()
    assert watch is not None
    read_fd = watch.filenos[0]
    bridge.put("first")
    raced = []
    real_read = os.read

    def read_with_a_racing_put(fd: int, size: int) -> bytes:
        if not raced:  # a relay thread puts while the actor is inside drain()
            raced.append(True)
            bridge.put("racing")
        return real_read(fd, size)

    class PatchedOs:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        read = staticmethod(read_with_a_racing_put)

    monkeypatch.setattr(bridge_module, "os", PatchedOs())
    assert bridge.drain() == ["first", "racing"]
    monkeypatch.setattr(bridge_module, "os", os)
    bridge.put("later")
    assert readable(read_fd), "a put after the race must wake the actor"
    assert bridge.drain() == ["later"]
    bridge.close()


@pytest.mark.multiproc
def test_relay_restart_mid_trade(fault_stack: FaultStack) -> None:
    """Stop and start the relay twice during a trade: every step still gets through."""
    stack = fault_stack
    buyer_before = stack.balance_sat(1)
    trade = SellTrade.listed(stack)
    trade.take()
    stack.relay.restart()
    trade.pay_escrow()
    trade.wait_active()  # the daemon's answers to an LND event, over the new connection
    stack.relay.restart()
    trade.fiat_sent()  # a client request in, answers out, after the second reconnect
    trade.release()
    trade.wait_success()
    check_final_state(stack, trade, buyer_before)
    assert stack.daemon.starts == 1
