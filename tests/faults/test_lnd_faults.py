"""LND faults during a trade: streams dropped, the node restarted, the node down at release.

The daemon (`mostro-py run`) talks to the LND simulator over gRPC; the
simulator's fault switches break the link at chosen points of a trade. Each
test checks the trade still ends as an uninterrupted one does (order `success`,
escrow settled, buyer paid exactly once, no HTLC held, every message
delivered): invoice watchers reconcile after a reconnect, and effects that
failed while LND was unreachable are retried from the outbox.
"""

from __future__ import annotations

import pytest

from adapters.nostr.protocol.enums import Action

from .conftest import FaultStack, wait_until
from .test_kill_restart import check_final_state
from .trade_kit import SellTrade

pytestmark = pytest.mark.multiproc


def test_streams_dropped_at_every_step(fault_stack: FaultStack) -> None:
    stack = fault_stack
    buyer_before = stack.balance_sat(1)
    trade = SellTrade.listed(stack)
    trade.take()
    assert stack.lnsim.sim.drop_streams() >= 1  # the daemon's watcher of the escrow invoice
    trade.pay_escrow()
    trade.wait_active()
    stack.lnsim.sim.drop_streams()
    trade.fiat_sent()
    trade.release()
    stack.lnsim.sim.drop_streams()
    trade.wait_success()
    check_final_state(stack, trade, buyer_before)


def test_lnd_restarts_during_the_trade(fault_stack: FaultStack) -> None:
    """Restart before the escrow is paid and again before the release (settle after it)."""
    stack = fault_stack
    buyer_before = stack.balance_sat(1)
    trade = SellTrade.listed(stack)
    trade.take()
    stack.lnsim.sim.restart()
    trade.pay_escrow()
    trade.wait_active()
    trade.fiat_sent()
    stack.lnsim.sim.restart()
    trade.release()
    trade.wait_success()
    check_final_state(stack, trade, buyer_before)


def test_lnd_down_when_the_seller_releases(fault_stack: FaultStack) -> None:
    """The settle fails while LND is unreachable; the outbox retries it once LND is back."""
    stack = fault_stack
    buyer_before = stack.balance_sat(1)
    trade = SellTrade.listed(stack)
    trade.take()
    trade.pay_escrow()
    trade.wait_active()
    trade.fiat_sent()
    stack.lnsim.sim.stop_servers()
    log_mark = stack.daemon.log_size()
    trade.seller.send(trade.seller_key, Action.RELEASE, trade.order_id)
    wait_until(lambda: any("SettleHoldInvoice" in line and "retrying" in line
                           for line in stack.daemon.log_lines(log_mark)),
               what="the settle failed and is being retried")
    assert stack.invoice_state(trade.escrow_hash) == "ACCEPTED"
    stack.lnsim.sim.start_servers()
    wait_until(lambda: stack.invoice_state(trade.escrow_hash) == "SETTLED",
               what="escrow settled once LND is back")
    trade.wait_success()
    check_final_state(stack, trade, buyer_before)

