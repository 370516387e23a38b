"""Many simultaneous Lightning payments from one asyncio loop (benchmarks).

A take storm has hundreds of payers whose `SendPaymentV2` streams stay open while their HTLCs
are held. A thread per stream (`crowd.pay_timed`) costs the benchmark's own process wake-ups
and GIL churn that blur the very timestamps it measures; `Payers` runs every stream as a
coroutine on one loop thread over grpc.aio channels (one per wallet) and stamps each status into
its `TimedPayment` with `time.perf_counter()` as it arrives, as `pay_timed` does.

Speaks only LND's API; knows nothing about Mostro.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import grpc

from adapters.lnd.protos import router_pb2, router_pb2_grpc
from adapters.lnd.sim.aio_bridge import LoopThread
from bench.crowd import TimedPayment

_STATUS = {0: "UNKNOWN", 1: "IN_FLIGHT", 2: "SUCCEEDED", 3: "FAILED", 4: "INITIATED"}


class WalletEndpoint(Protocol):
    address: str
    tls_cert_path: Path
    macaroon_path: Path


class _Wallet:
    """One wallet's channel and stub; created on the loop (grpc.aio channels belong to it)."""

    def __init__(self, endpoint: WalletEndpoint):
        credentials = grpc.ssl_channel_credentials(
            root_certificates=Path(endpoint.tls_cert_path).read_bytes())
        self.channel = grpc.aio.secure_channel(endpoint.address, credentials)
        self.router = router_pb2_grpc.RouterStub(self.channel)
        self.metadata = (("macaroon", Path(endpoint.macaroon_path).read_bytes().hex()),)


class Payers:
    """Pays from `wallets` (simulated or real LND endpoints); `close()` when done."""

    def __init__(self, wallets: Sequence[WalletEndpoint], fee_limit_sat: int = 1000):
        self._endpoints = list(wallets)
        self._fee_limit_sat = fee_limit_sat
        self._loop = LoopThread("bench-payers")
        self._wallets: list[_Wallet] = self._loop.run(self._open())
        self._tasks: set[asyncio.Task] = set()

    async def _open(self) -> list[_Wallet]:
        return [_Wallet(endpoint) for endpoint in self._endpoints]

    def pay_all(self, payments: Sequence[TimedPayment], timeout_seconds: int = 60) -> None:
        """Starts every payment at once (payment i from wallet i mod W) and returns; each
        `TimedPayment` fills in as its stream reports, and its `done` is set when it ends."""
        self._loop.run(self._start(list(payments), timeout_seconds))

    async def _start(self, payments: list[TimedPayment], timeout_seconds: int) -> None:
        for index, payment in enumerate(payments):
            wallet = self._wallets[index % len(self._wallets)]
            task = asyncio.create_task(self._pay(wallet, payment, timeout_seconds))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pay(self, wallet: _Wallet, payment: TimedPayment, timeout_seconds: int) -> None:
        payment.sent_at = time.perf_counter()
        call = wallet.router.SendPaymentV2(
            router_pb2.SendPaymentRequest(payment_request=payment.payment_request,
                                          timeout_seconds=timeout_seconds,
                                          fee_limit_sat=self._fee_limit_sat),
            metadata=wallet.metadata)
        try:
            async for update in call:
                status = _STATUS.get(update.status, str(update.status))
                payment.statuses.setdefault(status, time.perf_counter())
                if status == "FAILED":
                    payment.failure = str(update.failure_reason)
        except grpc.aio.AioRpcError as error:
            payment.statuses.setdefault("FAILED", time.perf_counter())
            payment.failure = error.details() or str(error.code())
        finally:
            payment.done.set()

    def close(self) -> None:
        """Ends open streams (a held payment stays held on the node) and the loop."""
        if self._loop.loop.is_closed():
            return
        self._loop.run(self._close())
        self._loop.close()

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for wallet in self._wallets:
            await wallet.channel.close()
