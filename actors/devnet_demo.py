"""`mostro-py devnet demo`: a scripted trade with two takers racing for one order.

Alice sells 50,000 sats; Bob and Carol both take the order, each gets a bond
hold invoice, and both pay at the same moment. The first bond the node's LND
reports held wins; the other taker is told `canceled` and their bond HTLC is
refunded. The winner then completes the trade (payout invoice, escrow,
fiat sent, release) and gets their bond back too. Each step is printed as it
happens; the end shows the order's status, each bond's state and every
wallet's balance.

Everything goes through the public wire protocol (``MostroClient`` on the
devnet's relay) and the wallets' own LND API (``Wallet``); the database is only
read, at the end, to show the final states. It uses a running devnet (from
`devnet.json` in the state dir) or starts its own for the run.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from adapters.lnd.protos import lightning_pb2
from adapters.lnd.sim.wallet import Payment, Wallet
from adapters.nostr.client import MostroClient, TradeKey
from adapters.nostr.protocol.enums import Action, Kind, Status, Transport
from adapters.nostr.protocol.payloads import OrderPayload, PaymentRequest, SmallOrder

from .devnet import DEFAULT_STATE_DIR, Devnet, DevnetError, DevnetLayout, devnet_running, read_info

AMOUNT_SATS = 50_000
FIAT_AMOUNT = 50
STEP_TIMEOUT = 30.0


@dataclass
class Person:
    """A demo participant: a protocol client, a wallet, and the trade key in use."""

    name: str
    client: MostroClient
    wallet: Wallet
    trade: TradeKey | None = None
    bond_payment: Payment | None = None

    def balance(self) -> int:
        reply = self.wallet.client.lightning.ChannelBalance(
            lightning_pb2.ChannelBalanceRequest(), timeout=10)
        return int(reply.local_balance.sat)


class Narrator:
    """Prints each step with the seconds since the demo started."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.started = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.2f}s] {text}", file=self.out, flush=True)


def _payment_request(person: Person, action: Action, order_id: str) -> PaymentRequest:
    """The next `action` message to `person` carrying a bolt11 (skips notices without one)."""
    after = 0
    while True:
        received = person.client.wait_for(action, trade=person.trade, order_id=order_id,
                                          after=after, timeout=STEP_TIMEOUT)
        if isinstance(received.message.payload, PaymentRequest):
            return received.message.payload
        after = person.client.inbox.index(received) + 1


def _race_outcome(takers: Sequence[Person], order_id: str) -> tuple[Person, Person]:
    """(winner, loser): the winner is asked for a payout invoice, the loser told `canceled`."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        asked = [p for p in takers if Action.ADD_INVOICE.value in p.client.actions(order_id)]
        cancelled = [p for p in takers if Action.CANCELED.value in p.client.actions(order_id)]
        if len(asked) == 1 and len(cancelled) == 1 and asked[0] is not cancelled[0]:
            return asked[0], cancelled[0]
        time.sleep(0.05)  # messages arrive on the clients' relay threads
    seen = {p.name: (p.client.actions(order_id), p.bond_payment and p.bond_payment.status)
            for p in takers}
    raise TimeoutError(f"the race did not settle within {STEP_TIMEOUT} s: {seen}")


def final_states(settings: Any, order_id: str, names: dict[str, str]) -> list[str]:
    """The order's status and each bond's state, read from the node's database."""
    from storage import models, open_database

    database = open_database(settings.database.url)
    try:
        order = models.Order.get_by_id(order_id)
        lines = [f"order {order_id}: status {order.status}"]
        bonds = models.Bond.select().where(models.Bond.order_id == order_id).order_by(
            models.Bond.created_at)
        for bond in bonds:
            who = names.get(bond.pubkey, bond.pubkey[:12])
            lines.append(f"bond of {who} ({bond.role}, {bond.amount_sats} sats): {bond.state}")
        return lines
    finally:
        database.close()


def run_demo(info: dict[str, Any], out: TextIO) -> int:
    """The scripted race against the devnet described by `info`; 0 when it went as expected."""
    from config import load_settings

    settings = load_settings(info["settings"])
    say = Narrator(out)
    transport = Transport(settings.mostro.transport)

    def person(name: str, wallet: dict[str, Any]) -> Person:
        client = MostroClient(name, (info["relay_url"],), info["node_pubkey"], transport).connect()
        return Person(name, client, Wallet(wallet["address"], Path(wallet["tls_cert_path"]),
                                           Path(wallet["macaroon_path"])))

    alice, bob, carol = (person(n, w) for n, w in zip(("alice", "bob", "carol"),
                                                       info["wallets"], strict=False))
    people = (alice, bob, carol)
    try:
        before = {p.name: p.balance() for p in people}
        say("wallets: " + ", ".join(f"{name} {sats:,} sats" for name, sats in before.items()))

        alice.trade = alice.client.new_trade_key()
        alice.client.send(alice.trade, Action.NEW_ORDER, payload=OrderPayload(SmallOrder(
            amount=AMOUNT_SATS, fiat_code="USD", fiat_amount=FIAT_AMOUNT, payment_method="SEPA",
            premium=0, kind=Kind.SELL, status=Status.PENDING)), with_trade_index=True)
        created = alice.client.wait_for(Action.NEW_ORDER, trade=alice.trade,
                                        timeout=STEP_TIMEOUT).message
        order_id = created.id
        assert order_id is not None
        say(f"alice published a sell order: {AMOUNT_SATS:,} sats for {FIAT_AMOUNT} USD "
            f"(order {order_id})")

        takers = (bob, carol)
        for taker in takers:
            taker.trade = taker.client.new_trade_key()
            taker.client.send(taker.trade, Action.TAKE_SELL, order_id, with_trade_index=True)
            say(f"{taker.name} took the order")
        bonds = {}
        for taker in takers:
            bonds[taker.name] = _payment_request(taker, Action.PAY_BOND_INVOICE, order_id)
            bond_sats = bonds[taker.name].order.amount if bonds[taker.name].order else "?"
            say(f"{taker.name} got a bond invoice of {bond_sats} sats (the order stays pending)")

        start = threading.Barrier(len(takers))

        def pay_bond(taker: Person) -> None:
            start.wait()
            taker.bond_payment = taker.wallet.pay(bonds[taker.name].invoice)

        threads = [threading.Thread(target=pay_bond, args=(t,)) for t in takers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        say("bob and carol paid their bonds at the same moment")

        winner, loser = _race_outcome(takers, order_id)
        say(f"{winner.name} WON the race: their bond is locked; asked for a payout invoice")
        say(f"{loser.name} was CANCELLED: told `canceled`, their bond is being refunded")
        assert loser.bond_payment is not None and winner.bond_payment is not None
        refund = loser.bond_payment.wait_for("FAILED", "SUCCEEDED", timeout=STEP_TIMEOUT)
        say(f"{loser.name}'s bond payment ended {refund}: "
            + ("refunded, never settled" if refund == "FAILED" else "SETTLED (unexpected)"))

        ask = _payment_request_or_order(winner, order_id)
        payout = winner.wallet.invoice(ask, "demo payout")
        winner.client.send(winner.trade, Action.ADD_INVOICE, order_id,
                           PaymentRequest(None, payout, None))
        say(f"{winner.name} sent a payout invoice for {ask:,} sats")

        escrow_request = _payment_request(alice, Action.PAY_INVOICE, order_id)
        escrow = alice.wallet.pay(escrow_request.invoice)
        winner.client.wait_for(Action.HOLD_INVOICE_PAYMENT_ACCEPTED, trade=winner.trade,
                               timeout=STEP_TIMEOUT)
        say(f"alice paid the escrow hold invoice ({escrow.status}: held by the node)")

        winner.client.send(winner.trade, Action.FIAT_SENT, order_id)
        alice.client.wait_for(Action.FIAT_SENT_OK, trade=alice.trade, timeout=STEP_TIMEOUT)
        say(f"{winner.name} says the fiat was sent")

        alice.client.send(alice.trade, Action.RELEASE, order_id)
        winner.client.wait_for(Action.PURCHASE_COMPLETED, trade=winner.trade, timeout=STEP_TIMEOUT)
        escrow_status = escrow.wait_for("SUCCEEDED", "FAILED", timeout=STEP_TIMEOUT)
        say(f"alice released; {winner.name} was paid (escrow {escrow_status})")
        winner_bond = winner.bond_payment.wait_for("FAILED", "SUCCEEDED", timeout=STEP_TIMEOUT)
        say(f"{winner.name}'s bond payment ended {winner_bond}: "
            + ("refunded" if winner_bond == "FAILED" else "SETTLED (unexpected)"))

        names = {p.trade.pair.public_hex: p.name for p in people if p.trade is not None}
        print("\n== final states ==", file=out)
        for line in final_states(settings, order_id, names):
            print(line, file=out)
        after = {p.name: p.balance() for p in people}
        for p in people:
            change = after[p.name] - before[p.name]
            print(f"wallet {p.name}: {before[p.name]:,} -> {after[p.name]:,} sats ({change:+,})",
                  file=out)
        print(f"winner: {winner.name}", file=out)
        print(f"loser: {loser.name} (refunded: {'yes' if refund == 'FAILED' else 'no'}, "
              f"balance change {after[loser.name] - before[loser.name]:+,} sats)", file=out)
        ok = (refund == "FAILED" and winner_bond == "FAILED" and escrow_status == "SUCCEEDED"
              and after[loser.name] == before[loser.name])
        print("demo " + ("OK" if ok else "FAILED"), file=out, flush=True)
        return 0 if ok else 1
    finally:
        for p in people:
            p.client.close()
            p.wallet.close()


def _payment_request_or_order(person: Person, order_id: str) -> int:
    """The sats amount the winner's payout invoice must carry (from the `add-invoice` ask)."""
    received = person.client.wait_for(Action.ADD_INVOICE, trade=person.trade, order_id=order_id,
                                      timeout=STEP_TIMEOUT)
    payload = received.message.payload
    order = getattr(payload, "order", None)
    if order is None or not order.amount:
        raise ValueError(f"add-invoice without an amount: {payload!r}")
    return int(order.amount)


def _bond_rows(info: dict[str, Any]) -> list[str]:
    """Orders, bonds (with the LND state last seen) and undone effects, for a failed run."""
    from config import load_settings
    from storage import models, open_database

    database = open_database(load_settings(info["settings"]).database.url)
    try:
        lines = [f"order {o.id[:8]}: status {o.status}" for o in models.Order.select()]
        lines += [f"bond {b.id[:8]} order {b.order_id[:8]}: state {b.state}, "
                  f"invoice {b.invoice_state}" for b in models.Bond.select()]
        lines += [f"undone effect {e.id} order {(e.order_id or '')[:8]}: {e.target} "
                  f"attempts {e.attempts} {e.payload[:120]}"
                  for e in models.OutboxEffect.select().where(models.OutboxEffect.done_at.is_null())]
        return lines
    finally:
        database.close()


def demo_main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """`mostro-py devnet demo [--state-dir D]`: run the race on a running devnet (or a new one)."""
    parser = argparse.ArgumentParser(prog="mostro-py devnet demo",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    args = parser.parse_args(argv)
    layout = DevnetLayout(args.state_dir.resolve())
    info = read_info(layout)
    own: Devnet | None = None
    if not devnet_running(info):
        print(f"no devnet running on {layout.state_dir}; starting one for the demo ...",
              file=out, flush=True)
        own = Devnet(layout.state_dir)
        try:
            info = own.start()
        except DevnetError as error:
            print(f"mostro-py devnet demo: {error}", file=sys.stderr)
            return 1
    assert info is not None
    try:
        return run_demo(info, out)
    except (TimeoutError, ValueError, AssertionError) as error:
        print(f"demo FAILED: {error}", file=out, flush=True)
        for line in _bond_rows(info):
            print(line, file=out, flush=True)
        return 1
    finally:
        if own is not None:
            own.stop()
