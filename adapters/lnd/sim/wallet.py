"""A user's Lightning wallet, driven through LND's own API (tests, devnet demo, benches).

Paying a hold invoice keeps the payer's ``SendPaymentV2`` stream open while the
HTLC is held, exactly as with a real LND, so the wallet reads each payment's
stream in a thread and remembers the latest status.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from adapters.lnd.protos import lightning_pb2, router_pb2

from .client import NodeClient

_STATUS = {0: "UNKNOWN", 1: "IN_FLIGHT", 2: "SUCCEEDED", 3: "FAILED", 4: "INITIATED"}


@dataclass
class Payment:
    """One outgoing payment, updated by its stream thread."""

    payment_request: str
    status: str = "PENDING"
    preimage: str = ""
    failure: str = ""
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def _update(self, status: str, preimage: str = "", failure: str = "") -> None:
        with self._changed:
            self.status, self.preimage, self.failure = status, preimage or self.preimage, failure
            self._changed.notify_all()

    def wait_for(self, *statuses: str, timeout: float = 10.0) -> str:
        """Block until the status is one of `statuses`; return it (raise on timeout)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.status not in statuses:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"payment stayed {self.status}, wanted {statuses}")
                self._changed.wait(remaining)
            return self.status


class Wallet:
    """One simulated node used as a person's wallet."""

    def __init__(self, address: str, tls_cert_path: Path, macaroon_path: Path) -> None:
        self.client = NodeClient.connect(address, tls_cert_path, macaroon_path)

    @classmethod
    def of(cls, endpoint: object) -> Wallet:
        return cls(endpoint.address, endpoint.tls_cert_path, endpoint.macaroon_path)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.client.close()

    def invoice(self, amount_sat: int, memo: str = "", expiry: int = 7200) -> str:
        """An ordinary invoice for receiving (the buyer's payout invoice)."""
        reply = self.client.lightning.AddInvoice(
            lightning_pb2.Invoice(memo=memo, value=amount_sat, expiry=expiry), timeout=10)
        return reply.payment_request

    def pay(self, payment_request: str, fee_limit_sat: int = 1000, timeout_seconds: int = 60) -> Payment:
        """Start paying; the returned Payment follows the stream (IN_FLIGHT while held)."""
        payment = Payment(payment_request)
        stream = self.client.router.SendPaymentV2(router_pb2.SendPaymentRequest(
            payment_request=payment_request, timeout_seconds=timeout_seconds,
            fee_limit_sat=fee_limit_sat))

        def follow() -> None:
            try:
                for update in stream:
                    payment._update(_STATUS.get(update.status, str(update.status)),
                                    update.payment_preimage, str(update.failure_reason))
            except grpc.RpcError as error:
                payment._update("FAILED", failure=error.details() or str(error.code()))

        threading.Thread(target=follow, name="wallet-payment", daemon=True).start()
        return payment
