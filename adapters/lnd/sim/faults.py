"""Fault switches for the simulator's node servers, and the gRPC interceptor
that applies them together with the macaroon check.

A switch names an RPC by its short ("AddHoldInvoice") or full
("/invoicesrpc.Invoices/AddHoldInvoice") name, for one node or every node
(node ""). Refuse answers UNAVAILABLE for the next N calls (0: until
cleared); delay holds each call for X ms before handling it. This module
must not know about invoices or payments.

The gate is a grpc.aio interceptor: a delay waits with asyncio.sleep, so a
slowed call does not hold up the other calls on the simulator's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass

import grpc

ALL_NODES = ""
UNTIL_CLEARED = 0


def short_method_name(method: str) -> str:
    return method.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class FaultDecision:
    delay_s: float
    refuse: bool


class FaultSwitches:
    """Thread-safe table of refuse and delay switches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refusals: dict[tuple[str, str], int | None] = {}  # None: until cleared
        self._delays: dict[tuple[str, str], float] = {}

    def refuse(self, method: str, count: int = UNTIL_CLEARED, node: str = ALL_NODES) -> None:
        with self._lock:
            key = (node, short_method_name(method))
            self._refusals[key] = None if count == UNTIL_CLEARED else count

    def delay(self, method: str, delay_ms: int, node: str = ALL_NODES) -> None:
        with self._lock:
            key = (node, short_method_name(method))
            if delay_ms <= 0:
                self._delays.pop(key, None)
            else:
                self._delays[key] = delay_ms / 1000

    def clear(self) -> None:
        with self._lock:
            self._refusals.clear()
            self._delays.clear()

    def decide(self, node: str, method: str) -> FaultDecision:
        """What to do with one call; consumes one refusal if one applies."""
        name = short_method_name(method)
        with self._lock:
            delay = max(self._delays.get((n, name), 0.0) for n in (node, ALL_NODES))
            for key in ((node, name), (ALL_NODES, name)):
                if key in self._refusals:
                    remaining = self._refusals[key]
                    if remaining is not None:
                        if remaining <= 1:
                            del self._refusals[key]
                        else:
                            self._refusals[key] = remaining - 1
                    return FaultDecision(delay, True)
            return FaultDecision(delay, False)


class NodeGate(grpc.aio.ServerInterceptor):
    """Checks the macaroon, then applies the fault switches, for one node's server.

    Missing or wrong macaroon → UNAUTHENTICATED with LND's texts.
    """

    def __init__(self, node: str, macaroon_hex: Callable[[], str], faults: FaultSwitches):
        self._node = node
        self._macaroon_hex = macaroon_hex
        self._faults = faults
        self._gated: dict[str, grpc.RpcMethodHandler] = {}  # per method, built once

    async def _admit(self, method: str, context: grpc.aio.ServicerContext) -> None:
        """Returns if the call may go on; otherwise aborts it (which raises)."""
        metadata = context.invocation_metadata() or ()
        sent = [value for key, value in metadata if key == "macaroon"]
        if len(sent) != 1:
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED, f"expected 1 macaroon, got {len(sent)}"
            )
        if str(sent[0]).strip().lower() != self._macaroon_hex():
            await context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "verification failed: signature mismatch after caveat verification",
            )
        decision = self._faults.decide(self._node, method)
        if decision.delay_s:
            await asyncio.sleep(decision.delay_s)  # the simulated slowness itself
        if decision.refuse:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"simulated outage: {short_method_name(method)} refused by the simulator",
            )

    async def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        gated = self._gated.get(method)
        if gated is None:
            gated = self._gate(method, await continuation(handler_call_details))
            if gated is not None:  # unknown methods are not remembered
                self._gated[method] = gated
        return gated

    def _gate(self, method: str, handler: grpc.RpcMethodHandler | None):
        """The method's handler wrapped so every call is admitted first."""
        if handler is None:
            return None
        if handler.unary_unary is not None:
            inner_unary = handler.unary_unary

            async def unary(request, context):
                await self._admit(method, context)
                return await inner_unary(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request, context):
                await self._admit(method, context)
                async for item in inner_stream(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler
