"""A bonded trade with racing takers, the daemon killed -9 and restarted on the way (BONDS.md I11).

The end state must be the one an uninterrupted run reaches: one winner whose
trade is `success`, every bond released and its HTLC cancelled (never settled,
I2/I3), every loser refunded (balance unchanged) and told `canceled`, no HTLC
left held, no outbox effect left undone, every party got every message of the
uninterrupted run (tests/faults/data/bond_race.json).

`canceled` to a loser: the daemon *decides* it exactly once (one outbox
effect per loser, checked in the database: the bond is `released` in the same
transaction, so a replayed ACCEPTED or a restart never decides it again); it is
*delivered* at least once: a crash after the relay stored the message and
before the outbox marked it done makes the restart send the same effect again,
so a client may see an identical copy. Exactly-once delivery would need an
acknowledgement from the client, which the protocol does not have.

The random multi-kill soak (seeded, several runs) is marked slow.
"""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

import pytest

from adapters.nostr.protocol.enums import Action

from .bond_race import BondedRace
from .conftest import FaultStack, wait_until
from .trade_kit import AMOUNT, load_data, message_problems, party_fee, payment_hash_of, received_for

DATA = load_data("bond_race.json")
EXPECTED = DATA["expected_messages"]
RESEND_TOLERATED = frozenset(DATA["tolerated_after_resend"])

pytestmark = pytest.mark.multiproc


def bonded_stack(factory: Any, takers: int) -> FaultStack:
    return factory(wallets=takers + 1, **DATA["settings"])


def canceled_effects_to(stack: FaultStack, pubkey: str) -> int:
    """`canceled` messages the daemon decided to send to `pubkey` (outbox rows, done or not)."""
    count = 0
    for row in stack.query("SELECT payload FROM outbox WHERE effect = 'SendMessage'"):
        effect = json.loads(row["payload"])
        action = effect.get("message", {}).get("action", {}).get("v")
        if effect.get("recipient") == pubkey and action == Action.CANCELED.value:
            count += 1
    return count


def check_race_end(stack: FaultStack, race: BondedRace, before: list[int]) -> None:
    winner = race.winner
    assert winner is not None and winner.key is not None
    wait_until(lambda: stack.order_status(race.order_id) == "success", what="order success")
    wait_until(lambda: not stack.undone_effects(), what="outbox drained")
    bonds = stack.bonds(race.order_id)
    assert len(bonds) == len(race.takers)
    assert {b["state"] for b in bonds} == {"released"}
    assert {b["pubkey"] for b in bonds} == {t.key.pair.public_hex for t in race.takers if t.key}
    wait_until(lambda: all(stack.invoice_state(payment_hash_of(t.bond_invoice)) == "CANCELED"
                           for t in race.takers), what="every bond HTLC cancelled")
    assert stack.invoice_state(payment_hash_of(race.escrow_invoice)) == "SETTLED"
    assert [p["status"] for p in stack.payments_to(payment_hash_of(race.payout_invoice))] == [
        "SUCCEEDED"]
    assert stack.held_invoices() == []
    fee = party_fee(AMOUNT)
    assert stack.balance_sat(0) == before[0] - (AMOUNT + fee)
    assert stack.balance_sat(winner.wallet_index) == before[winner.wallet_index] + AMOUNT - fee
    for loser in race.losers:
        assert stack.balance_sat(loser.wallet_index) == before[loser.wallet_index]
        assert loser.key is not None
        assert canceled_effects_to(stack, loser.key.pair.public_hex) == 1
    assert canceled_effects_to(stack, winner.key.pair.public_hex) == 0
    check_messages(race)


def check_messages(race: BondedRace) -> None:
    parties: list[tuple[str, Any, Any, list[str], int]] = [
        ("seller", race.seller, race.seller_key, EXPECTED["seller"], race.seller_resent)]
    for taker in race.takers:
        role = "winner" if taker is race.winner else "loser"
        parties.append((taker.name, taker.client, taker.key, EXPECTED[role], taker.resent))

    def problems() -> dict[str, list[str]]:
        return {name: message_problems(received_for(client, key), expected,
                                       RESEND_TOLERATED if resent else frozenset())
                for name, client, key, expected, resent in parties}

    try:
        wait_until(lambda: not any(problems().values()), what="every message delivered")
    except TimeoutError:
        pass  # the assertion names what is wrong
    assert problems() == {name: [] for name, *_ in parties}


@pytest.mark.slow  # the kill test below checks the same end state; this pins it alone
def test_bonded_race_uninterrupted(fault_stack_factory: Any) -> None:
    """The reference: two takers race, one wins, the other is refunded and told."""
    stack = bonded_stack(fault_stack_factory, 2)
    before = [stack.balance_sat(i) for i in range(3)]
    race = BondedRace.listed(stack, 2)
    race.run()
    check_race_end(stack, race, before)
    assert race.seller_resent == 0 and all(t.resent == 0 for t in race.takers)


def test_bonds_paid_while_the_daemon_is_dead(fault_stack_factory: Any) -> None:
    """Both bonds are accepted by LND while the daemon is down: on restart the re-watched
    invoices deliver both ACCEPTED to the order actor, the first one locks, the other is
    cancelled and its taker told; then the daemon dies again just after the escrow is paid."""
    stack = bonded_stack(fault_stack_factory, 2)
    before = [stack.balance_sat(i) for i in range(3)]

    def fault(step: str) -> None:
        if step == "pay_bonds":
            stack.daemon.kill()
        elif step == "pay_bonds:paid":
            wait_until(lambda: all(stack.invoice_state(payment_hash_of(t.bond_invoice))
                                   == "ACCEPTED" for t in race.takers), what="bonds held")
            stack.daemon.start()
        elif step == "pay_escrow:paid":
            stack.daemon.kill()
            wait_until(lambda: stack.invoice_state(payment_hash_of(race.escrow_invoice))
                       == "ACCEPTED", what="escrow held")
            stack.daemon.start()

    race = BondedRace.listed(stack, 2, fault)
    race.run()
    check_race_end(stack, race, before)
    assert stack.daemon.starts == 3


class RandomKiller:
    """At each step, maybe (seeded) kill -9 the daemon after a random offset, then restart it."""

    def __init__(self, stack: FaultStack, seed: int, probability: float, max_offset: float
                 ) -> None:
        self.stack = stack
        self.random = random.Random(seed)
        self.probability = probability
        self.max_offset = max_offset
        self.kills: list[str] = []
        self._thread: threading.Thread | None = None
        self._errors: list[BaseException] = []

    def __call__(self, step: str) -> None:
        self.join()
        if self.random.random() >= self.probability:
            return
        offset = self.random.uniform(0.0, self.max_offset)
        self.kills.append(f"{step}+{offset:.2f}s")
        self._thread = threading.Thread(target=self._kill_later, args=(offset,), daemon=True)
        self._thread.start()

    def _kill_later(self, offset: float) -> None:
        try:
            time.sleep(offset)  # the random point of the step where the daemon dies
            self.stack.daemon.kill()
            self.stack.daemon.start()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test thread
            self._errors.append(error)

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join(60.0)
            assert not self._thread.is_alive(), "a kill/restart hung"
            self._thread = None
        if self._errors:
            raise self._errors[0]


SOAK = DATA["random_kills"]


@pytest.mark.slow
@pytest.mark.parametrize(("seed", "takers"), list(zip(SOAK["seeds"], SOAK["takers"], strict=True)))
def test_bonded_race_random_kills(fault_stack_factory: Any, seed: int, takers: int) -> None:
    stack = bonded_stack(fault_stack_factory, takers)
    before = [stack.balance_sat(i) for i in range(takers + 1)]
    killer = RandomKiller(stack, seed, SOAK["kill_probability"], SOAK["max_offset_seconds"])
    race = BondedRace.listed(stack, takers, killer)
    try:
        race.run()
    finally:
        killer.join()
    check_race_end(stack, race, before)
    assert stack.daemon.starts == 1 + len(killer.kills), killer.kills


