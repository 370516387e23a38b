"""A daemon on simpleSystemBase under the real supervisor (`mostro-py run`).

On that base every actor runs inside the supervisor's own thread, and only while that thread
is inside a call into the system: the supervisor pumps the system whenever it waits (its
liveness checks, restart back-off, the outbox flush at shutdown). A whole sell trade runs
through the supervised process, and SIGTERM drains it and exits 0.
"""

from __future__ import annotations

from .conftest import FaultStack
from .test_kill_restart import check_final_state
from .trade_kit import SellTrade


def test_a_trade_runs_on_a_supervised_single_thread_system(fault_stack_factory) -> None:
    stack: FaultStack = fault_stack_factory(actors={"base": "simpleSystemBase"})
    assert any("base=simpleSystemBase" in line for line in stack.daemon.log_lines())
    buyer_before = stack.balance_sat(1)
    trade = SellTrade.listed(stack)
    trade.take()
    trade.pay_escrow()
    trade.wait_active()
    trade.fiat_sent()
    trade.release()
    trade.wait_success()
    check_final_state(stack, trade, buyer_before)
    mark = stack.daemon.log_size()
    assert stack.daemon.stop() == 0
    log = "\n".join(stack.daemon.log_lines(mark))
    assert "outbox flushed" in log and "Traceback" not in log
