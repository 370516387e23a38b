"""Sign the node's publications beside the actors, then hand them to the relay pool.

The outbox gives the Nostr adapter descriptions of what to publish (`unsigned.Unsigned`);
signing them (Schnorr, and NIP-44 encryption for replies) was a tenth of the actors' thread in
benchmark (2). `Signing` runs `unsigned.SignerFactory`'s function in a `CheckWorker` process and
publishes each signed event from the worker's link thread (`RelayPool.publish_many` is
thread-safe), in the order the descriptions came. Without a worker, or once it broke, it signs
on the calling thread.

It must not reorder or drop a publication: one that cannot be signed or published is reported
as rejected by every relay (a `PublishOutcome`), so the outbox retries it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from adapters.nostr.check_worker import CheckWorker
from adapters.nostr.relay_pool import PublishOutcome, RelayPool, Rendered
from adapters.nostr.unsigned import SignerFactory, Unsigned

log = logging.getLogger(__name__)

Report = Callable[[PublishOutcome], None]


class Signing:
    """See the module docstring. `publish` may be called from the actor's thread only."""

    def __init__(self, factory: SignerFactory, pool: RelayPool, report: Report,
                 worker: bool = True) -> None:
        self._sign = factory()
        self._pool = pool
        self._report = report
        self._worker = CheckWorker(factory, self._signed, role="sign") if worker else None

    @property
    def worker_pid(self) -> int | None:
        return self._worker.pid if self._worker is not None else None

    def publish(self, items: Sequence[tuple[Unsigned, Any]]) -> None:
        """Sign and publish `(description, token)` pairs; outcomes arrive as the pool's."""
        if not items:
            return
        if self._worker is not None and not self._worker.failed:
            try:
                self._worker.submit([((item, token), item) for item, token in items])
                return
            except RuntimeError:  # stopped: sign here
                pass
        self._signed([((item, token), None) for item, token in items])

    def stop(self) -> None:
        """Publish what was handed over (call before stopping the pool), end the worker."""
        if self._worker is not None:
            self._worker.stop()

    def _signed(self, pairs: list[tuple[tuple[Unsigned, Any], Any]]) -> None:
        ready: list[tuple[Rendered, Any]] = []
        for (item, token), event in pairs:
            if event is None:  # the worker is off or broke on it: sign it here
                try:
                    event = self._sign(item, 0)
                except Exception as exc:  # noqa: BLE001 - reported, the outbox retries
                    log.exception("could not sign publication %s", token)
                    self._reject(token, f"could not sign: {exc}")
                    continue
            ready.append((event, token))
        if not ready:
            return
        try:
            self._pool.publish_many(ready)
        except (RuntimeError, ValueError) as exc:  # the pool stopped meanwhile
            for _, token in ready:
                self._reject(token, str(exc))

    def _reject(self, token: Any, reason: str) -> None:
        self._report(PublishOutcome("", token, (), (("", reason),), ()))
