"""The node's Nostr secret key: parsing (`nsec1…` bech32 or 64 hex) and a redacting holder.

The key is kept in `NostrSecretKey`, whose repr and str never show it, so a
settings object can be logged, printed or put in an exception safely. Only
`reveal_hex()` gives the secret out. This module does no I/O and never
includes the refused text in its reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

# secp256k1 group order: a secret key must be in [1, n-1].
_CURVE_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


@dataclass(frozen=True, repr=False)
class NostrSecretKey:
    """A 32-byte secp256k1 secret key that does not print itself."""

    _hex: str

    def reveal_hex(self) -> str:
        """The secret as 64 lowercase hex digits: for signing code only, never for logs."""
        return self._hex

    def public_key_hex(self) -> str:
        """The x-only (BIP-340 / Nostr) public key, safe to show."""
        from coincurve import PublicKeyXOnly

        return PublicKeyXOnly.from_secret(bytes.fromhex(self._hex)).format().hex()

    def __repr__(self) -> str:
        return "NostrSecretKey(<redacted>)"

    __str__ = __repr__


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for bit, generator in enumerate(_BECH32_GENERATOR):
            if (top >> bit) & 1:
                checksum ^= generator
    return checksum


def _bech32_payload(text: str, expected_hrp: str) -> bytes | str:
    """Decode a bech32 (not bech32m) string to bytes, or say why it is not one."""
    if text.lower() != text and text.upper() != text:
        return "mixes upper and lower case"
    text = text.lower()
    hrp, separator, data_part = text.rpartition("1")
    if not separator or hrp != expected_hrp or len(data_part) < 6:
        return f"is not a {expected_hrp}1… bech32 string"
    try:
        values = [_BECH32_CHARSET.index(char) for char in data_part]
    except ValueError:
        return "contains characters outside the bech32 alphabet"
    expanded_hrp = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    if _polymod(expanded_hrp + values) != 1:
        return "has a bad bech32 checksum"
    accumulator, bits, out = 0, 0, bytearray()
    for value in values[:-6]:
        accumulator = (accumulator << 5) | value
        bits += 5
        while bits >= 8:
            bits -= 8
            out.append((accumulator >> bits) & 0xFF)
    if bits >= 5 or (accumulator & ((1 << bits) - 1)):
        return "has invalid bech32 padding"
    return bytes(out)


def parse_secret_key(text: str) -> NostrSecretKey | str:
    """`nsec1…` or 64 hex digits → key; otherwise a reason that does not quote the input."""
    candidate = text.strip()
    if candidate.lower().startswith("nsec1"):
        payload = _bech32_payload(candidate, "nsec")
        if isinstance(payload, str):
            return f"the nsec key {payload}"
        if len(payload) != 32:
            return "the nsec key does not hold 32 bytes"
        raw = payload
    else:
        if len(candidate) != 64:
            return "must be an nsec1… key or 64 hex digits"
        try:
            raw = bytes.fromhex(candidate)
        except ValueError:
            return "must be an nsec1… key or 64 hex digits"
    if not 0 < int.from_bytes(raw, "big") < _CURVE_ORDER:
        return "is not a valid secp256k1 secret key"
    return NostrSecretKey(raw.hex())
