"""LND-protocol simulator: several simulated LND nodes (the Mostro node and
user wallets) on one simulated Lightning network, each serving LND's
Lightning, Invoices and Router gRPC services over TLS with macaroon checks,
plus fault switches. For tests and devnet only; never a payment system.

See adapters/lnd/README.md. Public API: Simulator, SimConfig, NodeEndpoint, main.
"""

from .cli import main
from .simulator import MOSTRO_NODE, NodeEndpoint, SimConfig, Simulator, wallet_name

__all__ = ["MOSTRO_NODE", "NodeEndpoint", "SimConfig", "Simulator", "main", "wallet_name"]
