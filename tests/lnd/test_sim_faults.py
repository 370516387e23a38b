"""Macaroon checks and fault switches of the simulator, over real gRPC: refuse,
delay, dropped streams, a node outage, a restart with state kept, and the
same switches driven through the simrpc control service."""

from __future__ import annotations

import hashlib
import os
import time

import grpc
import pytest

from adapters.lnd.protos import (
    invoices_pb2,
    lightning_pb2,
    router_pb2,
    simrpc_pb2,
    simrpc_pb2_grpc,
)
from adapters.lnd.sim.client import NodeClient, StreamEnded, StreamReader

Invoice = lightning_pb2.Invoice
Payment = lightning_pb2.Payment


def get_info(client, **kwargs):
    return client.lightning.GetInfo(lightning_pb2.GetInfoRequest(), timeout=5, **kwargs)


def add_hold(client, sats: int = 1_000):
    preimage = os.urandom(32)
    r_hash = hashlib.sha256(preimage).digest()
    request = client.invoices.AddHoldInvoice(
        invoices_pb2.AddHoldInvoiceRequest(hash=r_hash, value=sats)
    ).payment_request
    return preimage, r_hash, request


def subscribe(client, r_hash: bytes) -> StreamReader:
    return StreamReader(
        client.invoices.SubscribeSingleInvoice(
            invoices_pb2.SubscribeSingleInvoiceRequest(r_hash=r_hash)
        )
    )


def test_missing_macaroon_is_unauthenticated(lnsim):
    client = lnsim.client("mostro", macaroon=False)
    with pytest.raises(grpc.RpcError) as error:
        get_info(client)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "expected 1 macaroon, got 0" in error.value.details()


def test_another_nodes_macaroon_is_rejected(lnsim):
    client = lnsim.client("mostro", macaroon=False)
    wallet_macaroon = lnsim.wallets[0].macaroon_hex()
    with pytest.raises(grpc.RpcError) as error:
        get_info(client, metadata=[("macaroon", wallet_macaroon)])
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert get_info(client, metadata=[("macaroon", lnsim.mostro.macaroon_hex())]).alias == "mostro"


def test_refuse_the_next_calls_then_recover(lnsim):
    mostro = lnsim.client("mostro")
    lnsim.sim.refuse("AddHoldInvoice", count=2, node="mostro")
    for _ in range(2):
        with pytest.raises(grpc.RpcError) as error:
            add_hold(mostro)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    add_hold(mostro)
    # the switch named one node only
    lnsim.sim.refuse("GetInfo", node="mostro")
    assert get_info(lnsim.client(lnsim.wallets[0])).alias == "wallet1"


def test_refuse_until_cleared(lnsim):
    mostro = lnsim.client("mostro")
    lnsim.sim.refuse("/lnrpc.Lightning/GetInfo")
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as error:
            get_info(mostro)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    lnsim.sim.clear_faults()
    assert get_info(mostro).alias == "mostro"


def test_delay_holds_the_call(lnsim):
    mostro = lnsim.client("mostro")
    get_info(mostro)  # connect first, so only the delay is measured
    lnsim.sim.delay("GetInfo", 300)
    started = time.monotonic()
    get_info(mostro)
    assert time.monotonic() - started >= 0.3
    with pytest.raises(grpc.RpcError) as error:
        mostro.lightning.GetInfo(lightning_pb2.GetInfoRequest(), timeout=0.1)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_drop_streams_ends_them_with_unavailable(lnsim):
    mostro, wallet = lnsim.client("mostro"), lnsim.client(lnsim.wallets[0])
    preimage, r_hash, request = add_hold(mostro)
    events = subscribe(mostro, r_hash)
    assert events.next().state == Invoice.OPEN
    payment = StreamReader(
        wallet.router.SendPaymentV2(router_pb2.SendPaymentRequest(payment_request=request))
    )
    assert payment.next().status == Payment.IN_FLIGHT
    assert events.next().state == Invoice.ACCEPTED

    assert lnsim.sim.drop_streams() == 2
    for stream in (events, payment):
        ended = stream.next()
        assert isinstance(ended, StreamEnded)
        assert ended.code == grpc.StatusCode.UNAVAILABLE
    # the state is untouched: subscribing again starts from it
    assert subscribe(mostro, r_hash).next().state == Invoice.ACCEPTED
    mostro.invoices.SettleInvoice(invoices_pb2.SettleInvoiceMsg(preimage=preimage))
    track = StreamReader(
        wallet.router.TrackPaymentV2(router_pb2.TrackPaymentRequest(payment_hash=r_hash))
    )
    assert track.next().status == Payment.SUCCEEDED


def test_outage_then_restart_keeps_state_and_ports(lnsim):
    mostro = lnsim.client("mostro")
    _, r_hash, _ = add_hold(mostro)
    events = subscribe(mostro, r_hash)
    assert events.next().state == Invoice.OPEN
    address = lnsim.mostro.address

    lnsim.sim.stop_servers()
    assert isinstance(events.next(), StreamEnded)
    with pytest.raises(grpc.RpcError) as error:
        get_info(mostro)
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE

    lnsim.sim.start_servers()
    assert lnsim.mostro.address == address
    invoice = mostro.invoices.LookupInvoiceV2(
        invoices_pb2.LookupInvoiceMsg(payment_hash=r_hash), timeout=5, wait_for_ready=True
    )
    assert invoice.state == Invoice.OPEN

    lnsim.sim.restart()
    assert lnsim.mostro.address == address
    assert get_info(mostro, wait_for_ready=True).identity_pubkey == lnsim.mostro.pubkey


def test_control_service_drives_the_switches(lnsim):
    channel = grpc.insecure_channel(f"127.0.0.1:{lnsim.sim.control_port}")
    control = simrpc_pb2_grpc.SimControlStub(channel)
    try:
        listing = control.ListNodes(simrpc_pb2.ListNodesRequest(), timeout=5)
        names = [node.name for node in listing.nodes]
        assert names == ["mostro", "wallet1", "wallet2"]
        mostro_info = listing.nodes[0]
        client = NodeClient.connect(
            f"{mostro_info.host}:{mostro_info.port}",
            mostro_info.tls_cert_path,
            mostro_info.macaroon_path,
        )
        with client:
            control.Refuse(simrpc_pb2.RefuseRequest(method="GetInfo", count=1), timeout=5)
            with pytest.raises(grpc.RpcError) as error:
                get_info(client)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
            assert get_info(client).alias == "mostro"

            _, r_hash, _ = add_hold(client)
            control.AdvanceClock(simrpc_pb2.AdvanceClockRequest(seconds=86_400), timeout=5)
            state = client.invoices.LookupInvoiceV2(
                invoices_pb2.LookupInvoiceMsg(payment_hash=r_hash), timeout=5
            ).state
            assert state == Invoice.CANCELED

            control.SetBlockHeight(simrpc_pb2.SetBlockHeightRequest(height=321), timeout=5)
            assert get_info(client).block_height == 321
            control.SetBalance(
                simrpc_pb2.SetBalanceRequest(node="wallet2", balance_msat=5_000), timeout=5
            )
            assert lnsim.sim.balance_msat("wallet2") == 5_000
            control.Restart(simrpc_pb2.Empty(), timeout=10)
            assert get_info(client, wait_for_ready=True).alias == "mostro"
    finally:
        channel.close()
