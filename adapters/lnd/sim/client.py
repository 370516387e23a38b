"""A small client for one LND-protocol endpoint (simulated or real): a TLS
channel carrying the macaroon, the three stubs, and a reader that collects a
server stream in a background thread so callers can wait with a timeout.

For tests, tools and devnet checks; the daemon's LightningAdapter has its own
client. Must not know about the simulator's internals.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from adapters.lnd.protos import (
    invoices_pb2_grpc,
    lightning_pb2_grpc,
    router_pb2_grpc,
)


class _MacaroonAuth(grpc.AuthMetadataPlugin):
    def __init__(self, macaroon_hex: str):
        self._macaroon_hex = macaroon_hex

    def __call__(self, context, callback):
        callback((("macaroon", self._macaroon_hex),), None)


def secure_channel(address: str, tls_cert_pem: bytes, macaroon_hex: str | None) -> grpc.Channel:
    """A channel that pins the node's certificate and sends the macaroon (if any) on every call."""
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_cert_pem)
    if macaroon_hex is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.metadata_call_credentials(_MacaroonAuth(macaroon_hex))
        )
    return grpc.secure_channel(address, credentials)


@dataclass
class NodeClient:
    """Stubs for one node; close() when done (or use it as a context manager)."""

    channel: grpc.Channel
    lightning: lightning_pb2_grpc.LightningStub
    invoices: invoices_pb2_grpc.InvoicesStub
    router: router_pb2_grpc.RouterStub

    @classmethod
    def connect(cls, address: str, tls_cert_path: Path, macaroon_path: Path | None) -> NodeClient:
        macaroon_hex = None if macaroon_path is None else Path(macaroon_path).read_bytes().hex()
        channel = secure_channel(address, Path(tls_cert_path).read_bytes(), macaroon_hex)
        return cls(
            channel=channel,
            lightning=lightning_pb2_grpc.LightningStub(channel),
            invoices=invoices_pb2_grpc.InvoicesStub(channel),
            router=router_pb2_grpc.RouterStub(channel),
        )

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> NodeClient:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class StreamEnded:
    """The last item a StreamReader yields: how the stream ended (code None: cleanly)."""

    def __init__(self, code: grpc.StatusCode | None, details: str):
        self.code = code
        self.details = details

    def __repr__(self) -> str:
        return f"StreamEnded({self.code}, {self.details!r})"


class StreamReader:
    """Reads a gRPC server stream in a thread; `next(timeout)` waits for the next item."""

    def __init__(self, stream):
        self._stream = stream
        self._items: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="stream-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._stream:
                self._items.put(item)
            self._items.put(StreamEnded(None, ""))
        except grpc.RpcError as error:
            self._items.put(StreamEnded(error.code(), error.details() or ""))

    def next(self, timeout: float = 5.0):
        """The next message or StreamEnded; raises queue.Empty on timeout."""
        return self._items.get(timeout=timeout)

    def cancel(self) -> None:
        self._stream.cancel()
        self._thread.join(timeout=5)
