"""Runs scripted orders through the real decision path on whatever database is bound.

Each step becomes an event, the order's state is loaded from storage
(`order_store.load_state`, as a re-activated order actor does), `decide`
decides with entropy derived from the run's name and step (so every backend
sees the same ids, hashes and preimages), and `order_store.commit_decision`
writes it in one transaction. Scripts live in data/decision_runs.json.

Also a command: `python -m tests.storage.decision_driver URL RUN_INDEX COPIES TAG` runs
COPIES copies of one run on their own orders (their entropy salted with TAG),
for the tests that commit from several processes at once. It prints nothing
and exits non-zero on any error, so an error can never pass unnoticed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bolt11
from bolt11 import Bolt11, MilliSatoshi
from bolt11.models.tags import TagChar, Tags

from actors import order_store
from actors.order_logic.deadlines import deadlines_of
from actors.order_logic.decide import decide
from actors.order_logic.model import (
    AddHoldInvoice,
    BondRole,
    ClientRequest,
    DeadlineReached,
    DecisionContext,
    HoldInvoiceCreated,
    InvoiceAccepted,
    OrderEvent,
    OrderState,
    PaymentSucceeded,
    PriceSnapshot,
)
from actors.reputation import reputations_for
from adapters.nostr.protocol.enums import Action, Kind
from adapters.nostr.protocol.payloads import (
    Amount,
    Message,
    OrderPayload,
    PaymentRequest,
    RatingUser,
    SmallOrder,
)
from config import parse_settings

RUNS_PATH = Path(__file__).resolve().parent / "data" / "decision_runs.json"
NODE_SECRET_HEX = "67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa"
INVOICE_SIGNING_KEY = "01" * 32
# the id a new-order request is routed under before the logic names the order
REQUEST_ORDER_ID = "99999999-9999-4999-8999-999999999999"
_BASE_SETTINGS: dict[str, Any] = {
    "mostro": {"fee": 0.006, "expiration_seconds": 900},
    "lightning": {
        "lnd_cert_file": "/nonexistent/tls.cert",
        "lnd_macaroon_file": "/nonexistent/admin.macaroon",
        "lnd_grpc_host": "127.0.0.1:10009",
    },
    "nostr": {"relays": ["ws://127.0.0.1:7000"]},
    "price": {"fixed": {"USD": 100000.0}},
}


def load_runs() -> dict[str, Any]:
    return json.loads(RUNS_PATH.read_text())


def settings_for(run: dict[str, Any]) -> Any:
    raw = {section: dict(values) for section, values in _BASE_SETTINGS.items()}
    for section, values in run.get("settings", {}).items():
        raw.setdefault(section, {}).update(values)
    return parse_settings(raw, env={"MOSTRO_NSEC_PRIVKEY": NODE_SECRET_HEX})


def payout_invoice(amount_sat: int, now: int, label: str) -> str:
    """A signed regtest BOLT11 the logic accepts as the buyer's payout invoice."""
    tags = Tags()
    tags.add(TagChar.payment_hash, hashlib.sha256(f"payout {label}".encode()).hexdigest())
    tags.add(TagChar.payment_secret, "11" * 32)
    tags.add(TagChar.description, "storage test payout")
    tags.add(TagChar.expire_time, 7200)
    tags.add(TagChar.min_final_cltv_expiry, 40)
    return bolt11.encode(
        Bolt11(currency="bcrt", date=now, tags=tags, amount_msat=MilliSatoshi(amount_sat * 1000)),
        private_key=INVOICE_SIGNING_KEY,
    )


@dataclass
class RunResult:
    order_id: str
    statuses: list[str]


class DecisionRun:
    """One scripted order, decided and committed step by step on the bound database."""

    def __init__(self, runs: dict[str, Any], index: int, salt: str = "") -> None:
        self.doc = runs
        self.run = runs["runs"][index]
        self.settings = settings_for(self.run)
        self.salt = f"{self.run['name']}|{salt}"
        self.order_id = REQUEST_ORDER_ID
        self.decisions = 0

    def _party(self, name: str) -> dict[str, str]:
        return self.doc["parties"][name]

    def _commit(self, event: OrderEvent, now: int) -> OrderState | None:
        before = order_store.load_state(self.order_id)
        identities = [event.identity] if isinstance(event, ClientRequest) else []
        self.decisions += 1
        ctx = DecisionContext(
            settings=self.settings,
            now=now,
            entropy=hashlib.sha256(f"{self.salt}|{self.decisions}".encode()).digest(),
            network="regtest",
            prices=PriceSnapshot(prices=dict(self.settings.price.fixed), taken_at=now),
            reputations=reputations_for(before, identities, now),
        )
        decision = decide(before, event, ctx)
        if decision.state == before and not decision.effects and not decision.created_orders:
            return before
        if before is None and decision.state is not None:
            self.order_id = decision.state.order.id
        order_store.commit_decision(self.order_id, before, event, ctx, decision)
        # LND answers every hold invoice request at once (as the Lightning adapter would).
        for effect in decision.effects:
            if isinstance(effect, AddHoldInvoice):
                created = HoldInvoiceCreated(effect.hash, f"lnbcrt{effect.amount_sat}-{effect.hash[:16]}",
                                             request_id=effect.request_id)
                self._commit(created, now)
        return order_store.load_state(self.order_id)

    def _request(self, step: dict[str, Any], state: OrderState | None, now: int) -> ClientRequest:
        party = self._party(step["from"])
        action = Action(step["request"])
        payload: Any = None
        if action == Action.NEW_ORDER:
            order = dict(self.run["order"])
            payload = OrderPayload(SmallOrder(**{**order, "kind": Kind(order["kind"])}))
        elif action == Action.ADD_INVOICE:
            payload = PaymentRequest(None, payout_invoice(step["invoice_sats"], now, self.salt))
        elif "fiat_amount" in step:
            payload = Amount(step["fiat_amount"])
        elif action == Action.RATE_USER:
            payload = RatingUser(step["rating"])
        message = Message(action=action, request_id=int(step["at"]) + 1,
                          trade_index=step.get("trade_index"),
                          id=state.order.id if state else None, payload=payload)
        return ClientRequest(message=message, sender=party["trade"], identity=party["identity"])

    def _event(self, step: dict[str, Any], state: OrderState | None, now: int) -> OrderEvent:
        if "request" in step:
            return self._request(step, state, now)
        assert state is not None, step
        order = state.order
        if "deadline" in step:
            due = next(d for d in deadlines_of(state, self.settings) if d.kind.value == step["deadline"])
            return DeadlineReached(due)
        if "pay_bond" in step:
            trade = self._party(step["pay_bond"])["trade"]
            bond = [b for b in state.bonds if b.pubkey == trade and b.role == BondRole.TAKER][-1]
            return InvoiceAccepted(bond.hash, bond.amount_sats)
        if step.get("pay_escrow"):
            return InvoiceAccepted(order.hash, order.amount + order.fee)
        if step.get("payout_succeeds"):
            return PaymentSucceeded(order.payout_payment_hash, fee_sat=3)
        raise ValueError(f"unknown step {step}")

    def play(self) -> RunResult:
        statuses: list[str] = []
        for step in self.run["steps"]:
            now = self.doc["start"] + step["at"]
            state = order_store.load_state(self.order_id)
            after = self._commit(self._event(step, state, now), now)
            status = after.order.status.value if after else "(none)"
            if status != step["expect"]:
                raise AssertionError(f"{self.run['name']}: {step} left the order {status}")
            statuses.append(status)
        return RunResult(self.order_id, statuses)


def main(argv: list[str]) -> int:
    import storage

    url, run_index, copies, tag = argv[0], int(argv[1]), int(argv[2]), argv[3]
    database = storage.open_database(url)
    runs = load_runs()
    for copy in range(copies):
        DecisionRun(runs, run_index, salt=f"{tag}-{copy}").play()
    database.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
