"""The simulator's state file: written while it runs, and a new Simulator on
the same state dir continues the network (keys, ports, invoices, payments,
balances, manual clock)."""

from __future__ import annotations

import hashlib
import json
import os

from adapters.lnd.protos import invoices_pb2, lightning_pb2, router_pb2
from adapters.lnd.sim import SimConfig, Simulator
from adapters.lnd.sim.client import NodeClient, StreamReader
from tests.conftest import wait_until

Invoice = lightning_pb2.Invoice


def connect(sim: Simulator, name: str) -> NodeClient:
    endpoint = sim.endpoint(name)
    return NodeClient.connect(endpoint.address, endpoint.tls_cert_path, endpoint.macaroon_path)


def test_state_survives_a_new_simulator_on_the_same_dir(tmp_path):
    config = SimConfig(state_dir=tmp_path, manual_clock=True, wallets=1)
    first = Simulator(config).start()
    r_hash = hashlib.sha256(os.urandom(32)).digest()
    try:
        with connect(first, "mostro") as mostro, connect(first, "wallet1") as wallet:
            request = mostro.invoices.AddHoldInvoice(
                invoices_pb2.AddHoldInvoiceRequest(hash=r_hash, value=3_000, expiry=100)
            ).payment_request
            payment = StreamReader(
                wallet.router.SendPaymentV2(router_pb2.SendPaymentRequest(payment_request=request))
            )
            payment.next()
        first.advance_clock(50)
        state_file = tmp_path / "state.json"
        wait_until(lambda: r_hash.hex() in state_file.read_text())  # saved while running
        endpoints = first.endpoints()
    finally:
        first.stop()

    second = Simulator(config).start()
    try:
        assert second.endpoints() == endpoints
        assert second.balance_msat("wallet1") == (10_000_000 - 3_000) * 1000
        assert json.loads((tmp_path / "nodes.json").read_text())["nodes"][0]["name"] == "mostro"
        with connect(second, "mostro") as mostro:
            invoice = mostro.invoices.LookupInvoiceV2(
                invoices_pb2.LookupInvoiceMsg(payment_hash=r_hash), timeout=5
            )
            assert invoice.state == Invoice.ACCEPTED
        assert second.ledger.lookup_payment("wallet1", r_hash).status == "IN_FLIGHT"
        assert second.ledger.clock.now() == first.ledger.clock.now()  # manual clock resumes
    finally:
        second.stop()
