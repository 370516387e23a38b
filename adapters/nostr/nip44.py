"""NIP-44 version 2 payload encryption (conversation keys, padding, ChaCha20, HMAC-SHA256, base64).

Follows the reference implementation (paulmillr/nip44) and is checked against its official vectors.
`decrypt` faces untrusted input and returns the plaintext or a `Nip44Error` value — it never lets an
exception from base64, cryptography or UTF-8 decoding escape. `encrypt` raises `Nip44Error` only for
a caller bug (a plaintext outside 1..65535 UTF-8 bytes: check `MAX_PLAINTEXT_BYTES` before calling).

It must not know about events, gift wraps or Mostro.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from enum import StrEnum
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from adapters.nostr import keys

VERSION = 2
SALT = b"nip44-v2"
MIN_PLAINTEXT_BYTES = 1
MAX_PLAINTEXT_BYTES = 65535
MIN_PAYLOAD_CHARS, MAX_PAYLOAD_CHARS = 132, 87472
MIN_DECODED_BYTES, MAX_DECODED_BYTES = 99, 65603


class Nip44Reason(StrEnum):
    UNKNOWN_VERSION = "unknown_version"
    INVALID_PAYLOAD_LENGTH = "invalid_payload_length"
    INVALID_BASE64 = "invalid_base64"
    INVALID_DATA_LENGTH = "invalid_data_length"
    INVALID_MAC = "invalid_mac"
    INVALID_PADDING = "invalid_padding"
    INVALID_UTF8 = "invalid_utf8"
    INVALID_PLAINTEXT_LENGTH = "invalid_plaintext_length"
    INVALID_SECRET_KEY = "invalid_secret_key"
    INVALID_PUBLIC_KEY = "invalid_public_key"
    INVALID_CONVERSATION_KEY = "invalid_conversation_key"
    INVALID_NONCE = "invalid_nonce"


class Nip44Error(Exception):
    """Why a NIP-44 operation failed; returned as a value by decrypt/conversation_key."""

    def __init__(self, reason: Nip44Reason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Nip44Error) and (self.reason, self.detail) == (
            other.reason,
            other.detail,
        )

    def __hash__(self) -> int:
        return hash((self.reason, self.detail))

    def __repr__(self) -> str:
        return f"Nip44Error({self.reason.value!r}, {self.detail!r})"


def conversation_key_from_bytes(secret: bytes, pubkey_hex: str) -> bytes | Nip44Error:
    """HKDF-extract(salt "nip44-v2", x-coordinate of ECDH(secret, pubkey)); symmetric in the two parties."""
    if not keys.is_valid_public_key(pubkey_hex):
        return Nip44Error(Nip44Reason.INVALID_PUBLIC_KEY, "not an x-only point on secp256k1")
    shared_x = keys.ecdh_x(secret, pubkey_hex)
    if shared_x is None:
        return Nip44Error(Nip44Reason.INVALID_SECRET_KEY, "secret key out of range")
    return hmac.digest(SALT, shared_x, "sha256")


def conversation_key(secret_hex: str, pubkey_hex: str) -> bytes | Nip44Error:
    """The conversation key between a hex secret key and a hex x-only public key (uncached)."""
    if not keys.is_hex(secret_hex, 64):
        return Nip44Error(Nip44Reason.INVALID_SECRET_KEY, "secret key must be 64 lowercase hex")
    return conversation_key_from_bytes(bytes.fromhex(secret_hex), pubkey_hex)


@lru_cache(maxsize=4096)
def cached_conversation_key(secret_hex: str, pubkey_hex: str) -> bytes | Nip44Error:
    """`conversation_key` memoised per (secret, peer): use it for long-lived keys, not one-off ones."""
    return conversation_key(secret_hex, pubkey_hex)


def message_keys(conv_key: bytes, nonce: bytes) -> tuple[bytes, bytes, bytes]:
    """HKDF-expand(PRK = conversation key, info = nonce, L = 76) → (chacha_key, chacha_nonce, hmac_key).

    Written out with one-shot HMACs (three blocks) because it runs for every message.
    """
    block1 = hmac.digest(conv_key, nonce + b"\x01", "sha256")
    block2 = hmac.digest(conv_key, block1 + nonce + b"\x02", "sha256")
    block3 = hmac.digest(conv_key, block2 + nonce + b"\x03", "sha256")
    okm = block1 + block2 + block3
    return okm[0:32], okm[32:44], okm[44:76]


def calc_padded_len(unpadded_len: int) -> int:
    """Length of the padded body (without the 2-byte length prefix) for a plaintext length."""
    if unpadded_len <= 32:
        return 32
    next_power = 1 << (unpadded_len - 1).bit_length()
    chunk = 32 if next_power <= 256 else next_power // 8
    return chunk * ((unpadded_len - 1) // chunk + 1)


def _chacha20(key: bytes, nonce12: bytes, data: bytes) -> bytes:
    # cryptography wants the RFC 7539 16-byte form: 4-byte little-endian counter (0) + 12-byte nonce
    return (
        Cipher(algorithms.ChaCha20(key, b"\x00\x00\x00\x00" + nonce12), mode=None)
        .encryptor()
        .update(data)
    )


def encrypt(plaintext: str, conv_key: bytes, nonce: bytes | None = None) -> str:
    """The base64 payload `0x02 || nonce || ciphertext || mac`; `nonce` (32 bytes) only for tests."""
    raw = plaintext.encode("utf-8")
    size = len(raw)
    if not MIN_PLAINTEXT_BYTES <= size <= MAX_PLAINTEXT_BYTES:
        raise Nip44Error(Nip44Reason.INVALID_PLAINTEXT_LENGTH, f"{size} bytes")
    if len(conv_key) != 32:
        raise Nip44Error(Nip44Reason.INVALID_CONVERSATION_KEY, "must be 32 bytes")
    if nonce is None:
        nonce = os.urandom(32)
    elif len(nonce) != 32:
        raise Nip44Error(Nip44Reason.INVALID_NONCE, "must be 32 bytes")
    chacha_key, chacha_nonce, hmac_key = message_keys(conv_key, nonce)
    padded = size.to_bytes(2, "big") + raw + bytes(calc_padded_len(size) - size)
    ciphertext = _chacha20(chacha_key, chacha_nonce, padded)
    mac = hmac.digest(hmac_key, nonce + ciphertext, "sha256")
    return base64.b64encode(b"\x02" + nonce + ciphertext + mac).decode("ascii")


def decrypt(payload: str, conv_key: bytes) -> str | Nip44Error:
    """The plaintext of a payload, or the first check it fails (in the reference order)."""
    if not isinstance(payload, str):
        return Nip44Error(Nip44Reason.INVALID_PAYLOAD_LENGTH, "payload is not a string")
    chars = len(payload)
    if not MIN_PAYLOAD_CHARS <= chars <= MAX_PAYLOAD_CHARS:
        return Nip44Error(Nip44Reason.INVALID_PAYLOAD_LENGTH, f"{chars} characters")
    if payload[0] == "#":
        return Nip44Error(Nip44Reason.UNKNOWN_VERSION, "'#' marks a future non-base64 encoding")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return Nip44Error(Nip44Reason.INVALID_BASE64)
    size = len(data)
    if not MIN_DECODED_BYTES <= size <= MAX_DECODED_BYTES:
        return Nip44Error(Nip44Reason.INVALID_DATA_LENGTH, f"{size} bytes")
    if data[0] != VERSION:
        return Nip44Error(Nip44Reason.UNKNOWN_VERSION, f"version byte {data[0]}")
    if len(conv_key) != 32:
        return Nip44Error(Nip44Reason.INVALID_CONVERSATION_KEY, "must be 32 bytes")
    nonce, ciphertext, mac = data[1:33], data[33:-32], data[-32:]
    chacha_key, chacha_nonce, hmac_key = message_keys(conv_key, nonce)
    expected_mac = hmac.digest(hmac_key, nonce + ciphertext, "sha256")
    if not hmac.compare_digest(expected_mac, mac):
        return Nip44Error(Nip44Reason.INVALID_MAC)
    padded = _chacha20(chacha_key, chacha_nonce, ciphertext)
    size = int.from_bytes(padded[0:2], "big")
    if size < MIN_PLAINTEXT_BYTES or len(padded) != 2 + calc_padded_len(size):
        return Nip44Error(Nip44Reason.INVALID_PADDING, f"declared length {size}")
    try:
        return padded[2 : 2 + size].decode("utf-8")
    except UnicodeDecodeError:
        return Nip44Error(Nip44Reason.INVALID_UTF8)
