"""Keeps <state-dir>/state.json up to date while the simulator runs.

The ledger is snapshotted under its lock (a shallow copy: records are
immutable), then encoded and written outside the lock, by a background
thread, soon after a change but no more often than the writing itself allows:
the pause between two writes is at least `interval_s` and at least
`cost_factor` times what the last write took, so persisting never takes more
than about 1/cost_factor of a core however large the ledger grows. Records
already encoded for an earlier write are reused. Knows nothing about gRPC.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .ledger import Ledger, snapshot_to_json
from .records import InvoiceRecord, PaymentRecord, invoice_to_json, payment_to_json


def write_json_file(path: Path, data: dict, *, indent: int | None = None) -> None:
    """Writes atomically (a temporary file renamed over the old one)."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    # without indent json uses its C encoder (several times faster for a large ledger)
    temporary.write_text(json.dumps(data, indent=indent, sort_keys=True))
    os.replace(temporary, path)


class _EncodedCache:
    """JSON form of each record, reused while the ledger holds the very same record object."""

    def __init__(self, encode: Callable[[object], dict]):
        self._encode = encode
        self._by_id: dict[int, tuple[object, dict]] = {}

    def __call__(self, record: object) -> dict:
        cached = self._by_id.get(id(record))
        if cached is not None and cached[0] is record:
            return cached[1]
        encoded = self._encode(record)
        self._by_id[id(record)] = (record, encoded)
        return encoded

    def keep_only(self, records: tuple) -> None:
        """Forgets records no longer in the ledger (their ids may be reused)."""
        alive = {id(record) for record in records}
        for stale in [key for key in self._by_id if key not in alive]:
            del self._by_id[stale]


class StateWriter:
    """Writes the ledger to `path` soon after `mark_dirty()`, and on `flush()`/`stop()`."""

    def __init__(
        self,
        ledger: Ledger,
        path: Path,
        *,
        interval_s: float = 0.05,
        cost_factor: float = 20.0,
    ):
        self._ledger = ledger
        self._path = path
        self._interval_s = interval_s
        self._cost_factor = cost_factor
        self._invoice_json: _EncodedCache = _EncodedCache(invoice_to_json)  # type: ignore[arg-type]
        self._payment_json: _EncodedCache = _EncodedCache(payment_to_json)  # type: ignore[arg-type]
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.writes = 0

    def mark_dirty(self) -> None:
        self._dirty.set()

    def flush(self) -> float:
        """Writes now; returns how long it took (seconds)."""
        with self._lock:
            started = time.perf_counter()
            self._dirty.clear()
            snapshot = self._ledger.snapshot()
            data = snapshot_to_json(snapshot, self._encode_invoice, self._encode_payment)
            self._invoice_json.keep_only(snapshot.invoices)
            self._payment_json.keep_only(snapshot.payments)
            write_json_file(self._path, data)
            self.writes += 1
            return time.perf_counter() - started

    def _encode_invoice(self, invoice: InvoiceRecord) -> dict:
        return self._invoice_json(invoice)

    def _encode_payment(self, payment: PaymentRecord) -> dict:
        return self._payment_json(payment)

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="lnsim-state", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while True:
            self._dirty.wait()
            if self._stopping.is_set():
                return
            took = self.flush()
            if self._stopping.wait(max(self._interval_s, self._cost_factor * took)):
                return
