"""BOLT11 payment requests for the simulator: encode one signed by a node key,
decode any (ours or another node's) into plain values.

Uses the `bolt11` package, so the strings are real BOLT11 that any wallet or
library decodes. Must not know about invoices' states or the gRPC layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import bolt11
from bolt11 import Feature, Features, FeatureState, MilliSatoshi, TagChar, Tags

# network name (as LND's GetInfo reports it) -> BOLT11 currency prefix
CURRENCY_BY_NETWORK: dict[str, str] = {
    "mainnet": "bc",
    "testnet": "tb",
    "signet": "tbs",
    "regtest": "bcrt",
}

# LND advertises var_onion_optin and payment_secret as required and basic_mpp
# as optional in the invoices it creates.
_INVOICE_FEATURES = Features.from_feature_list(
    {
        Feature.var_onion_optin: FeatureState.required,
        Feature.payment_secret: FeatureState.required,
        Feature.basic_mpp: FeatureState.supported,
    }
)


@dataclass(frozen=True)
class DecodedPayReq:
    """What a payer needs from a payment request."""

    currency: str
    destination: str
    payment_hash: bytes
    amount_msat: int
    timestamp: int
    expiry: int
    description: str
    description_hash: str
    cltv_expiry: int
    payment_addr: bytes
    feature_bits: tuple[int, ...]


@dataclass(frozen=True)
class PayReqError:
    """Why a string is not a usable payment request."""

    reason: str


def encode_payreq(
    *,
    network: str,
    node_private_key_hex: str,
    payment_hash: bytes,
    payment_addr: bytes,
    amount_msat: int,
    timestamp: int,
    expiry: int,
    cltv_expiry: int,
    memo: str,
    description_hash: bytes = b"",
) -> str:
    """A BOLT11 string signed by the node's key (no payee tag: it is recovered)."""
    tags = Tags()
    tags.add(TagChar.payment_hash, payment_hash.hex())
    tags.add(TagChar.payment_secret, payment_addr.hex())
    if description_hash:
        tags.add(TagChar.description_hash, description_hash.hex())
    else:
        tags.add(TagChar.description, memo)
    tags.add(TagChar.expire_time, expiry)
    tags.add(TagChar.min_final_cltv_expiry, cltv_expiry)
    tags.add(TagChar.features, _INVOICE_FEATURES)
    invoice = bolt11.Bolt11(
        currency=CURRENCY_BY_NETWORK[network],
        date=timestamp,
        tags=tags,
        amount_msat=MilliSatoshi(amount_msat) if amount_msat else None,
    )
    return bolt11.encode(invoice, node_private_key_hex)


def decode_payreq(payment_request: str) -> DecodedPayReq | PayReqError:
    """Decodes and checks the signature; a bad string is a PayReqError."""
    try:
        invoice = bolt11.decode(payment_request.strip())
    except Exception as exc:  # bolt11 raises many unrelated exception types
        return PayReqError(f"invalid payment request: {exc.__class__.__name__} {exc}".strip())
    features = invoice.features
    feature_bits: tuple[int, ...] = ()
    if features is not None:
        bits = features.data
        # bolt11 stores the field most-significant bit first; bit i counts from the end
        feature_bits = tuple(i for i in range(len(bits)) if bits[len(bits) - 1 - i])
    return DecodedPayReq(
        currency=invoice.currency,
        destination=invoice.payee or "",
        payment_hash=bytes.fromhex(invoice.payment_hash),
        amount_msat=int(invoice.amount_msat or 0),
        timestamp=invoice.date,
        expiry=invoice.expiry,
        description=invoice.description or "",
        description_hash=invoice.description_hash or "",
        cltv_expiry=invoice.min_final_cltv_expiry,
        payment_addr=bytes.fromhex(invoice.payment_secret or ""),
        feature_bits=feature_bits,
    )
