"""Many Mostro clients on one relay connection, timing every message they receive (benchmarks).

`MostroClient` opens a connection per person; a take storm needs hundreds of people. A `Crowd`
holds many parties (a trade key and an identity each) behind one `RelayPool`, subscribes once for
all their trade keys, opens each reply with the recipient's trade key, and stamps it with
`time.perf_counter()` on arrival. `pay_timed` pays an invoice from a simulated wallet and stamps
each status of the payment's stream (`IN_FLIGHT` when the receiver holds the HTLC, `FAILED` when
a held HTLC is refunded).

It speaks only the public protocol and LND's API; it never reads the daemon's database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adapters.nostr import transport as nostr_transport
from adapters.nostr.protocol import Action, Message, ParseError, Transport, parse_content
from adapters.nostr.relay_pool import RelayPool, Subscription
from bench import mostro_requests as mr


@dataclass
class Member:
    """One person in the crowd and what the node told them, with arrival times."""

    party: mr.Party
    inbox: list[tuple[float, Message]] = field(default_factory=list)

    @property
    def pubkey(self) -> str:
        return self.party.trade.public_hex

    def first(self, action: Action, payload_type: type | None = None) -> tuple[float, Message] | None:
        for stamp, message in list(self.inbox):
            if message.action is action and (
                    payload_type is None or isinstance(message.payload, payload_type)):
                return stamp, message
        return None


class Crowd:
    """See the module docstring."""

    def __init__(self, relay_url: str, node_pubkey: str, transport: Transport) -> None:
        self.node_pubkey = node_pubkey
        self.transport = transport
        self.members: dict[str, Member] = {}
        self._changed = threading.Condition()
        self._pool = RelayPool((relay_url,), on_event=self._on_event,
                               on_published=lambda outcome: None)

    def start(self) -> Crowd:
        self._pool.start()
        return self

    def close(self) -> None:
        self._pool.stop()

    def add(self, count: int) -> list[Member]:
        """`count` new people; call `listen()` after adding to receive their messages."""
        added = [Member(mr.Party.fresh()) for _ in range(count)]
        for member in added:
            self.members[member.pubkey] = member
        return added

    def listen(self) -> None:
        kind = nostr_transport.TRANSPORT_KIND[self.transport.value]
        filters: dict[str, Any] = {"kinds": [kind], "#p": sorted(self.members)}
        if kind == 14:
            filters["authors"] = [self.node_pubkey]
        lookback = 3 * 24 * 3600 if kind == 1059 else 120
        self._pool.subscribe(Subscription("crowd", (filters,), since_ago=lookback))

    def send(self, member: Member, message: Message, created_at: int | None = None) -> float:
        """Publish one message from `member`; the time it was handed to the pool."""
        event = mr.wrap(message, member.party, self.node_pubkey, self.transport,
                        created_at if created_at is not None else int(time.time()))
        stamp = time.perf_counter()
        self._pool.publish(event)
        return stamp

    def _on_event(self, event: dict[str, Any], relay_url: str) -> None:
        arrived = time.perf_counter()
        for tag in event.get("tags", []):
            if len(tag) < 2 or tag[0] != "p" or tag[1] not in self.members:
                continue
            member = self.members[tag[1]]
            opened = nostr_transport.unwrap_reply(event, member.party.trade.secret_hex,
                                                  self.transport.value, self.node_pubkey)
            if isinstance(opened, nostr_transport.TransportError):
                continue
            content = parse_content(opened[0], self.transport)
            if isinstance(content, ParseError):
                continue
            with self._changed:
                member.inbox.append((arrived, content.message))
                self._changed.notify_all()
            return

    def wait(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        """Block until `condition()` is truthy (re-checked on every arrival)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                value = condition()
                if value:
                    return value
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{what} not reached within {timeout} s")
                self._changed.wait(min(remaining, 0.2))


@dataclass
class TimedPayment:
    """An outgoing payment and when each status of its stream arrived."""

    payment_request: str
    sent_at: float = 0.0
    statuses: dict[str, float] = field(default_factory=dict)
    failure: str = ""
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def final(self) -> str | None:
        for status in ("SUCCEEDED", "FAILED"):
            if status in self.statuses:
                return status
        return None


_STATUS = {0: "UNKNOWN", 1: "IN_FLIGHT", 2: "SUCCEEDED", 3: "FAILED", 4: "INITIATED"}


def pay_timed(wallet: Any, payment: TimedPayment, timeout_seconds: int = 60) -> TimedPayment:
    """Pay `payment.payment_request` from a simulated wallet (`adapters.lnd.sim.wallet.Wallet`)
    on the calling thread, reading its stream to the end (a held HTLC keeps it open); every status
    is stamped into `payment` as it arrives, so other threads can watch it meanwhile."""
    import grpc

    from adapters.lnd.protos import router_pb2

    payment_request = payment.payment_request
    payment.sent_at = time.perf_counter()
    stream = wallet.client.router.SendPaymentV2(router_pb2.SendPaymentRequest(
        payment_request=payment_request, timeout_seconds=timeout_seconds, fee_limit_sat=1000))
    try:
        for update in stream:
            status = _STATUS.get(update.status, str(update.status))
            payment.statuses.setdefault(status, time.perf_counter())
            if status == "FAILED":
                payment.failure = str(update.failure_reason)
    except grpc.RpcError as error:
        payment.statuses.setdefault("FAILED", time.perf_counter())
        payment.failure = error.details() or str(error.code())
    payment.done.set()
    return payment
