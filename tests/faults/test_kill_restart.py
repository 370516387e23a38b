"""Kill -9 the daemon at each point of a trade, start it again, finish the trade: same end.

The daemon runs as `mostro-py run` (multiprocTCPBase) in its own process; a
kill takes out the supervisor, thespian's admin and every actor at once, then
the daemon is started again on the same database. The end state must be the
one an uninterrupted run reaches (tests/faults/data/kill_points.json): order
`success` (in the database and on the relay), the seller's escrow HTLC settled,
the buyer paid exactly once, no HTLC left held at the simulator, no outbox
effect left undone, and every party got every message of the uninterrupted
run; a duplicate is only allowed as an identical re-send (an effect whose
relay confirmation died with the process is sent again, DESIGN.md §3).
"""

from __future__ import annotations

from typing import Any

import pytest

from adapters.nostr.local_relay import port_is_open

from .conftest import FaultStack, wait_until
from .trade_kit import AMOUNT, SellTrade, load_data, message_problems, party_fee, received_for

DATA = load_data("kill_points.json")
EXPECTED = DATA["expected_messages"]


def run_steps(trade: SellTrade, steps: list[str]) -> None:
    for step in steps:
        getattr(trade, step)()


def wait_all_messages(trade: SellTrade) -> None:
    """Messages travel through the relay: wait until each party has everything expected."""
    assert trade.buyer_key is not None
    parties = ((trade.seller, trade.seller_key, EXPECTED["seller"]),
               (trade.buyer, trade.buyer_key, EXPECTED["buyer"]))

    def complete() -> bool:
        return all(not any(p.startswith("missing") for p in
                           message_problems(received_for(client, key), expected))
                   for client, key, expected in parties)

    try:
        wait_until(complete, what="every expected message delivered")
    except TimeoutError:
        pass  # the assertion below names what is missing


def check_final_state(stack: FaultStack, trade: SellTrade, buyer_before: int) -> None:
    assert trade.buyer_key is not None
    wait_until(lambda: stack.order_status(trade.order_id) == "success",
               what="order success in the database")
    wait_until(lambda: not stack.undone_effects(), what="outbox drained")
    assert stack.invoice_state(trade.escrow_hash) == "SETTLED"
    payouts = stack.payments_to(trade.payout_hash)
    assert [p["status"] for p in payouts] == ["SUCCEEDED"]
    assert stack.invoice_state(trade.payout_hash) == "SETTLED"
    assert stack.balance_sat(1) == buyer_before + AMOUNT - party_fee(AMOUNT)
    assert stack.held_invoices() == []
    published = stack.relay.query([{"kinds": [38383], "#d": [trade.order_id]}])
    newest = max(published, key=lambda e: e["created_at"])
    history = sorted((e["created_at"], next(t[1] for t in e["tags"] if t[0] == "s"), e["id"][:8])
                     for e in published)
    assert ["s", "success"] in newest["tags"], history
    wait_all_messages(trade)
    problems = {
        "seller": message_problems(received_for(trade.seller, trade.seller_key),
                                   EXPECTED["seller"]),
        "buyer": message_problems(received_for(trade.buyer, trade.buyer_key), EXPECTED["buyer"]),
    }
    assert problems == {"seller": [], "buyer": []}


@pytest.mark.slow  # the kill tests below check the same expectations; this pins them alone
@pytest.mark.multiproc
def test_uninterrupted_trade_is_the_reference(fault_stack: FaultStack) -> None:
    """The reference run the kill tests compare with (and the expectations file is right)."""
    buyer_before = fault_stack.balance_sat(1)
    trade = SellTrade.listed(fault_stack)
    run_steps(trade, DATA["steps"])
    check_final_state(fault_stack, trade, buyer_before)
    assert fault_stack.daemon.starts == 1


@pytest.mark.multiproc
@pytest.mark.parametrize("point", DATA["kill_points"], ids=lambda p: p["name"])
def test_kill_and_restart_at(fault_stack: FaultStack, point: dict[str, Any]) -> None:
    stack = fault_stack
    buyer_before = stack.balance_sat(1)
    trade = SellTrade.listed(stack)
    steps: list[str] = DATA["steps"]
    cut = steps.index(point["kill_after"]) + 1
    if point.get("delay_payout_ms"):
        stack.lnsim.sim.delay("SendPaymentV2", int(point["delay_payout_ms"]), node="mostro")
    run_steps(trade, steps[:cut])
    paused = point.get("relay_paused_for", [])
    if paused:
        stack.relay.pause()
        run_steps(trade, paused)
        # decided (the order is active) but the messages are stuck in the outbox
        wait_until(lambda: stack.order_status(trade.order_id) == "active", what="order active")
        assert any(row["effect"] == "SendMessage" for row in stack.undone_effects())
    stack.daemon.kill()
    if paused:
        stack.relay.resume()
    if point.get("delay_payout_ms"):
        # the kill landed after the settle and before the buyer was paid
        assert stack.invoice_state(trade.escrow_hash) == "SETTLED"
        assert stack.invoice_state(trade.payout_hash) == "OPEN"
        stack.lnsim.sim.clear_faults()
    run_steps(trade, point["while_down"])
    stack.daemon.start()
    remaining = [s for s in steps[cut:] if s not in point["while_down"] + paused]
    run_steps(trade, remaining)
    check_final_state(stack, trade, buyer_before)
    assert stack.daemon.starts == 2


@pytest.mark.multiproc
def test_supervisor_killed_alone(fault_stack: FaultStack) -> None:
    """`kill -9` of the supervisor's process group alone: thespian's admin daemonizes (its own
    session), so the admin and every actor outlive it, until the supervisor watch sees the
    supervisor gone and shuts the system down (actors/supervisor_watch.py) instead of letting
    it serve the node unwatched. A new `mostro-py run` then starts on the free port and the
    trade ends as an uninterrupted one, whether the orphans or the new actors saw the escrow."""
    stack = fault_stack
    buyer_before = stack.balance_sat(1)
    trade = SellTrade.listed(stack)
    trade.take()
    stack.daemon.kill_supervisor_group()
    trade.pay_escrow()
    wait_until(lambda: not port_is_open(stack.daemon.admin_port), what="the orphans stopped")
    stack.daemon.start()
    trade.wait_active()
    trade.fiat_sent()
    trade.release()
    trade.wait_success()
    check_final_state(stack, trade, buyer_before)
