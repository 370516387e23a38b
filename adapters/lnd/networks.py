"""Bitcoin network names as LND reports them, and the network of a BOLT11 string.

Pure string work; must not do I/O or know about gRPC.
"""

from __future__ import annotations

# Operators write the network the way bitcoind or LND names it; compare one spelling.
_NETWORK_ALIASES = {
    "bitcoin": "mainnet",
    "main": "mainnet",
    "test": "testnet",
    "testnet3": "testnet",
}

# BOLT11 human-readable prefixes after "ln", longest first (so "bcrt" wins over "bc").
_NETWORK_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("bcrt", "regtest"),
    ("tbs", "signet"),
    ("tb", "testnet"),
    ("bc", "mainnet"),
    ("sb", "simnet"),
)


def normalize_network(name: str) -> str:
    lowered = name.strip().lower()
    return _NETWORK_ALIASES.get(lowered, lowered)


def invoice_network(payment_request: str) -> str | None:
    """The network a BOLT11 string is for, from its prefix; None if it is not BOLT11."""
    text = payment_request.strip().lower()
    if text.startswith("lightning:"):
        text = text[len("lightning:") :]
    if not text.startswith("ln"):
        return None
    for prefix, network in _NETWORK_BY_PREFIX:
        if text[2:].startswith(prefix):
            return network
    return None
