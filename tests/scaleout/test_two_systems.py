"""Order actors on a second actor system, and that system dying mid-race (issue #10).

The leader (`mostro-py run`) runs the adapters, the outbox and the directory; the
worker (`mostro-py run --join`) only order actors. A bonded sell order is listed
and its actor must live on the worker; several takers take it and pay their bonds
at the same moment; once every bond payment is under way the worker is SIGKILLed
(every process of it: a host going down). The leader must notice (missed
check-ins), re-activate the order on itself from PostgreSQL, re-deliver what the
dead actor had not confirmed, and the race must end as BONDS.md says: exactly one
taker bond locked, every other released with its HTLC cancelled (refunded) and its
taker told `canceled` exactly once, no HTLC left held; then the winner's trade runs
to `success` on the leader (tests/faults: the same race and end-state checks).
"""

from __future__ import annotations

import pytest

from tests.faults.bond_race import BondedRace
from tests.faults.test_bond_race_kills import check_race_end
from tests.faults.trade_kit import payment_hash_of

from .conftest import DATA, PostgresStack, actor_processes, wait_until

pytestmark = pytest.mark.multiproc

KILL_POINTS = [
    # every bond invoice issued, none paid: all of LND's events reach the directory while the
    # order's actor is dead, so the whole race is decided by the re-activated actor
    pytest.param("pay_bonds", id="before-the-bonds-are-paid"),
    # every bond payment under way: the worker's actor may have handled some ACCEPTED (and
    # locked), the rest is re-delivered; whatever it had committed is not decided twice
    pytest.param("pay_bonds:paid", id="while-the-bonds-are-paid"),
]


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_orders_on_a_worker_survive_its_death_mid_race(two_systems: PostgresStack,
                                                       kill_at: str) -> None:
    stack = two_systems
    worker = stack.worker
    assert worker is not None
    takers = DATA["takers"]
    before = [stack.balance_sat(i) for i in range(takers + 1)]
    outcome_checked: list[str] = []

    def fault(step: str) -> None:
        if step == "take":
            # the order was created: its actor runs on the worker, not on the leader
            wait_until(lambda: actor_processes(worker.admin_port, "OrderActor"),
                       what="an order actor on the worker")
            assert actor_processes(stack.daemon.admin_port, "OrderActor") == []
        if step == kill_at:
            worker.kill()  # every process of the worker: its host goes down
        if step == "add_invoice":
            # the race is decided: exactly one taker bond locked, every other released, and
            # the only HTLC still held is the winner's bond
            winner = race.winner
            assert winner is not None
            bonds = stack.bonds(race.order_id)
            assert sorted(b["state"] for b in bonds) == ["locked"] + ["released"] * (takers - 1)
            locked = next(b for b in bonds if b["state"] == "locked")
            assert locked["hash"] == payment_hash_of(winner.bond_invoice)
            wait_until(lambda: [i["r_hash"] for i in stack.held_invoices()] == [locked["hash"]],
                       what="only the winner's bond HTLC held")
            if kill_at == "pay_bonds":  # decided after the death: by an actor on the leader
                assert actor_processes(stack.daemon.admin_port, "OrderActor")
            outcome_checked.append(step)

    race = BondedRace.listed(stack, takers, fault)
    race.run()
    assert outcome_checked == ["add_invoice"]
    # the leader noticed the worker's death and moved the order to itself; the trade went on
    # to `success` there (the worker is gone), with every invariant of the race end
    assert any("is gone; re-activating its 1 order" in line
               for line in stack.daemon.log_lines()), stack.daemon.log_tail()
    check_race_end(stack, race, before)


def test_a_worker_stopped_gracefully_hands_its_orders_back_at_once(
        two_systems: PostgresStack) -> None:
    """SIGTERM: the worker leaves the convention (no check-ins to miss), the leader moves its
    order at once, and the order goes on trading there."""
    stack = two_systems
    worker = stack.worker
    assert worker is not None
    race = BondedRace.listed(stack, 1)
    wait_until(lambda: actor_processes(worker.admin_port, "OrderActor"),
               what="the order's actor on the worker")
    mark = stack.daemon.log_size()
    assert worker.stop() == 0
    # thespian reports the worker's actors as exited, then the member as gone (in either
    # order): the directory moves the order on whichever comes first
    wait_until(lambda: any("is gone; re-activating" in line
                           for line in stack.daemon.log_lines(mark)),
               what="the leader noticing the worker left")
    race.take_all()  # answered by an actor on the leader (the worker is gone)
    assert race.takers[0].bond_invoice
    assert actor_processes(stack.daemon.admin_port, "OrderActor")
