"""secp256k1 keys for Nostr: parsing (hex, nsec/npub), x-only public keys, BIP-340 sign/verify, ECDH.

This module is the only place that talks to libsecp256k1 (through coincurve's cffi bindings). It calls
the library directly where coincurve's convenience wrappers would add work on the hot path
(`PrivateKey.sign_schnorr` rebuilds the keypair and re-verifies every signature; `PrivateKey.ecdh`
hashes the shared point, whereas NIP-44 needs the raw x-coordinate). Parsed keys are cached, so a
long-lived key (the node key, a peer's trade key) is parsed once.

It must not know about events, encryption formats or Mostro; it raises only on caller bugs
(wrong types or lengths); untrusted input goes through `parse_*`, `verify*` and `ecdh_x`, which
return a value, `False`/`None` or a `KeyParseError` instead of raising.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT
from pynostr import bech32

_CTX = GLOBAL_CONTEXT.ctx
_HEX_DIGITS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class KeyParseError:
    """Why a key string was refused."""

    reason: str


def is_hex(text: object, length: int) -> bool:
    """True when `text` is a lowercase hex string of exactly `length` characters."""
    return isinstance(text, str) and len(text) == length and _HEX_DIGITS.issuperset(text)


@dataclass(frozen=True)
class KeyPair:
    """A secret key with its parsed libsecp256k1 keypair and its x-only public key (hex).

    Holding one of these avoids re-deriving the public key for every signature.
    """

    secret: bytes
    public_hex: str
    _keypair: Any = field(repr=False, compare=False)

    @property
    def secret_hex(self) -> str:
        return self.secret.hex()

    @property
    def public(self) -> bytes:
        return bytes.fromhex(self.public_hex)

    def sign(self, digest: bytes, aux: bytes | None = None) -> bytes:
        """BIP-340 signature of a 32-byte digest; `aux` is the 32 bytes of auxiliary randomness."""
        if len(digest) != 32:
            raise ValueError("BIP-340 signs 32-byte digests")
        aux_rand = os.urandom(32) if aux is None else aux
        if len(aux_rand) != 32:
            raise ValueError("aux randomness must be 32 bytes")
        signature = ffi.new("unsigned char[64]")
        if not lib.secp256k1_schnorrsig_sign32(_CTX, signature, digest, self._keypair, aux_rand):
            raise RuntimeError("libsecp256k1 refused to sign")
        return bytes(ffi.buffer(signature, 64))

    def __repr__(self) -> str:  # never print secrets
        return f"KeyPair(public_hex={self.public_hex!r})"


def _make_keypair(secret: bytes) -> KeyPair | None:
    if len(secret) != 32:
        return None
    keypair = ffi.new("secp256k1_keypair *")
    if not lib.secp256k1_keypair_create(_CTX, keypair, secret):
        return None
    xonly = ffi.new("secp256k1_xonly_pubkey *")
    lib.secp256k1_keypair_xonly_pub(_CTX, xonly, ffi.NULL, keypair)
    out = ffi.new("unsigned char[32]")
    lib.secp256k1_xonly_pubkey_serialize(_CTX, out, xonly)
    return KeyPair(
        secret=bytes(secret), public_hex=bytes(ffi.buffer(out, 32)).hex(), _keypair=keypair
    )


def keypair_from_bytes(secret: bytes) -> KeyPair | KeyParseError:
    """A keypair for a 32-byte secret, uncached (use it for one-off keys such as gift-wrap keys)."""
    made = _make_keypair(secret)
    return made if made is not None else KeyParseError("secret key out of range")


@lru_cache(maxsize=256)
def keypair(secret_hex: str) -> KeyPair:
    """The cached keypair of a trusted hex secret (node key, client keys); raises on a bad key."""
    if not is_hex(secret_hex.lower(), 64):
        raise ValueError("secret key must be 64 hex characters")
    made = _make_keypair(bytes.fromhex(secret_hex))
    if made is None:
        raise ValueError("secret key out of range")
    return made


def generate_keypair(entropy: bytes | None = None) -> KeyPair:
    """A fresh random keypair; `entropy` (32 bytes) makes it deterministic for tests."""
    while True:
        candidate = entropy if entropy is not None else os.urandom(32)
        made = _make_keypair(candidate)
        if made is not None:
            return made
        if entropy is not None:
            raise ValueError("the given entropy is not a valid secret key")


def generate_secret_hex() -> str:
    return generate_keypair().secret_hex


def public_key_hex(secret_hex: str) -> str:
    """The x-only public key (hex) of a hex secret key."""
    return keypair(secret_hex).public_hex


@lru_cache(maxsize=8192)
def _xonly(pubkey_hex: str) -> Any:
    """Parsed x-only key, or None when the 32 bytes are not the x-coordinate of a curve point."""
    if not is_hex(pubkey_hex, 64):
        return None
    parsed = ffi.new("secp256k1_xonly_pubkey *")
    if not lib.secp256k1_xonly_pubkey_parse(_CTX, parsed, bytes.fromhex(pubkey_hex)):
        return None
    return parsed


@lru_cache(maxsize=8192)
def _even_point(pubkey_hex: str) -> Any:
    """The curve point with x = pubkey and even y (BIP-340 lift_x), or None if invalid."""
    if not is_hex(pubkey_hex, 64):
        return None
    parsed = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ec_pubkey_parse(_CTX, parsed, b"\x02" + bytes.fromhex(pubkey_hex), 33):
        return None
    return parsed


def is_valid_public_key(pubkey_hex: str) -> bool:
    """True for a lowercase 64-hex x-only key that lies on the curve."""
    return _xonly(pubkey_hex) is not None


def verify(signature: bytes, digest: bytes, pubkey_hex: str) -> bool:
    """BIP-340 verification of a 64-byte signature over a 32-byte digest; False on any malformed input."""
    xonly = _xonly(pubkey_hex)
    if xonly is None or len(signature) != 64 or len(digest) != 32:
        return False
    return bool(lib.secp256k1_schnorrsig_verify(_CTX, signature, digest, 32, xonly))


def verify_hex(signature_hex: str, digest: bytes, pubkey_hex: str) -> bool:
    """`verify` for a 128-hex signature string (lowercase, as Nostr and Mostro write it)."""
    if not is_hex(signature_hex, 128):
        return False
    return verify(bytes.fromhex(signature_hex), digest, pubkey_hex)


@ffi.callback("int (unsigned char *, const unsigned char *, const unsigned char *, void *)")
def _copy_x(output: Any, x32: Any, _y32: Any, _data: Any) -> int:
    ffi.memmove(output, x32, 32)
    return 1


def ecdh_x(secret: bytes, pubkey_hex: str) -> bytes | None:
    """The unhashed x-coordinate of secret·lift_x(pubkey) (constant time), or None for invalid keys."""
    point = _even_point(pubkey_hex)
    if point is None or len(secret) != 32:
        return None
    out = ffi.new("unsigned char[32]")
    if not lib.secp256k1_ecdh(_CTX, out, point, secret, _copy_x, ffi.NULL):
        return None
    return bytes(ffi.buffer(out, 32))


# --- text forms ------------------------------------------------------------------------------


def _bech32_to_bytes(text: str, hrp: str) -> bytes | None:
    got_hrp, data, spec = bech32.bech32_decode(text)
    if got_hrp != hrp or data is None or spec != bech32.Encoding.BECH32:
        return None
    raw = bech32.convertbits(data, 5, 8, False)
    if raw is None or len(raw) != 32:
        return None
    return bytes(raw)


def _bytes_to_bech32(raw: bytes, hrp: str) -> str:
    return bech32.bech32_encode(hrp, bech32.convertbits(raw, 8, 5), bech32.Encoding.BECH32)


def nsec_encode(secret_hex: str) -> str:
    return _bytes_to_bech32(bytes.fromhex(secret_hex), "nsec")


def npub_encode(pubkey_hex: str) -> str:
    return _bytes_to_bech32(bytes.fromhex(pubkey_hex), "npub")


def parse_secret_key(text: str) -> str | KeyParseError:
    """A secret key given as 64 hex characters or `nsec1…`, returned as lowercase hex."""
    text = text.strip()
    if text.startswith("nsec1"):
        raw = _bech32_to_bytes(text, "nsec")
        if raw is None:
            return KeyParseError("invalid nsec")
    else:
        if not is_hex(text.lower(), 64):
            return KeyParseError("secret key must be 64 hex characters or nsec1…")
        raw = bytes.fromhex(text)
    if _make_keypair(raw) is None:
        return KeyParseError("secret key out of range")
    return raw.hex()


def parse_public_key(text: str) -> str | KeyParseError:
    """An x-only public key given as 64 hex characters or `npub1…`, returned as lowercase hex."""
    text = text.strip()
    if text.startswith("npub1"):
        raw = _bech32_to_bytes(text, "npub")
        if raw is None:
            return KeyParseError("invalid npub")
        candidate = raw.hex()
    else:
        candidate = text.lower()
    if not is_valid_public_key(candidate):
        return KeyParseError("public key is not a 64-hex x-only point on secp256k1")
    return candidate
