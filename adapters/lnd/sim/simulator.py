"""The LND-protocol simulator as an object: builds the simulated network,
serves each node on its own TLS gRPC port, and exposes the fault switches.

All gRPC servers (every node's and the control server) are grpc.aio servers
on one event loop thread (aio_bridge.LoopThread), so open streams cost no
threads; the public methods here are ordinary blocking calls.

Owns servers, threads and files (state.json, nodes.json, per-node
credentials under the state dir); decides nothing about invoices or
payments (that is the ledger's job).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from .aio_bridge import LoopThread
from .clock import SimClock
from .credentials import NodeCredentials, ensure_credentials
from .faults import ALL_NODES, UNTIL_CLEARED, FaultSwitches, NodeGate
from .ledger import FeePolicy, Ledger
from .services import NodeIdentity, add_node_services
from .state_file import StateWriter, write_json_file

MOSTRO_NODE = "mostro"
STATE_FILE = "state.json"
NODES_FILE = "nodes.json"
_SERVER_OPTIONS = [("grpc.so_reuseport", 0)]  # a taken port is an error, never shared


def wallet_name(index: int) -> str:
    """Names of the user wallets: wallet1, wallet2, ..."""
    return f"wallet{index}"


@dataclass(frozen=True)
class SimConfig:
    state_dir: Path
    host: str = "127.0.0.1"
    wallets: int = 2
    mostro_balance_sat: int = 10_000_000
    wallet_balance_sat: int = 10_000_000
    network: str = "regtest"
    # node i listens on base_port + i; 0 picks free ports (or the ones of a previous run)
    base_port: int = 0
    # None: no control server; 0: a free port
    control_port: int | None = None
    fee_base_msat: int = 0
    fee_ppm: int = 0
    block_height: int = 200
    manual_clock: bool = False
    persist: bool = True


@dataclass(frozen=True)
class NodeEndpoint:
    """How a client reaches one simulated node (like an LND's host, tls.cert, macaroon)."""

    name: str
    pubkey: str
    host: str
    port: int
    tls_cert_path: Path
    macaroon_path: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def tls_cert_pem(self) -> bytes:
        return self.tls_cert_path.read_bytes()

    def macaroon_hex(self) -> str:
        return self.macaroon_path.read_bytes().hex()

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "pubkey": self.pubkey,
            "host": self.host,
            "port": self.port,
            "address": self.address,
            "tls_cert_path": str(self.tls_cert_path),
            "macaroon_path": str(self.macaroon_path),
        }


@dataclass
class _RunningNode:
    identity: NodeIdentity
    credentials: NodeCredentials
    macaroon_hex: str
    port: int = 0
    server: grpc.aio.Server | None = field(default=None, repr=False)


class Simulator:
    """Several simulated LND nodes on one network; see adapters/lnd/README.md."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.state_dir = Path(config.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.faults = FaultSwitches()
        self._state_writer: StateWriter | None = None
        saved = self._read_json(STATE_FILE)
        if saved is not None:
            clock = SimClock.from_json(saved["clock"], manual=config.manual_clock)
        else:
            clock = SimClock(manual=config.manual_clock)
        self.ledger = Ledger(
            network=config.network,
            clock=clock,
            block_height=config.block_height,
            fee_policy=FeePolicy(config.fee_base_msat, config.fee_ppm),
        )
        if saved is not None:
            self.ledger.load_json(saved)
        else:
            self.ledger.add_node(MOSTRO_NODE, balance_msat=config.mostro_balance_sat * 1000)
            for index in range(1, config.wallets + 1):
                self.ledger.add_node(
                    wallet_name(index), balance_msat=config.wallet_balance_sat * 1000
                )
        if config.persist:
            self._state_writer = StateWriter(self.ledger, self.state_dir / STATE_FILE)
            self.ledger.on_change = self._state_writer.mark_dirty
            self._state_writer.flush()
        previous_ports = {
            n["name"]: n["port"] for n in (self._read_json(NODES_FILE) or {}).get("nodes", [])
        }
        self._nodes: dict[str, _RunningNode] = {}
        for index, record in enumerate(self.ledger.nodes()):
            credentials = ensure_credentials(self.state_dir / record.name, alias=record.name)
            port = (
                config.base_port + index if config.base_port else previous_ports.get(record.name, 0)
            )
            self._nodes[record.name] = _RunningNode(
                identity=NodeIdentity(record.name, record.name, config.host, 9735 + index),
                credentials=credentials,
                macaroon_hex=credentials.macaroon_hex(),
                port=port,
            )
        self._loop: LoopThread | None = None
        self._control_server: grpc.aio.Server | None = None
        self.control_port: int | None = None
        self._stopping = threading.Event()
        self._sweeper: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------

    def start(self) -> Simulator:
        """Starts every node server, the control server (if configured) and the expiry sweeper."""
        self.start_servers()
        if self.config.control_port is not None:
            from .control import start_control_server

            self._control_server, self.control_port = self._event_loop().run(
                start_control_server(self, self.config.host, self.config.control_port)
            )
        self._write_nodes_file()
        if self._state_writer is not None:
            self._state_writer.start()
        if not self.ledger.clock.manual:
            self._stopping.clear()
            self._sweeper = threading.Thread(target=self._sweep, name="lnsim-expiry", daemon=True)
            self._sweeper.start()
        return self

    def stop(self) -> None:
        """Stops everything; the state stays in memory and (if persisted) in state.json."""
        self._stopping.set()
        if self._sweeper is not None:
            self._sweeper.join(timeout=5)
            self._sweeper = None
        self.stop_servers()
        if self._control_server is not None:
            assert self._loop is not None
            self._loop.run(self._control_server.stop(grace=None))
            self._control_server = None
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        if self._state_writer is not None:
            self._state_writer.stop()

    def start_servers(self) -> None:
        """Starts the node servers (on the same ports as before if they ran already)."""
        self._event_loop().run(self._start_node_servers())

    def stop_servers(self) -> None:
        """Stops the node servers (a node outage); open streams end on the client side."""
        if self._loop is not None:
            self._loop.run(self._stop_node_servers())

    async def _start_node_servers(self) -> None:
        for name, node in self._nodes.items():
            if node.server is not None:
                continue
            server = grpc.aio.server(
                interceptors=[NodeGate(name, lambda n=node: n.macaroon_hex, self.faults)],
                options=_SERVER_OPTIONS,
            )
            add_node_services(server, self.ledger, node.identity)
            credentials = grpc.ssl_server_credentials(
                [(node.credentials.tls_key_pem(), node.credentials.tls_cert_pem())]
            )
            node.port = server.add_secure_port(f"{self.config.host}:{node.port}", credentials)
            await server.start()
            node.server = server

    async def _stop_node_servers(self) -> None:
        for node in self._nodes.values():
            if node.server is not None:
                await node.server.stop(grace=None)
                node.server = None

    def _event_loop(self) -> LoopThread:
        if self._loop is None:
            self._loop = LoopThread()
        return self._loop

    def restart(self) -> None:
        """Stop and start the node servers on the same ports, keeping the network's state."""
        self.stop_servers()
        self.start_servers()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ---- what clients need -----------------------------------------------

    def endpoint(self, name: str) -> NodeEndpoint:
        node = self._nodes[name]
        return NodeEndpoint(
            name=name,
            pubkey=self.ledger.node(name).pubkey,
            host=self.config.host,
            port=node.port,
            tls_cert_path=node.credentials.tls_cert_path,
            macaroon_path=node.credentials.macaroon_path,
        )

    def endpoints(self) -> dict[str, NodeEndpoint]:
        return {name: self.endpoint(name) for name in self._nodes}

    @property
    def wallet_names(self) -> list[str]:
        return [name for name in self._nodes if name != MOSTRO_NODE]

    # ---- fault and world controls ----------------------------------------

    def refuse(self, method: str, count: int = UNTIL_CLEARED, node: str = ALL_NODES) -> None:
        """UNAVAILABLE for the next `count` calls of `method` (0: until cleared)."""
        self.faults.refuse(method, count, node)

    def delay(self, method: str, delay_ms: int, node: str = ALL_NODES) -> None:
        self.faults.delay(method, delay_ms, node)

    def clear_faults(self) -> None:
        self.faults.clear()

    def drop_streams(self) -> int:
        """Ends every open subscription/payment stream with UNAVAILABLE; returns how many."""
        return self.ledger.drop_subscriptions()

    def advance_clock(self, seconds: float) -> float:
        return self.ledger.advance_clock(seconds)

    def set_block_height(self, height: int) -> None:
        self.ledger.set_block_height(height)

    def set_balance(self, node: str, balance_msat: int) -> None:
        self.ledger.set_balance(node, balance_msat)

    def balance_msat(self, node: str) -> int:
        return self.ledger.node(node).balance_msat

    # ---- internals -------------------------------------------------------

    def _sweep(self) -> None:
        """Real-time mode: cancel OPEN invoices as they reach their expiry."""
        while True:
            wait = self.ledger.seconds_to_next_expiry()
            timeout = 1.0 if wait is None else min(max(wait, 0.01), 1.0)
            if self._stopping.wait(timeout):
                return
            self.ledger.expire_due()

    def _read_json(self, name: str) -> dict | None:
        path = self.state_dir / name
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def _write_nodes_file(self) -> None:
        write_json_file(self.state_dir / NODES_FILE, self.describe(), indent=1)

    def describe(self) -> dict:
        """Endpoints and control port, as written to nodes.json and printed by the CLI."""
        return {
            "network": self.ledger.network,
            "control": None
            if self.control_port is None
            else f"{self.config.host}:{self.control_port}",
            "nodes": [endpoint.to_json() for endpoint in self.endpoints().values()],
        }
