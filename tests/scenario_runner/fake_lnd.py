"""The smallest LND the pure runner needs: hold invoices by hash, payments, cancels, faults.

It answers effects the way LND's RPCs and invoice subscriptions would, as
events for the order's mailbox, and keeps a sequence number per state change
so a restart can report changes in the order LND made them. Faults: while
``cancel_fails`` a cancel is refused (the caller keeps it in the outbox);
while ``slow`` hold invoices are not created yet; while
``refuses_invoices`` AddHoldInvoice fails. No sockets, no threads.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from actors.order_logic.model import (
    AddHoldInvoice,
    HoldInvoiceCreated,
    HoldInvoiceCreateFailed,
    InvoiceAccepted,
    InvoiceCanceled,
    InvoiceSettled,
)

BOND_MEMO_PREFIX = "mostro bond"


@dataclass
class FakeInvoice:
    hash: str
    amount_sat: int
    bolt11: str
    is_bond: bool
    state: str = "open"  # open | accepted | settled | canceled
    changed_seq: int = 0


def _created_event(effect: AddHoldInvoice, bolt11: str) -> HoldInvoiceCreated:
    """HoldInvoiceCreated, echoing ``request_id`` if the model carries one."""
    names = {f.name for f in fields(HoldInvoiceCreated)}
    extra = {}
    if "request_id" in names and hasattr(effect, "request_id"):
        extra["request_id"] = effect.request_id
    return HoldInvoiceCreated(effect.hash, bolt11, **extra)


class FakeLnd:
    def __init__(self) -> None:
        self.invoices: dict[str, FakeInvoice] = {}
        self.cancel_fails = False
        self.slow = False
        self.refuses_invoices = False
        self.seq = 0

    def _touch(self, invoice: FakeInvoice, state: str) -> None:
        self.seq += 1
        invoice.state = state
        invoice.changed_seq = self.seq

    def add_hold_invoice(self, effect: AddHoldInvoice) -> list[object] | None:
        """None = not done (LND slow); else the events LND's answer produces."""
        if self.slow:
            return None
        if self.refuses_invoices and effect.hash not in self.invoices:
            return [HoldInvoiceCreateFailed(effect.hash, "invoice creation refused")]
        if effect.hash in self.invoices:  # idempotent by hash (outbox re-send)
            invoice = self.invoices[effect.hash]
            return [_created_event(effect, invoice.bolt11)]
        is_bond = effect.memo.startswith(BOND_MEMO_PREFIX)
        kind = "bond" if is_bond else "escrow"
        invoice = FakeInvoice(
            effect.hash, effect.amount_sat, f"lnbcrt-{kind}-{effect.hash[:8]}", is_bond
        )
        self.invoices[effect.hash] = invoice
        self.seq += 1
        invoice.changed_seq = self.seq
        return [_created_event(effect, invoice.bolt11)]

    def pay(self, payment_hash: str) -> list[object] | None:
        """A payer pays the invoice: ACCEPTED if it is open, None if the payment fails."""
        invoice = self.invoices.get(payment_hash)
        if invoice is None or invoice.state != "open":
            return None
        self._touch(invoice, "accepted")
        return [InvoiceAccepted(payment_hash, invoice.amount_sat)]

    def cancel(self, payment_hash: str) -> list[object] | None:
        """CancelInvoice: None while the fault is on (retry later); a no-op when already dead."""
        if self.cancel_fails:
            return None
        invoice = self.invoices.get(payment_hash)
        if invoice is None or invoice.state in ("canceled", "settled"):
            return []
        self._touch(invoice, "canceled")
        return [InvoiceCanceled(payment_hash)]

    def settle(self, payment_hash: str) -> list[object]:
        invoice = self.invoices.get(payment_hash)
        if invoice is None or invoice.state != "accepted":
            return []
        self._touch(invoice, "settled")
        return [InvoiceSettled(payment_hash)]

    def expire(self, payment_hash: str) -> list[object]:
        """LND's own expiry of an unpaid invoice."""
        invoice = self.invoices.get(payment_hash)
        if invoice is None or invoice.state != "open":
            return []
        self._touch(invoice, "canceled")
        return [InvoiceCanceled(payment_hash)]

    def subscription_updates(self, hashes: list[str]) -> list[object]:
        """What re-subscribing reports: each invoice's current state, in LND's change order."""
        known = sorted(
            (self.invoices[h] for h in hashes if h in self.invoices), key=lambda i: i.changed_seq
        )
        events: list[object] = []
        for invoice in known:
            if invoice.state == "accepted":
                events.append(InvoiceAccepted(invoice.hash, invoice.amount_sat))
            elif invoice.state == "canceled":
                events.append(InvoiceCanceled(invoice.hash))
            elif invoice.state == "settled":
                events.append(InvoiceSettled(invoice.hash))
        return events

    def state_of(self, payment_hash: str) -> str:
        invoice = self.invoices.get(payment_hash)
        return "none" if invoice is None else invoice.state
