"""One worker process that runs a pure check over batches of inbound events, beside the actors.

The Nostr adapter's IO (`nostr_io.LocalIO`, in the adapter's process or in its relay host)
hands it the events its relay pool read (`submit`, one batch per pool loop iteration); a thread
of that process (`nostr-check-link`) sends them to the worker, waits for one result per event
and hands `(item, result)` pairs, in submission order, to the `deliver` callback. The same class
runs the sign worker (`signing.Signing`). The check itself is built inside the worker by a
picklable factory, so this module does not know what it computes.

The worker is a fresh interpreter (`python -m adapters.nostr.check_worker`, started at the first
batch: an adapter that never receives an event pays nothing), talking over one socket pair. It
exits on EOF of that socket, so it never outlives the adapter's process, even one killed with
SIGKILL. A fresh interpreter rather than multiprocessing's "spawn" context: that context starts
a resource-tracker process for the parent (which would outlive the adapter) and re-imports the
parent's `__main__`; this needs neither.

If the worker cannot start, dies, answers wrongly or hangs, that is logged once, the worker is
stopped and every result from then on is None: the consumer computes them itself (nothing lost,
nothing waits forever). It must not drop, reorder or hold events beyond one batch's round trip.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)

# What the worker runs: `factory()` is called once in the worker and returns check(event, now).
CheckFactory = Callable[[], Callable[[dict[str, Any], int], Any]]
Deliver = Callable[[list[tuple[Any, Any]]], None]

START_TIMEOUT = 30.0  # seconds for a fresh interpreter to import the check and say ready
BATCH_TIMEOUT = 30.0  # seconds without an answer to one batch before the worker counts as hung
# at most this many events per round trip: a burst of 200 requests checked as one batch kept
# the actors idle for its whole ~75 ms in benchmark (2); in pieces the first results arrive
# after a quarter of that, and 64 is what the intake takes in one transaction anyway
MAX_BATCH = 64
_STOP = object()
_READY = "ready"


class CheckWorker:
    """See the module docstring. `submit` and `stop` are thread-safe; `deliver` runs on the
    link thread."""

    def __init__(self, factory: CheckFactory, deliver: Deliver,
                 batch_timeout: float = BATCH_TIMEOUT, role: str = "check") -> None:
        self._factory = factory
        self._role = role  # last word of the worker's command line: which worker `ps` shows
        self._deliver = deliver
        self._batch_timeout = batch_timeout
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._failed = False
        self._stopped = False

    @property
    def failed(self) -> bool:
        """True once the worker broke: results are None from then on."""
        return self._failed

    @property
    def pid(self) -> int | None:
        """The worker process's pid while it runs (tests and benchmarks)."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def submit(self, batch: Sequence[tuple[Any, dict[str, Any]]]) -> None:
        """Queue `(item, event)` pairs; their `(item, result)` pairs reach `deliver` in order."""
        if not batch:
            return
        with self._lock:
            if self._stopped:
                raise RuntimeError("the check worker is stopped")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="nostr-check-link", daemon=True)
                self._thread.start()
            self._queue.put(list(batch))

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what was submitted, then end the worker and the link thread."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout)
        self._end_process()

    # --- the link thread ----------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            pairs: list[tuple[Any, dict[str, Any]]] = []
            item = self._queue.get()
            while True:  # everything queued meanwhile goes as one batch
                if item is _STOP:
                    stopping = True
                    break
                pairs.extend(item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            for first in range(0, len(pairs), MAX_BATCH):
                piece = pairs[first:first + MAX_BATCH]
                results = self._check([event for _, event in piece])
                try:
                    self._deliver([(key, result) for (key, _), result in zip(piece, results, strict=True)])
                except Exception:  # noqa: BLE001 - the link must keep serving later batches
                    log.exception("check worker: delivering %d results failed", len(piece))
        self._end_process()

    def _check(self, events: list[dict[str, Any]]) -> list[Any]:
        if self._failed:
            return [None] * len(events)
        try:
            conn = self._connection()
            conn.send((int(time.time()), events))
            if not conn.poll(self._batch_timeout):
                raise TimeoutError(f"no answer in {self._batch_timeout} s")
            results = conn.recv()
            if not isinstance(results, list) or len(results) != len(events):
                raise ValueError(f"answered {type(results).__name__} for {len(events)} events")
            return results
        except Exception as exc:  # noqa: BLE001 - any failure: check inline from now on
            self._failed = True
            log.error("check worker failed (%s: %s); checking events inline from now on",
                      type(exc).__name__, exc)
            self._end_process()
            return [None] * len(events)

    def _connection(self) -> Connection:
        if self._conn is not None:
            return self._conn
        self._process, conn = start_child(__name__, self._role)
        self._conn = conn
        conn.send_bytes(pickle.dumps(self._factory))
        if not conn.poll(START_TIMEOUT):
            raise TimeoutError(f"the worker did not start in {START_TIMEOUT} s")
        answer = conn.recv()
        if answer != _READY:
            raise RuntimeError(f"the worker did not start: {answer!r}")
        return conn

    def _end_process(self) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            conn.close()  # the worker sees EOF and exits
        if process is not None:
            try:
                process.wait(2.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_child(module: str, *args: str) -> tuple[subprocess.Popen[bytes], Connection]:
    """`python -m module <fd> *args`, a fresh interpreter holding one end of a new socket pair
    (fd); the other end is returned. The child sees EOF when this process closes it or dies."""
    ours, theirs = socket.socketpair()
    try:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(path or os.getcwd() for path in sys.path)
        process = subprocess.Popen(
            [sys.executable, "-m", module, str(theirs.fileno()), *args],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()  # kept open here, a dead child would never read as EOF
    return process, Connection(ours.detach())


# --- the worker process ----------------------------------------------------------------------


def serve(conn: Connection) -> None:
    """The worker's loop: build the check, then answer batches until EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon's Ctrl-C is its parent's to handle
    try:
        check = pickle.loads(conn.recv_bytes())()
    except EOFError:
        return
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which falls back
        conn.send(f"{type(exc).__name__}: {exc}")
        return
    conn.send(_READY)
    while True:
        try:
            now, events = conn.recv()
        except EOFError:
            return  # the parent closed the socket or died
        results = []
        for event in events:
            try:
                results.append(check(event, now))
            except Exception:  # noqa: BLE001 - a bug on one event: the parent checks it inline
                log.exception("check failed on event %s", str(event.get("id"))[:16])
                results.append(None)
        try:
            conn.send(results)
        except OSError:
            return


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    serve(Connection(int(sys.argv[1])))
