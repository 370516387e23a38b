"""Is a buyer payout invoice acceptable? (ORDER_FLOW.md §6.1, §6.2.)

Decodes BOLT11 with the ``bolt11`` package and applies the daemon's rules:
network, final CLTV delta, expiry, exact amount, minimum amount, remaining
validity window. Pure: ``now`` and the node network come from the caller;
this module never looks at the wall clock and never talks to LND or LNURL.

Divergence (ours, written down on purpose): a Lightning address
(``user@domain``) or an ``lnurl…`` string is accepted on **syntax only**.
The Rust daemon also checks that the LNURL-pay endpoint answers; that is
I/O, so it belongs to the payment adapter, which resolves the address when
paying (a failure there counts as a failed payout attempt, §6.4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import bolt11

from adapters.nostr.protocol.enums import CantDoReason

# LND network name -> BOLT11 currency prefix; an unknown network skips the check (Rust does too)
NETWORK_PREFIX: dict[str, str] = {
    "mainnet": "bc",
    "bitcoin": "bc",
    "testnet": "tb",
    "testnet3": "tb",
    "testnet4": "tb",
    "signet": "tbs",
    "regtest": "bcrt",
    "simnet": "sb",
}

_LIGHTNING_ADDRESS = re.compile(r"^[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


def is_lightning_address(text: str) -> bool:
    """``user@domain`` or a bech32 ``lnurl…`` string (checked on syntax only)."""
    return bool(_LIGHTNING_ADDRESS.match(text)) or text.lower().startswith("lnurl")


@dataclass(frozen=True)
class DecodedInvoice:
    """What the rules need from a BOLT11 invoice."""

    currency: str
    amount_sat: int | None
    timestamp: int
    expiry: int
    min_final_cltv_expiry: int
    payment_hash: str


def decode_invoice(text: str) -> DecodedInvoice | None:
    """Decode a BOLT11 string; None when it is not one (any decoder failure)."""
    try:
        decoded = bolt11.decode(text)
        amount = decoded.amount_msat
        return DecodedInvoice(
            currency=decoded.currency,
            amount_sat=int(amount) // 1000 if amount else None,
            timestamp=decoded.date,
            expiry=decoded.expiry,
            min_final_cltv_expiry=decoded.min_final_cltv_expiry,
            payment_hash=decoded.payment_hash,
        )
    except Exception:  # noqa: BLE001 - the decoder raises many types; all mean "not an invoice"
        return None


def check_invoice_payable(decoded: DecodedInvoice, settings, now: int, network: str) -> bool:
    """The rules shared by intake and payout: network, final CLTV, not expired."""
    expected = NETWORK_PREFIX.get(network)
    if expected is not None and decoded.currency != expected:
        return False
    if decoded.min_final_cltv_expiry > settings.lightning.max_final_cltv_expiry_delta:
        return False
    return now <= decoded.timestamp + decoded.expiry


def invoice_refusal(
    invoice: str, *, amount: int, fee: int, settings, now: int, network: str
) -> CantDoReason | None:
    """None if ``invoice`` may receive the payout ``amount − fee``; else ``invalid_invoice``."""
    if is_lightning_address(invoice):
        return None
    decoded = decode_invoice(invoice)
    if decoded is None or not check_invoice_payable(decoded, settings, now, network):
        return CantDoReason.INVALID_INVOICE
    if decoded.amount_sat is not None:
        if decoded.amount_sat != amount - fee:
            return CantDoReason.INVALID_INVOICE
        if decoded.amount_sat < settings.mostro.min_payment_amount:
            return CantDoReason.INVALID_INVOICE
    if decoded.timestamp + decoded.expiry < now + settings.lightning.invoice_expiration_window:
        return CantDoReason.INVALID_INVOICE
    return None
