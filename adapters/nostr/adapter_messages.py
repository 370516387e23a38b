"""Messages to and from the NostrAdapter actor (frozen dataclasses, picklable).

Events travel as plain NIP-01 dicts so every thespian base can pickle them. `effect_id` is
opaque here (the outbox row id): the adapter hands it back in `PublishResult` untouched.

This module must not hold behaviour beyond small derived properties.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from adapters.nostr.relay_pool import PoolSettings, Subscription


@dataclass(frozen=True)
class InboundEvent:
    """The first copy of an event that matched one of the adapter's subscriptions.

    `verified` is True only when the NostrAdapter built it for an event its relay pool
    delivered and checked: without a check worker the pool checks the event's id and signature
    before de-duplicating it, so the handler need not check them again (with one, the worker
    checks them and `verified` is False). `precheck` is what the adapter's check worker computed
    for the event (`StartNostr.precheck_factory`), or None (worker off or broken: compute it).
    """

    event: dict[str, Any]
    relay_url: str
    received_at: float  # unix seconds, when the pool read it
    verified: bool = False
    precheck: Any = None


# An inbound handler runs in the adapter's process on every new event, before anything goes to
# the owner; it returns the messages to send: plain ones go to the owner, `Addressed` ones to
# their address, `PublishEvent` ones to the relays (nothing at all drops the event). A factory
# builds it once inside that process, so it may open databases or load keys there. A handler
# that also has a `handle_batch(events: list[InboundEvent]) -> Iterable[Any]` method is given
# every event read since the adapter last woke at once (e.g. to share one database transaction).
InboundHandler = Callable[[InboundEvent], Iterable[Any]]
InboundHandlerFactory = Callable[[], InboundHandler]
SeenHookFactory = Callable[[], Callable[[str], bool]]
# Builds, inside the adapter's check worker process, the pure per-event check whose result
# rides on `InboundEvent.precheck`: check(event, now_unix_seconds) -> a small picklable value.
PrecheckFactory = Callable[[], Callable[[dict[str, Any], int], Any]]


@dataclass(frozen=True)
class StartNostr:
    """Connect to `relays` and open `subscriptions`; results go to `owner` (None: the sender).

    The factories must be picklable (module-level callables or picklable objects) on the
    multiprocess bases; they are called once in the adapter's process, except
    `precheck_factory` and `signer_factory`: with a precheck factory the relays run in a relay
    host process of their own (`adapters.nostr.nostr_io`), which starts one check worker at the
    first event and a sign worker, and those factories are called there. A seen hook needs
    events verified by the pool, so it cannot go with a precheck factory.
    """

    relays: tuple[str, ...]
    subscriptions: tuple[Subscription, ...] = ()
    owner: Any = None
    inbound_handler_factory: InboundHandlerFactory | None = None
    seen_hook_factory: SeenHookFactory | None = None
    pool_settings: PoolSettings | None = None
    precheck_factory: PrecheckFactory | None = None
    # signs the `unsigned.Unsigned` descriptions `PublishEvent`s may carry: an
    # `unsigned.SignerFactory`; the adapter signs in a sign worker process beside the actors
    signer_factory: Any = None


@dataclass(frozen=True)
class InjectRelayMessages:
    """Benchmarks and tests only: raw relay messages (e.g. `["EVENT", sub_id, event]` JSON) the
    pool handles as if `relay_url` (one of its relays) had sent them; no reply."""

    relay_url: str
    messages: tuple[str, ...]


@dataclass(frozen=True)
class NostrStarted:
    """Reply to StartNostr: the pool runs (connections are still being made)."""

    relays: tuple[str, ...]


@dataclass(frozen=True)
class Subscribe:
    """Open one more subscription (or replace the one with the same id)."""

    subscription: Subscription


@dataclass(frozen=True)
class PublishEvent:
    """Publish an event to every relay; a PublishResult with `effect_id` follows. `event` is
    signed (a dict), or an `unsigned.Unsigned` description the adapter signs first (its
    `StartNostr.signer_factory`), so the signing is not done on the sender's thread."""

    event: Any
    effect_id: Any


@dataclass(frozen=True)
class PublishBatch:
    """Several publications in one message (one hop for all the effects of a decision)."""

    items: tuple[PublishEvent, ...]


@dataclass(frozen=True)
class PublishResult:
    """How the relays answered one PublishEvent. The effect is done when `accepted`."""

    effect_id: Any
    event_id: str
    accepted_by: tuple[str, ...]
    rejected: tuple[tuple[str, str], ...]  # (relay url, reason)
    timed_out: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        return bool(self.accepted_by)


@dataclass(frozen=True)
class PublishResults:
    """Several `PublishResult`s in one message: every outcome the pool reported since the
    adapter last woke (one hop for a burst of relay OKs instead of one each). Sent only when
    there are two or more; a single outcome still travels as a plain `PublishResult`."""

    results: tuple[PublishResult, ...]


@dataclass(frozen=True)
class RelayStatus:
    """A relay connected, dropped, or reported a problem (error is None when all is well)."""

    url: str
    connected: bool
    error: str | None = None


@dataclass(frozen=True)
class StopNostr:
    """Close every relay connection; NostrStopped answers the sender."""


@dataclass(frozen=True)
class NostrStopped:
    pass


@dataclass(frozen=True)
class NostrNotStarted:
    """Answer to a request that needs a running pool when StartNostr has not been handled."""

    request: Any


@dataclass(frozen=True)
class Addressed:
    """An inbound handler's output for an actor other than the owner (e.g. the order directory).

    The adapter sends `message` to `to`; it lets intake route a request straight to its
    destination without a hop through the owner.
    """

    to: Any
    message: Any


@dataclass(frozen=True)
class Unsubscribe:
    """Close one subscription while the relays stay connected (shutdown: stop taking
    requests, keep publishing replies); answered with `Unsubscribed`."""

    sub_id: str


@dataclass(frozen=True)
class Unsubscribed:
    sub_id: str
