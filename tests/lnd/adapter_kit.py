"""Helpers the LightningAdapter tests share: an `Inbox` that pumps a simpleSystemBase system
until the adapter's answer arrives, predicates on its messages, and the adapter's `Configure`
for a simulated node. The fixtures built on them live in tests/lnd/conftest.py."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from thespian.actors import ActorSystem

from adapters.lnd.client import ConnectionSettings, LndClient
from adapters.lnd.messages import (
    AddHoldInvoice,
    Configure,
    EffectDone,
    EffectFailed,
    InvoiceState,
    InvoiceStateChanged,
)


class Inbox:
    """Everything the adapter sent to the test (its owner), gathered by pumping `listen`."""

    def __init__(self, asys: ActorSystem) -> None:
        self.asys = asys
        self.got: list[Any] = []

    def pump(self, seconds: float) -> None:
        message = self.asys.listen(timedelta(seconds=seconds))
        if message is not None:
            self.got.append(message)

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for message in self.got[checked:]:
                if predicate(message):
                    return message
            checked = len(self.got)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; received {self.got!r}")
            self.pump(min(remaining, 0.5))

    def until(self, condition: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Keep the actors running until something outside the inbox holds."""
        deadline = time.monotonic() + timeout
        while not (value := condition()):
            assert time.monotonic() < deadline, "timed out waiting for a condition"
            self.pump(0.05)
        return value

    def of_type(self, kind: type) -> list[Any]:
        return [m for m in self.got if isinstance(m, kind)]

    def states(self, hash_hex: str) -> list[InvoiceState]:
        return [m.state for m in self.of_type(InvoiceStateChanged) if m.hash_hex == hash_hex]


def state_is(hash_hex: str, state: InvoiceState) -> Callable[[Any], bool]:
    return lambda m: (
        isinstance(m, InvoiceStateChanged) and m.hash_hex == hash_hex and m.state is state
    )


def effect(effect_id: Any) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, EffectDone | EffectFailed) and m.effect_id == effect_id


def new_preimage() -> tuple[str, str]:
    preimage = secrets.token_bytes(32)
    return preimage.hex(), hashlib.sha256(preimage).hexdigest()


def configure_for(endpoint, **overrides) -> Configure:
    values = {
        "host": endpoint.address,
        "tls_cert_path": str(endpoint.tls_cert_path),
        "macaroon_path": str(endpoint.macaroon_path),
        "expected_network": "regtest",
        "rpc_timeout_seconds": 3.0,
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.5,
    }
    values.update(overrides)
    return Configure(**values)


def lnd_client(endpoint) -> LndClient:
    client = LndClient.connect(
        ConnectionSettings(
            endpoint.address, str(endpoint.tls_cert_path), str(endpoint.macaroon_path)
        )
    )
    assert isinstance(client, LndClient)
    return client


def add_invoice(asys, adapter, inbox, value_sat=5000, expiry=3600, effect_id=None):
    preimage, payment_hash = new_preimage()
    effect_id = effect_id or f"add-{payment_hash[:8]}"
    asys.tell(adapter, AddHoldInvoice(payment_hash, value_sat, "escrow", expiry, 144, effect_id))
    done = inbox.wait_for(effect(effect_id))
    assert isinstance(done, EffectDone), done
    inbox.wait_for(state_is(payment_hash, InvoiceState.OPEN))
    return preimage, payment_hash, done.payment_request
