"""The taker-bond race for real: many wallets pay their bond invoices at the same moment.

"First to lock wins" (BONDS.md §4.2) is decided by the order actor's mailbox,
so these tests make the race happen instead of ordering it: every racer takes
over the relay, then all pay from their own simulator wallets in threads
released together. Whoever LND's events put first must be the only lock;
every other payer must end FAILED on its own side with its balance restored
and exactly one ``canceled`` message. Runs on simpleSystemBase and on
multiprocTCPBase, through tests/scenario_runner/actors.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors import records_json
from actors.order_logic.model import BondRole, BondState, InvoiceAccepted
from adapters.nostr.protocol.enums import Action
from tests.e2e.conftest import make_settings
from tests.fixtures.lnsim import WALLET_BALANCE_SAT
from tests.scenario_runner.actors import ActorRun, RequestPath, StackParts
from tests.scenario_runner.format import SCENARIO_DIR, FormatError, Scenario, load_scenario

BASES = [
    pytest.param("simpleSystemBase", id="simple"),
    # Slow lane: on multiprocTCPBase under load an order actor occasionally exits mid-race and
    # an LND CANCELED is not handled within the step timeout (about 1 CI run in 5; open bug).
    # The same race runs in CI on simpleSystemBase; scenario 04 races two takers on multiproc.
    pytest.param("multiprocTCPBase", id="multiproc",
                 marks=[pytest.mark.multiproc, pytest.mark.slow]),
]


def scenario(name: str) -> Scenario:
    loaded = load_scenario(SCENARIO_DIR / f"{name}.toml")
    assert not isinstance(loaded, FormatError), str(loaded)
    return loaded


def check_one_winner(run: ActorRun, racers: list[str], *, own_wallets: bool) -> str:
    """Exactly one locked bond, whose payment is still held; every other racer refunded and
    told once; returns the winner's name."""
    state = run.state()
    taker_bonds = [b for b in state.bonds if b.role == BondRole.TAKER]
    locked = [b for b in taker_bonds if b.state == BondState.LOCKED]
    assert len(locked) == 1, [str(b.state) for b in taker_bonds]
    winner = run.name_of(locked[0].pubkey)
    assert winner in racers
    losers = [name for name in racers if name != winner]
    assert sum(1 for b in taker_bonds if b.state == BondState.RELEASED) == len(losers)

    # the first ACCEPTED the order actor handled is the winner's: "first in the mailbox"
    accepted = [records_json.loads(row.message) for row in run.journal()]
    accepted = [event.hash for event in accepted if isinstance(event, InvoiceAccepted)]
    assert accepted[0] == locked[0].hash
    # A race happened: several HTLCs were held. A racer whose payment reached LND after the
    # winner's lock found its invoice already cancelled (refused): a loser all the same.
    assert len(accepted) >= 2

    by_hash = {p.hash_hex: p for p in run.payments}
    assert run.payment_status(by_hash[locked[0].hash]) == "IN_FLIGHT"  # held, never settled
    for name in losers:
        payment = by_hash[run.latest_bond(name).hash]
        assert run.payment_status(payment) == "FAILED", name  # refunded, never SUCCEEDED
        assert run.htlc_state(payment.hash_hex) == "canceled"
        received = [m.action for m in run.party(name).received()]
        assert received == [Action.PAY_BOND_INVOICE, Action.CANCELED], (name, received)
    winner_got = [m.action for m in run.party(winner).received()]
    assert Action.CANCELED not in winner_got

    if own_wallets:  # each racer paid from its own wallet: balances show the refunds
        for name in losers:
            node = run.party(name).wallet_node
            assert run.sim.balance_msat(node) == WALLET_BALANCE_SAT * 1000, name
        node = run.party(winner).wallet_node
        held = locked[0].amount_sats * 1000
        assert run.sim.balance_msat(node) == WALLET_BALANCE_SAT * 1000 - held
    return winner


@pytest.mark.parametrize("base", BASES)
def test_ten_racers_pay_at_once_and_exactly_one_wins(base: str, session_relay, lnsim_factory,
                                                    tmp_path: Path) -> None:
    racers = [f"R{n}" for n in range(1, 11)]
    lnsim = lnsim_factory(wallets=len(racers))
    run = ActorRun(scenario("05_n_racers_10"), StackParts(session_relay.url, lnsim, tmp_path,
                                                          make_settings), base, RequestPath.WIRE)
    try:
        run.start().run()
        check_one_winner(run, racers, own_wallets=True)
        assert run.replay_problems() == []
    finally:
        run.close()


def test_two_racers_pay_at_once_nothing_is_settled(session_relay, lnsim_factory,
                                                   tmp_path: Path) -> None:
    """BONDS.md §6.4 on the wire: both HTLCs held before either ACCEPTED is handled."""
    lnsim = lnsim_factory(wallets=2)
    run = ActorRun(scenario("04_simultaneous_acceptance"),
                   StackParts(session_relay.url, lnsim, tmp_path, make_settings))
    try:
        run.start().run()
        check_one_winner(run, ["T1", "T2"], own_wallets=True)
        for bond in run.state().bonds:
            assert run.htlc_state(bond.hash) != "settled"
    finally:
        run.close()


def test_a_retake_resent_with_its_trade_index_gets_the_same_invoice(
        session_relay, lnsim_factory, tmp_path: Path) -> None:
    """BONDS.md §4.1 step 3 / §4.6: a taker who did not see its invoice sends the same take
    again (same trade key, same trade index) and gets the same bolt11, with no new bond."""
    lnsim = lnsim_factory(wallets=2)
    once = Scenario(name="retake", path=tmp_path / "retake.toml", title="retake",
                    order=scenario("06_idempotent_retake").order,
                    steps=scenario("06_idempotent_retake").steps[:1])
    run = ActorRun(once, StackParts(session_relay.url, lnsim, tmp_path, make_settings))
    try:
        run.start().run()
        taker = run.party("T1")
        taker.next_trade_index -= 1  # the client re-sends: same trade index as before
        run.take("T1")
        received = taker.received()
        assert [m.action for m in received] == [Action.PAY_BOND_INVOICE] * 2, received
        assert received[0].payload.invoice == received[1].payload.invoice
        assert len([b for b in run.state().bonds if b.role == BondRole.TAKER]) == 1
    finally:
        run.close()


@pytest.mark.slow
def test_fifty_racers_on_actors(session_relay, lnsim_factory, tmp_path: Path) -> None:
    """05b (N = 50) is tagged pure-only for time; here it runs on the actor system anyway."""
    racers = [f"R{n}" for n in range(1, 51)]
    lnsim = lnsim_factory(wallets=10)
    run = ActorRun(scenario("05b_n_racers_50"), StackParts(session_relay.url, lnsim, tmp_path,
                                                           make_settings))
    try:
        run.start().run()
        check_one_winner(run, racers, own_wallets=False)
    finally:
        run.close()
