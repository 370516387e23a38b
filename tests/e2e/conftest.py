"""The whole daemon on this machine: a real relay, the LND simulator, the actor system.

``stack`` starts them and yields a ``Stack`` with a factory for protocol clients
(``stack.client(name)``) and wallets (``stack.wallet(i)``). Parametrize the
thespian base indirectly: ``@pytest.mark.parametrize("stack", [...], indirect=True)``.
"""

from __future__ import annotations

import multiprocessing
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from thespian.actors import ActorSystem

from actors.daemon import Daemon
from adapters.lnd.sim.wallet import Wallet
from adapters.nostr.client import MostroClient
from adapters.nostr.protocol.enums import Transport
from config.examples import example_settings
from storage import migrate, open_database
from tests.fixtures.lnsim import LnSimHandle
from tests.fixtures.relay import RelayProcess


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    daemon: Daemon
    relay: RelayProcess
    lnsim: LnSimHandle
    settings: Any
    clients: list[MostroClient] = field(default_factory=list)
    wallets: list[Wallet] = field(default_factory=list)

    @property
    def node_pubkey(self) -> str:
        return self.settings.nostr.public_key_hex()

    def client(self, name: str, **kw: Any) -> MostroClient:
        client = MostroClient(name, (self.relay.url,), self.node_pubkey,
                              Transport(self.settings.mostro.transport), **kw).connect()
        self.clients.append(client)
        return client

    def wallet(self, index: int) -> Wallet:
        wallet = Wallet.of(self.lnsim.wallets[index])
        self.wallets.append(wallet)
        return wallet

    def pump(self) -> None:
        """Let a single-threaded actor system run for a moment (multiprocess bases run alone)."""
        if self.daemon.base == "simpleSystemBase":
            self.daemon.system.listen(0.02)


def make_settings(tmp_path: Path, relay_url: str, lnsim: LnSimHandle, base: str,
                  **overrides: dict[str, Any]) -> Any:
    node = lnsim.mostro
    sections: dict[str, dict[str, Any]] = {
        "mostro": {"fee": 0.006, "fiat_currencies_accepted": ["USD", "EUR"]},
        "lightning": {"lnd_grpc_host": node.address, "lnd_cert_file": str(node.tls_cert_path),
                      "lnd_macaroon_file": str(node.macaroon_path), "network": "regtest"},
        "nostr": {"relays": [relay_url]},
        "database": {"url": f"sqlite:///{tmp_path / 'mostro.db'}"},
        "price": {"fixed": {"USD": 100_000.0, "EUR": 90_000.0}},
        "actors": {"base": base, "admin_port": free_port()},
    }
    for name, values in overrides.items():
        sections[name] = {**sections.get(name, {}), **values}
    return example_settings(**sections)


@pytest.fixture
def stack_factory(tmp_path: Path, relay: RelayProcess, lnsim: LnSimHandle
                  ) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def start(base: str = "simpleSystemBase", **overrides: dict[str, Any]) -> Stack:
        settings = make_settings(tmp_path, relay.url, lnsim, base, **overrides)
        migrate(open_database(settings.database.url))
        daemon = Daemon(settings, system=clean_actor_system(base, settings))
        stack = Stack(daemon, relay, lnsim, settings)
        stacks.append(stack)
        daemon.start()
        return stack

    yield start
    for stack in stacks:
        for client in stack.clients:
            client.close()
        for wallet in stack.wallets:
            wallet.close()
        system = stack.daemon.system
        stack.daemon.stop()
        if system is not None and stack.daemon.system is not None:  # ours, not the daemon's
            system.shutdown()


# Modules every actor process needs, imported once in the fork server instead of per actor.
ACTOR_MODULES = ["actors.daemon", "actors.order_actor", "adapters.lnd.actor",
                 "adapters.nostr.actor"]


def clean_actor_system(base: str, settings: Any) -> ActorSystem | None:
    """A multiprocess actor system whose actors fork from a clean fork server (None: simple base).

    This test process runs the LND simulator's gRPC servers and the wallets'
    streams in threads, and gRPC cannot be used in a child forked while its
    threads are busy ("skipping fork() handlers"): the Lightning adapter forked
    from here would sometimes never see an invoice or payment update. The
    supervisor creates its actor system before its process touches gRPC; here
    the "forkserver" start method gives every actor the same clean start.
    """
    if base == "simpleSystemBase":
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(ACTOR_MODULES)
    return ActorSystem(base, {"Admin Port": settings.actors.admin_port,
                              "Process Startup Method": "forkserver"})


@pytest.fixture
def stack(request: pytest.FixtureRequest, stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory(getattr(request, "param", "simpleSystemBase"))
