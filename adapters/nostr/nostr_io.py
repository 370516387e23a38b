"""The Nostr adapter's input and output: relay connections, the inbound check, the signing.

`LocalIO` runs them in the adapter's process: the relay pool's thread, the check worker and the
sign worker with their link threads. `HostedIO` runs a `LocalIO` in a child process of its own
(`python -m adapters.nostr.nostr_io`), so the adapter's process keeps one link thread. Why: on
simpleSystemBase every actor runs on one thread of the adapter's process, and each of those
threads took the GIL from it. In benchmark (2), 25 µs more of them per relay message (+0.08 ms
of GIL time per request) cost 15 % of the requests per second; they used ≈ 0.15 ms per request.

Both hand what they read to `put` (the adapter's `ThreadBridge.put`): lists of `Received`
(the events of one pool loop iteration, each with its check result when a check worker ran),
`PublishOutcome`s and `RelayStatusChange`s. `HostedIO` sends them over a socket pair in batches
and puts them on its reader thread. If the child process dies, that is logged once, the
publications it had not answered are reported rejected (the outbox sends them again) and a
`LocalIO` takes over in the adapter's process, with the same subscriptions: nothing is lost,
only the separation.

It must not interpret events or publications: it moves them.
"""

from __future__ import annotations

import itertools
import logging
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from adapters.nostr.check_worker import START_TIMEOUT, CheckWorker, start_child
from adapters.nostr.relay_pool import (
    PoolSettings,
    PublishOutcome,
    RelayPool,
    Rendered,
    Subscription,
    verify_event,
)
from adapters.nostr.signing import Signing
from adapters.nostr.unsigned import Unsigned

log = logging.getLogger(__name__)

Put = Callable[[Any], None]
STOP_TIMEOUT = 10.0  # seconds the child gets to answer what it has and exit


class Received:
    """An event a relay sent, on its way to the actor thread (with its check result, if any)."""

    __slots__ = ("event", "relay_url", "received_at", "precheck")

    def __init__(self, event: dict[str, Any], relay_url: str, received_at: float) -> None:
        self.event = event
        self.relay_url = relay_url
        self.received_at = received_at
        self.precheck: Any = None


@dataclass(frozen=True)
class IOConfig:
    """What the IO is built from (picklable: it crosses to the child process)."""

    relays: tuple[str, ...]
    pool_settings: PoolSettings | None = None
    precheck_factory: Any = None  # intake_precheck.IntakePrecheck: events go through a worker
    signer_factory: Any = None  # unsigned.SignerFactory: descriptions are signed in a worker


class LocalIO:
    """Relays, check and signing in this process; see the module docstring."""

    def __init__(self, config: IOConfig, put: Put, seen: Any = None) -> None:
        checker = None
        if config.precheck_factory is not None:

            def checked(pairs: list[tuple[Received, Any]]) -> None:
                authentic = [received.event["id"] for received, result in pairs
                             if getattr(result, "authentic", False)]
                try:
                    pool.remember(authentic)
                except RuntimeError:  # the pool is stopping: nothing more to de-duplicate
                    pass
                for received, result in pairs:
                    received.precheck = result
                put([received for received, _ in pairs])

            checker = CheckWorker(config.precheck_factory, checked, role="intake-check")

        def on_events(events: list[tuple[dict[str, Any], str]]) -> None:
            now = time.time()
            received = [Received(event, url, now) for event, url in events]
            if checker is None:
                put(received)
            else:
                checker.submit([(item, item.event) for item in received])

        pool = RelayPool(
            config.relays, on_event=None, on_events=on_events, on_published=put, on_status=put,
            seen=seen,
            # with a check worker, ids and signatures are checked there
            verify=verify_event if checker is None else None,
            settings=config.pool_settings,
        )
        pool.start()
        self._pool, self._checker = pool, checker
        self._signing = (Signing(config.signer_factory, pool, put)
                         if config.signer_factory is not None else None)
        self.urls = pool.urls
        self.verifies = checker is None  # else the events come checked by the worker
        self.signs = self._signing is not None

    def subscribe(self, subscription: Subscription) -> None:
        self._pool.subscribe(subscription)

    def unsubscribe(self, sub_id: str) -> None:
        self._pool.unsubscribe(sub_id)

    def feed(self, url: str, texts: Sequence[str]) -> None:
        self._pool.feed(url, *texts)

    def publish(self, items: Sequence[tuple[Rendered, Any]]) -> None:
        self._pool.publish_many(items)

    def sign_and_publish(self, items: Sequence[tuple[Unsigned, Any]]) -> None:
        assert self._signing is not None
        self._signing.publish(items)

    def stop(self) -> None:
        """Sign and publish what was handed over, close the relays, deliver what the check
        worker still holds."""
        if self._signing is not None:
            self._signing.stop()
        self._pool.stop()
        if self._checker is not None:
            self._checker.stop()


class HostedIO:
    """A `LocalIO` in a child process; see the module docstring. Its methods are called from
    the adapter's thread; outcomes and events reach `put` on the reader thread."""

    def __init__(self, config: IOConfig, put: Put) -> None:
        self._config = config
        self._put = put
        self._lock = threading.Lock()
        self._subscriptions: dict[str, Subscription] = {}
        # publications sent to the child and not answered yet: sequence number -> caller's token
        self._pending: dict[int, Any] = {}
        self._numbers = itertools.count()
        self._local: LocalIO | None = None
        self._stopping = False
        self._process, self._conn = start_child(__name__)
        try:
            self.urls: tuple[str, ...] = self._started(config)
        except BaseException:
            self._end_process()
            raise
        self.verifies = config.precheck_factory is None
        self.signs = config.signer_factory is not None
        self._reader = threading.Thread(target=self._read, name="nostr-io-link", daemon=True)
        self._reader.start()

    def _started(self, config: IOConfig) -> tuple[str, ...]:
        """Send the config; wait for "ready" (what the relays report meanwhile is put)."""
        self._conn.send_bytes(pickle.dumps(config))
        deadline = time.monotonic() + START_TIMEOUT
        while self._conn.poll(max(0.0, deadline - time.monotonic())):
            answer = self._conn.recv()
            if isinstance(answer, tuple) and answer[0] == "ready":
                return tuple(answer[1])
            if not (isinstance(answer, tuple) and answer[0] == "items"):
                raise RuntimeError(f"the relay host did not start: {answer!r}")
            for item in answer[1]:
                self._put(item)
        raise TimeoutError(f"the relay host did not start in {START_TIMEOUT} s")

    @property
    def pid(self) -> int | None:
        """The child's pid while it serves (tests)."""
        return None if self._local is not None or self._process is None else self._process.pid

    def subscribe(self, subscription: Subscription) -> None:
        with self._lock:  # a take-over on the reader thread re-subscribes from this table
            self._subscriptions[subscription.sub_id] = subscription
        self._command("subscribe", subscription)

    def unsubscribe(self, sub_id: str) -> None:
        with self._lock:
            self._subscriptions.pop(sub_id, None)
        self._command("unsubscribe", sub_id)

    def feed(self, url: str, texts: Sequence[str]) -> None:
        if url not in self.urls:
            raise KeyError(url)
        self._command("feed", url, tuple(texts))

    def publish(self, items: Sequence[tuple[Rendered, Any]]) -> None:
        self._publish("publish", items)

    def sign_and_publish(self, items: Sequence[tuple[Unsigned, Any]]) -> None:
        self._publish("sign_and_publish", items)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            local = self._local
            if local is None:
                try:
                    self._conn.send(("stop", ()))
                except OSError:
                    pass
        if local is not None:
            local.stop()
        else:
            self._reader.join(STOP_TIMEOUT)
        self._end_process()  # after a take-over: reaps the dead child

    # --- inside -------------------------------------------------------------------------------

    def _publish(self, command: str, items: Sequence[tuple[Any, Any]]) -> None:
        with self._lock:
            if self._local is None:
                numbered = []
                for item, token in items:
                    number = next(self._numbers)
                    self._pending[number] = token
                    numbered.append((item, number))
                if self._send(command, numbered):
                    return
                for _, number in numbered:  # the child is gone: the take-over answers them
                    self._pending.pop(number, None)
        getattr(self._local_io(), command)(items)

    def _command(self, command: str, *args: Any) -> None:
        with self._lock:
            if self._local is None and self._send(command, *args):
                return
        getattr(self._local_io(), command)(*args)

    def _send(self, command: str, *args: Any) -> bool:
        try:
            self._conn.send((command, args))
            return True
        except OSError:
            return False

    def _read(self) -> None:
        while True:
            try:
                kind, items = self._conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # noqa: BLE001 - garbled: end the child, serve from here
                log.exception("the relay host sent what cannot be read")
                self._conn.close()
                break
            if kind == "stopped":
                return
            for item in items:
                self._put(self._token_restored(item))
        self._taken_over()

    def _token_restored(self, item: Any) -> Any:
        if not isinstance(item, PublishOutcome):
            return item
        with self._lock:
            token = self._pending.pop(item.token, None)
        # built directly: `dataclasses.replace` costs three times as much, on a thread that
        # competes with the actors' for the interpreter lock (~2.3 outcomes per request)
        return PublishOutcome(item.event_id, token, item.accepted_by, item.rejected,
                              item.timed_out)

    def _taken_over(self) -> None:
        """The child died: report its unanswered publications rejected, serve from here."""
        with self._lock:
            if self._stopping:
                return
            pending, self._pending = list(self._pending.values()), {}
        log.error("the relay host process exited; relays, checks and signing run in the "
                  "adapter's process from now on (%d publications to send again)", len(pending))
        for token in pending:
            self._put(PublishOutcome("", token, (), (("", "the relay host process exited"),), ()))
        self._local_io()

    def _local_io(self) -> LocalIO:
        with self._lock:
            if self._local is None:
                self._local = LocalIO(self._config, self._put)
                for subscription in self._subscriptions.values():
                    self._local.subscribe(subscription)
            return self._local

    def _end_process(self) -> None:
        self._conn.close()
        try:
            self._process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:  # it did not exit in time: end it
            self._process.kill()
            self._process.wait()


# --- the child process -----------------------------------------------------------------------


class _Sender:
    """The child's only writer to the parent: what the IO puts goes out with everything queued
    meanwhile as one message; `control` messages go out as they are, in queue order."""

    _CLOSE = object()

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._items: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="nostr-io-sender", daemon=True)
        self._thread.start()

    def put(self, item: Any) -> None:
        self._items.put(item)

    def control(self, message: tuple[str, Any]) -> None:
        self._items.put(_Control(message))

    def close(self) -> None:
        self._items.put(self._CLOSE)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._items.get()
            batch: list[Any] = []
            while not isinstance(item, _Control) and item is not self._CLOSE:
                batch.append(item)
                try:
                    item = self._items.get_nowait()
                except queue.Empty:
                    item = None
                    break
            try:
                if batch:
                    self._conn.send(("items", batch))
                if isinstance(item, _Control):
                    self._conn.send(item.message)
            except OSError:
                return
            if item is self._CLOSE:
                return


@dataclass(frozen=True)
class _Control:
    message: tuple[str, Any]


def serve(conn: Connection) -> None:
    """The child's loop: build the IO, then run the parent's commands until stop or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon's Ctrl-C is its parent's to handle
    try:
        config = pickle.loads(conn.recv_bytes())
    except EOFError:
        return
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which gives up
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    sender = _Sender(conn)
    try:
        io = LocalIO(config, sender.put)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which gives up
        sender.control(("failed", f"{type(exc).__name__}: {exc}"))
        sender.close()
        return
    sender.control(("ready", io.urls))
    while True:
        try:
            command, args = conn.recv()
        except (EOFError, OSError):
            command, args = "stop", ()
        if command == "stop":
            break
        try:
            getattr(io, command)(*args)
        except Exception:  # noqa: BLE001 - one bad command must not end the relays
            log.exception("relay host: %s failed", command)
    io.stop()
    sender.control(("stopped", ()))
    sender.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    # through the module's own name, so what it pickles (Received) is found by that name
    from adapters.nostr import nostr_io

    nostr_io.serve(Connection(int(sys.argv[1])))
