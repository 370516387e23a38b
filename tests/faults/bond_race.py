"""A bonded sell order with several racing takers, driven so the daemon may die at any step.

``BondedRace`` lists a sell order (seller on wallet 0) and lets takers on
wallets 1..n take it, pay their bonds at the same moment, then drives the
winner's trade to `success` (add-invoice, escrow, fiat-sent, release). Before
and during every step it calls ``fault(step_name)``, where a test kills and
restarts the daemon. Client requests a crash may have swallowed are sent again
when their answer does not come (a client would do the same); each such
re-send is recorded, because the daemon may answer a late duplicate with
`cant-do` (or, for a take, with the same bond invoice again), which the
message check then tolerates for that party only.

Only the public protocol, the wallets and the simulator's ledger are used.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from adapters.lnd.sim.wallet import Payment, Wallet
from adapters.nostr.client import MostroClient, TradeKey
from adapters.nostr.protocol.enums import Action
from adapters.nostr.protocol.payloads import Payload, PaymentRequest

from .conftest import STEP_TIMEOUT, FaultStack, wait_until
from .trade_kit import AMOUNT, list_order, party_fee, payment_hash_of, received_for, sell_order

ANSWER_TIMEOUT = 6.0  # how long a client waits for an answer before sending its request again
NO_FAULT: Callable[[str], None] = lambda step: None  # noqa: E731


@dataclass
class Taker:
    name: str
    client: MostroClient
    wallet: Wallet
    wallet_index: int
    key: TradeKey | None = None
    bond_invoice: str = ""
    bond_payment: Payment | None = None
    resent: int = 0


@dataclass
class BondedRace:
    stack: FaultStack
    seller: MostroClient
    seller_wallet: Wallet
    seller_key: TradeKey
    order_id: str
    takers: list[Taker]
    fault: Callable[[str], None] = NO_FAULT
    seller_resent: int = 0
    winner: Taker | None = None
    escrow_invoice: str = ""
    payout_invoice: str = ""
    steps_done: list[str] = field(default_factory=list)

    @classmethod
    def listed(cls, stack: FaultStack, takers: int,
               fault: Callable[[str], None] = NO_FAULT) -> BondedRace:
        seller = stack.client("seller")
        key, order_id = list_order(seller, sell_order())
        people = [Taker(f"taker{i}", stack.client(f"taker{i}"), stack.wallet(i), i)
                  for i in range(1, takers + 1)]
        return cls(stack, seller, stack.wallet(0), key, order_id, people, fault)

    # ------------------------------------------------------------ requests that survive a crash
    def _request(self, client: MostroClient, key: TradeKey, action: Action, payload: Payload | None,
                 answered: Callable[[], object], *, first: bool = False) -> int:
        """Send until `answered()` holds; returns how many times it was sent again."""
        resent = -1
        deadline = time.monotonic() + 4 * STEP_TIMEOUT
        while True:
            resent += 1
            client.send(key, action, self.order_id, payload, with_trade_index=first)
            try:
                wait_until(answered, ANSWER_TIMEOUT, f"answer to {action.value}")
                return resent
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise

    def _step(self, name: str, run: Callable[[], None]) -> None:
        self.fault(name)
        run()
        self.steps_done.append(name)

    # ------------------------------------------------------------ the race
    def run(self) -> None:
        self._step("take", self.take_all)
        self._step("pay_bonds", self.pay_bonds)
        self._step("race_outcome", self.wait_outcome)
        self._step("add_invoice", self.add_invoice)
        self._step("pay_escrow", self.pay_escrow)
        self._step("fiat_sent", self.fiat_sent)
        self._step("release", self.release)
        self._step("success", self.wait_success)

    def take_all(self) -> None:
        for taker in self.takers:
            taker.key = taker.client.new_trade_key()
        for taker in self.takers:
            assert taker.key is not None

            def has_bond_invoice(t: Taker = taker) -> bool:
                return bool(self._bond_invoice(t))

            taker.resent += self._request(taker.client, taker.key, Action.TAKE_SELL, None,
                                          has_bond_invoice, first=True)
            taker.bond_invoice = self._bond_invoice(taker)

    def _bond_invoice(self, taker: Taker) -> str:
        assert taker.key is not None
        for received in received_for(taker.client, taker.key):
            payload = received.message.payload
            if received.message.action == Action.PAY_BOND_INVOICE and isinstance(
                    payload, PaymentRequest):
                return payload.invoice
        return ""

    def pay_bonds(self) -> None:
        """Every taker pays at the same moment (a barrier), as in a real race."""
        start = threading.Barrier(len(self.takers))

        def pay(taker: Taker) -> None:
            start.wait()
            taker.bond_payment = taker.wallet.pay(taker.bond_invoice)

        threads = [threading.Thread(target=pay, args=(t,)) for t in self.takers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.fault("pay_bonds:paid")
        # all bond HTLCs reached the node (held) or were already refused
        wait_until(lambda: all(self.stack.invoice_state(payment_hash_of(t.bond_invoice))
                               in ("ACCEPTED", "CANCELED") for t in self.takers),
                   what="every bond HTLC at the node")

    def wait_outcome(self) -> None:
        def outcome() -> Taker | None:
            asked = [t for t in self.takers if self._got(t, Action.ADD_INVOICE)]
            cancelled = [t for t in self.takers if self._got(t, Action.CANCELED)]
            if len(asked) == 1 and len(cancelled) == len(self.takers) - 1:
                return asked[0]
            return None

        self.winner = wait_until(outcome, 3 * STEP_TIMEOUT, "one winner, every other taker told")

    def _got(self, taker: Taker, action: Action) -> bool:
        assert taker.key is not None
        return any(r.message.action == action for r in received_for(taker.client, taker.key))

    def add_invoice(self) -> None:
        winner = self.winner
        assert winner is not None and winner.key is not None
        self.payout_invoice = winner.wallet.invoice(AMOUNT - party_fee(AMOUNT), "payout")

        def seller_asked_to_pay() -> bool:
            return bool(self._escrow_request())

        winner.resent += self._request(winner.client, winner.key, Action.ADD_INVOICE,
                                       PaymentRequest(None, self.payout_invoice, None),
                                       seller_asked_to_pay)
        self.escrow_invoice = self._escrow_request()

    def _escrow_request(self) -> str:
        for received in received_for(self.seller, self.seller_key):
            payload = received.message.payload
            if received.message.action == Action.PAY_INVOICE and isinstance(
                    payload, PaymentRequest):
                return payload.invoice
        return ""

    def pay_escrow(self) -> None:
        winner = self.winner
        assert winner is not None and winner.key is not None
        self.seller_wallet.pay(self.escrow_invoice)
        self.fault("pay_escrow:paid")
        wait_until(lambda: self._got(winner, Action.HOLD_INVOICE_PAYMENT_ACCEPTED),
                   2 * STEP_TIMEOUT, "the winner told the escrow is held")

    def fiat_sent(self) -> None:
        winner = self.winner
        assert winner is not None and winner.key is not None
        winner.resent += self._request(
            winner.client, winner.key, Action.FIAT_SENT, None,
            lambda: self._got(winner, Action.FIAT_SENT_OK))

    def release(self) -> None:
        winner = self.winner
        assert winner is not None
        self.seller_resent += self._request(
            self.seller, self.seller_key, Action.RELEASE, None,
            lambda: self.stack.invoice_state(payment_hash_of(self.escrow_invoice)) == "SETTLED")

    def wait_success(self) -> None:
        winner = self.winner
        assert winner is not None
        wait_until(lambda: self._got(winner, Action.PURCHASE_COMPLETED), 2 * STEP_TIMEOUT,
                   "purchase-completed to the winner")

    @property
    def losers(self) -> list[Taker]:
        return [t for t in self.takers if t is not self.winner]
