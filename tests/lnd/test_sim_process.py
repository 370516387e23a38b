"""`python -m adapters.lnd.sim` as a separate process: it prints its endpoints,
writes them to nodes.json, and a restart with the same state dir keeps the
ports, credentials, invoices, balances and payments."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.lnd.protos import invoices_pb2, lightning_pb2, router_pb2
from adapters.lnd.sim.client import NodeClient, StreamReader

REPO = Path(__file__).resolve().parents[2]
Invoice = lightning_pb2.Invoice
Payment = lightning_pb2.Payment


class SimProcess:
    def __init__(self, state_dir: Path):
        self.log = (state_dir.parent / f"{state_dir.name}.stderr").open("a+")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapters.lnd.sim",
                "--state-dir",
                str(state_dir),
                "--manual-clock",
                "--wallets",
                "1",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = self.process.stdout.readline()  # blocks until the simulator is serving
        if not line:
            self.log.seek(0)
            pytest.fail(f"the simulator did not start: {self.log.read()}")
        self.ready = json.loads(line)

    def client(self, name: str) -> NodeClient:
        node = next(n for n in self.ready["nodes"] if n["name"] == name)
        return NodeClient.connect(node["address"], node["tls_cert_path"], node["macaroon_path"])

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=10)


@pytest.fixture
def sim_processes():
    started: list[SimProcess] = []

    def start(state_dir: Path) -> SimProcess:
        started.append(SimProcess(state_dir))
        return started[-1]

    yield start
    for sim in started:
        if sim.process.poll() is None:
            sim.process.kill()
            sim.process.wait(timeout=10)
        sim.log.close()


def test_process_restart_keeps_state(tmp_path, sim_processes):
    first = sim_processes(tmp_path)
    assert first.ready["ready"] is True
    assert json.loads((tmp_path / "nodes.json").read_text())["nodes"] == first.ready["nodes"]
    preimage = os.urandom(32)
    r_hash = hashlib.sha256(preimage).digest()
    with first.client("mostro") as mostro, first.client("wallet1") as wallet:
        request = mostro.invoices.AddHoldInvoice(
            invoices_pb2.AddHoldInvoiceRequest(hash=r_hash, value=25_000)
        ).payment_request
        payment = StreamReader(
            wallet.router.SendPaymentV2(router_pb2.SendPaymentRequest(payment_request=request))
        )
        assert payment.next().status == Payment.IN_FLIGHT
    assert first.stop() == 0

    second = sim_processes(tmp_path)
    assert second.ready["nodes"] == first.ready["nodes"]  # same ports, keys and files
    with second.client("mostro") as mostro, second.client("wallet1") as wallet:
        invoice = mostro.invoices.LookupInvoiceV2(
            invoices_pb2.LookupInvoiceMsg(payment_hash=r_hash), timeout=5
        )
        assert invoice.state == Invoice.ACCEPTED
        balance = wallet.lightning.ChannelBalance(lightning_pb2.ChannelBalanceRequest())
        assert balance.local_balance.sat == 10_000_000 - 25_000
        track = StreamReader(
            wallet.router.TrackPaymentV2(router_pb2.TrackPaymentRequest(payment_hash=r_hash))
        )
        assert track.next().status == Payment.IN_FLIGHT
        mostro.invoices.SettleInvoice(invoices_pb2.SettleInvoiceMsg(preimage=preimage))
        done = track.next()
        assert (done.status, done.payment_preimage) == (Payment.SUCCEEDED, preimage.hex())
    assert second.stop() == 0
