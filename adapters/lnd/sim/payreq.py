"""BOLT11 payment requests for the simulator: encode one signed by a node key,
decode any (ours or another node's) into plain values.

Decoding uses the `bolt11` package. Encoding is done here on plain integers
(the package's bit-string encoder costs ~2 ms per invoice, on the simulator's
one loop thread); it must match the package's encoding of the same invoice byte
for byte (tests/lnd/test_sim_scale.py compares them). Must not know about
invoices' states or the gRPC layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import bolt11
import coincurve
from bech32 import bech32_encode
from bolt11 import Feature, Features, FeatureState

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


# BOLT11 field types (the 5-bit tag values)
_TAG_PAYMENT_HASH = 1
_TAG_DESCRIPTION = 13
_TAG_EXPIRY = 6
_TAG_MIN_FINAL_CLTV = 24
_TAG_PAYMENT_SECRET = 16
_TAG_DESCRIPTION_HASH = 23
_TAG_FEATURES = 5


def _feature_bits(bits) -> tuple[int, ...]:
    """bolt11 stores the field most-significant bit first; bit i counts from the end."""
    return tuple(i for i in range(len(bits)) if bits[len(bits) - 1 - i])


_INVOICE_FEATURE_BITS = _feature_bits(_INVOICE_FEATURES.data)


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


def _to_u5(data: bytes, bit_length: int | None = None) -> list[int]:
    """`bit_length` bits of `data` (all by default) in 5-bit groups, zero-padded at the end."""
    bit_length = len(data) * 8 if bit_length is None else bit_length
    groups = -(-bit_length // 5)
    value = int.from_bytes(data, "big") >> (len(data) * 8 - bit_length)
    value <<= groups * 5 - bit_length
    return [(value >> (5 * (groups - 1 - i))) & 31 for i in range(groups)]


def _from_u5(groups: list[int]) -> bytes:
    """5-bit groups as bytes, zero-padded at the end (what gets signed)."""
    bit_length = len(groups) * 5
    value = 0
    for group in groups:
        value = (value << 5) | group
    padding = -bit_length % 8
    return (value << padding).to_bytes((bit_length + padding) // 8, "big")


def _int_u5(value: int) -> list[int]:
    """An integer in the fewest 5-bit groups (none for 0), most significant first."""
    groups: list[int] = []
    while value:
        groups.append(value & 31)
        value >>= 5
    return groups[::-1]


def _field(tag: int, groups: list[int]) -> list[int]:
    return [tag, len(groups) >> 5, len(groups) & 31, *groups]


_FEATURES_U5 = _field(
    _TAG_FEATURES, _to_u5(_INVOICE_FEATURES.data.tobytes(), _INVOICE_FEATURES.data.len)
)


def _amount_text(amount_msat: int) -> str:
    """The hrp's amount in the shortest unit (as the bolt11 package writes it)."""
    value, units = amount_msat * 10, ("p", "n", "u", "m", "")  # value in pico-bitcoin
    index = 0
    while index < len(units) - 1 and value % 1000 == 0:
        value //= 1000
        index += 1
    return f"{value}{units[index]}"


@lru_cache(maxsize=64)
def _private_key(private_key_hex: str) -> coincurve.PrivateKey:
    return coincurve.PrivateKey.from_hex(private_key_hex)


@dataclass(frozen=True)
class InvoiceTerms:
    """What a BOLT11 string of ours says, before it is signed."""

    network: str
    payment_hash: bytes
    payment_addr: bytes
    amount_msat: int
    timestamp: int
    expiry: int
    cltv_expiry: int
    memo: str
    description_hash: bytes = b""


def encode_payreq(terms: InvoiceTerms, node_private_key_hex: str) -> str:
    """A BOLT11 string signed by the node's key (no payee tag: it is recovered)."""
    amount_msat = terms.amount_msat
    hrp = "ln" + CURRENCY_BY_NETWORK[terms.network] + (_amount_text(amount_msat) if amount_msat else "")
    data = [(terms.timestamp >> (5 * (6 - i))) & 31 for i in range(7)]  # 35 bits
    data += _field(_TAG_PAYMENT_HASH, _to_u5(terms.payment_hash))
    data += _field(_TAG_PAYMENT_SECRET, _to_u5(terms.payment_addr))
    if terms.description_hash:
        data += _field(_TAG_DESCRIPTION_HASH, _to_u5(terms.description_hash))
    else:
        data += _field(_TAG_DESCRIPTION, _to_u5(terms.memo.encode()))
    data += _field(_TAG_EXPIRY, _int_u5(terms.expiry))
    data += _field(_TAG_MIN_FINAL_CLTV, _int_u5(terms.cltv_expiry))
    data += _FEATURES_U5
    signature = _private_key(node_private_key_hex).sign_recoverable(
        hrp.encode("ascii") + _from_u5(data)
    )
    return bech32_encode(hrp, data + _to_u5(signature))


def issued_payreq(terms: InvoiceTerms, destination: str) -> DecodedPayReq:
    """What `decode_payreq` returns for the string `encode_payreq` made from `terms`
    (`destination`: the signing node's pubkey), without decoding it again: paying
    our own invoices then costs no bolt11 parse nor signature recovery."""
    return DecodedPayReq(
        currency=CURRENCY_BY_NETWORK[terms.network],
        destination=destination,
        payment_hash=terms.payment_hash,
        amount_msat=terms.amount_msat,
        timestamp=terms.timestamp,
        expiry=terms.expiry,
        description="" if terms.description_hash else terms.memo,
        description_hash=terms.description_hash.hex(),
        cltv_expiry=terms.cltv_expiry,
        payment_addr=terms.payment_addr,
        feature_bits=_INVOICE_FEATURE_BITS,
    )


def decode_payreq(payment_request: str) -> DecodedPayReq | PayReqError:
    """Decodes and checks the signature; a bad string is a PayReqError."""
    try:
        invoice = bolt11.decode(payment_request.strip())
    except Exception as exc:  # bolt11 raises many unrelated exception types
        return PayReqError(f"invalid payment request: {exc.__class__.__name__} {exc}".strip())
    features = invoice.features
    feature_bits = () if features is None else _feature_bits(features.data)
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
