"""Fixtures for tests of the LND-protocol simulator and of the LightningAdapter.

Everything here runs real gRPC over TLS on 127.0.0.1 (free ports), with the
simulator's state in the test's tmp_path and a manual clock (nothing expires
unless the test calls `sim.advance_clock`).

- ``lnsim``: a started simulator with the mostro node and 2 wallets funded
  with 10,000,000 sat each; yields an ``LnSimHandle``.
- ``lnsim_factory(**overrides)``: the same with any ``SimConfig`` field
  overridden (``wallets=3``, ``fee_ppm=1000``, ``manual_clock=False``, ...).
Handle: ``.mostro`` / ``.wallets`` are ``NodeEndpoint``s (``.address``
"127.0.0.1:port", ``.tls_cert_path``, ``.macaroon_path``, ``.pubkey``);
``.client(name_or_endpoint)`` opens a ``NodeClient`` (stubs .lightning,
.invoices, .router) closed at teardown; ``.sim`` is the ``Simulator`` with the
fault switches (refuse, delay, drop_streams, restart, stop_servers,
start_servers, advance_clock, set_block_height, balance_msat, set_balance).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from adapters.lnd.sim import MOSTRO_NODE, NodeEndpoint, SimConfig, Simulator
from adapters.lnd.sim.client import NodeClient

DATA = Path(__file__).resolve().parent / "data"
WALLET_BALANCE_SAT = 10_000_000


@dataclass
class LnSimHandle:
    sim: Simulator
    state_dir: Path
    _clients: list[NodeClient] = field(default_factory=list)

    @property
    def mostro(self) -> NodeEndpoint:
        return self.sim.endpoint(MOSTRO_NODE)

    @property
    def wallets(self) -> list[NodeEndpoint]:
        return [self.sim.endpoint(name) for name in self.sim.wallet_names]

    def client(self, node: str | NodeEndpoint, *, macaroon: bool = True) -> NodeClient:
        endpoint = node if isinstance(node, NodeEndpoint) else self.sim.endpoint(node)
        client = NodeClient.connect(
            endpoint.address, endpoint.tls_cert_path, endpoint.macaroon_path if macaroon else None
        )
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()


@pytest.fixture
def lnsim_factory(tmp_path: Path) -> Iterator[Callable[..., LnSimHandle]]:
    handles: list[LnSimHandle] = []

    def start(**overrides) -> LnSimHandle:
        state_dir = tmp_path / f"lnsim{len(handles)}"
        config = replace(
            SimConfig(
                state_dir=state_dir,
                wallets=2,
                wallet_balance_sat=WALLET_BALANCE_SAT,
                manual_clock=True,
                control_port=0,
            ),
            **overrides,
        )
        handle = LnSimHandle(Simulator(config).start(), Path(config.state_dir))
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        handle.close_clients()
        handle.sim.stop()


@pytest.fixture
def lnsim(lnsim_factory: Callable[..., LnSimHandle]) -> LnSimHandle:
    return lnsim_factory()


@pytest.fixture(scope="session")
def lnd_reference() -> dict:
    """LND's field numbers, enum values and method paths for the messages we use."""
    return json.loads((DATA / "lnd_field_numbers.json").read_text())
