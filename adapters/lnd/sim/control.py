"""The simulator's control service (simrpc.SimControl) on its own plaintext
port: lets another process switch faults, move the clock and chain, and
restart the node servers. Loopback only; it has no authentication.

Only translates requests into calls on the Simulator object. Served by
grpc.aio on the simulator's loop; Restart (which waits for the node servers
on that same loop) runs in a worker thread so the loop stays free.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import grpc

from adapters.lnd.protos import simrpc_pb2, simrpc_pb2_grpc

if TYPE_CHECKING:
    from .simulator import Simulator


class SimControlService(simrpc_pb2_grpc.SimControlServicer):
    def __init__(self, simulator: Simulator):
        self._sim = simulator

    async def ListNodes(self, request, context):
        nodes = []
        for endpoint in self._sim.endpoints().values():
            nodes.append(
                simrpc_pb2.NodeInfo(
                    name=endpoint.name,
                    identity_pubkey=endpoint.pubkey,
                    host=endpoint.host,
                    port=endpoint.port,
                    tls_cert_path=str(endpoint.tls_cert_path),
                    macaroon_path=str(endpoint.macaroon_path),
                    balance_msat=self._sim.balance_msat(endpoint.name),
                )
            )
        return simrpc_pb2.ListNodesResponse(
            nodes=nodes,
            block_height=self._sim.ledger.block_height,
            clock_now=self._sim.ledger.clock.now(),
        )

    async def Refuse(self, request, context):
        self._sim.refuse(request.method, request.count, request.node)
        return simrpc_pb2.Empty()

    async def Delay(self, request, context):
        self._sim.delay(request.method, request.delay_ms, request.node)
        return simrpc_pb2.Empty()

    async def ClearFaults(self, request, context):
        self._sim.clear_faults()
        return simrpc_pb2.Empty()

    async def DropStreams(self, request, context):
        self._sim.drop_streams()
        return simrpc_pb2.Empty()

    async def Restart(self, request, context):
        await asyncio.to_thread(self._sim.restart)
        return simrpc_pb2.Empty()

    async def AdvanceClock(self, request, context):
        if request.seconds < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the clock only moves forward")
        return simrpc_pb2.ClockResponse(now=self._sim.advance_clock(request.seconds))

    async def SetBlockHeight(self, request, context):
        self._sim.set_block_height(request.height)
        return simrpc_pb2.Empty()

    async def SetBalance(self, request, context):
        if request.node not in self._sim.endpoints():
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no node named {request.node!r}")
        self._sim.set_balance(request.node, request.balance_msat)
        return simrpc_pb2.Empty()


async def start_control_server(
    simulator: Simulator, host: str, port: int
) -> tuple[grpc.aio.Server, int]:
    """Starts the control server on the running loop; returns it and the port it listens on."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    simrpc_pb2_grpc.add_SimControlServicer_to_server(SimControlService(simulator), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server, bound
