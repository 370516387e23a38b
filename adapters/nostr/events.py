"""Builders for the events the daemon publishes: orders (38383), disputes (38386), node info
(38385), metadata (0).

Each builder takes plain values (no storage rows, no settings objects, no clock: `now` is an
argument) and returns an unsigned `EventTemplate` whose tags are exactly what mostrod emits, in its
order (PROTOCOL.md §3, mostrod `src/nip33.rs`). Signing and publishing happen elsewhere.

This module must not sign, publish, read the database or decide order transitions; the one status
mapping for order events lives here (`public_status`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .keys import KeyPair
from .nostr_event import NostrEvent
from .protocol.codec import format_f64
from .protocol.enums import Kind, Status, Transport

ORDER_EVENT_KIND = 38383
RATING_EVENT_KIND = 38384
INFO_EVENT_KIND = 38385
DISPUTE_EVENT_KIND = 38386
METADATA_EVENT_KIND = 0
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class EventTemplate:
    """An unsigned Nostr event: what a signer turns into `id`/`pubkey`/`sig`."""

    kind: int
    created_at: int
    tags: tuple[tuple[str, ...], ...]
    content: str

    def tag_lists(self) -> list[list[str]]:
        return [list(tag) for tag in self.tags]

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "created_at": self.created_at,
            "tags": self.tag_lists(),
            "content": self.content,
        }

    def sign(self, signer: KeyPair) -> NostrEvent:
        """The signed event, authored by `signer` (the node key)."""
        return NostrEvent.signed(signer, self.created_at, self.kind, self.tag_lists(), self.content)


def rust_f64_display(value: float) -> str:
    """Rust's `f64::to_string()` (Display): shortest round-trip digits, never an exponent, no
    trailing `.0` (`0.006`, `2`, `4.5`). Used for tag values such as `fee`."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return format(Decimal(repr(value)).normalize(), "f")


# ---------------------------------------------------------------------------------------------
# Kind 38383: orders
# ---------------------------------------------------------------------------------------------

_PENDING_BUCKET = frozenset({Status.PENDING, Status.WAITING_TAKER_BOND})
_CANCELED_BUCKET = frozenset(
    {Status.CANCELED, Status.CANCELED_BY_ADMIN, Status.COOPERATIVELY_CANCELED, Status.EXPIRED}
)


def public_status(status: Status | str, kind: Kind | str) -> str | None:
    """The `s` tag for an order in `status` (mostrod `create_status_tags`), or None when that
    transition publishes nothing and the previous revision stays on relays (PROTOCOL.md §3.1).

    Asymmetric on purpose: waiting-buyer-invoice shows `in-progress` only for sell orders,
    waiting-payment only for buy orders.
    """
    status = Status(status)
    if status in _PENDING_BUCKET:
        return "pending"
    if status is Status.WAITING_BUYER_INVOICE:
        return "in-progress" if Kind(kind) is Kind.SELL else None
    if status is Status.WAITING_PAYMENT:
        return "in-progress" if Kind(kind) is Kind.BUY else None
    if status in _CANCELED_BUCKET:
        return "canceled"
    if status is Status.SUCCESS or status is Status.COMPLETED_BY_ADMIN:
        return status.value
    return None


@dataclass(frozen=True, slots=True)
class OrderEventFields:
    """The order columns a 38383 event shows."""

    id: str
    kind: Kind
    status: Status
    fiat_code: str
    amount: int
    fiat_amount: int
    payment_method: str
    premium: int
    expires_at: int
    min_amount: int | None = None
    max_amount: int | None = None


@dataclass(frozen=True, slots=True)
class MakerRating:
    """The maker identity's reputation; `first_seen_at` is the user row's `created_at` (0 = new)."""

    total_rating: float
    total_reviews: int
    first_seen_at: int


FULL_PRIVACY_RATING = MakerRating(total_rating=0.0, total_reviews=0, first_seen_at=0)
"""What mostrod shows for makers without a user row (full privacy)."""


def rating_tag_value(rating: MakerRating, now: int) -> str:
    """`["rating",{"days":D,"total_rating":R,"total_reviews":N}]` with serde_json's sorted keys."""
    days = max(0, now - rating.first_seen_at) // SECONDS_PER_DAY if rating.first_seen_at else 0
    return (
        f'["rating",{{"days":{days},"total_rating":{format_f64(rating.total_rating)},'
        f'"total_reviews":{int(rating.total_reviews)}}}]'
    )


def platform_tag(instance_name: str | None) -> tuple[str, ...]:
    """The `y` tag: `mostro`, then the trimmed instance name when it is not empty."""
    name = (instance_name or "").strip()
    return ("y", "mostro", name) if name else ("y", "mostro")


def next_created_at(now: int, previous_created_at: int | None) -> int:
    """A revision's `created_at`, strictly above the previous one (a same-second tie would let
    relays keep the lowest id instead of the newest revision)."""
    if previous_created_at is None:
        return now
    return max(now, previous_created_at + 1)


def order_tags(
    order: OrderEventFields,
    *,
    node_pubkey: str,
    relays: Sequence[str],
    networks: Sequence[str] | None,
    instance_name: str | None,
    maker_rating: MakerRating | None,
    now: int,
    order_days: int = 30,
) -> tuple[tuple[str, ...], ...] | None:
    """The tags of a 38383 revision (`d` first), or None if this status publishes nothing."""
    status = Status(order.status)
    published = public_status(status, order.kind)
    if published is None:
        return None
    pending_bucket = status in _PENDING_BUCKET
    if pending_bucket and order.min_amount is not None and order.max_amount is not None:
        fiat_amounts: tuple[str, ...] = (str(order.min_amount), str(order.max_amount))
    else:
        fiat_amounts = (str(order.fiat_amount),)
    if published == "pending" and order.expires_at > 0:
        expiration = order.expires_at
    else:
        expiration = now + order_days * SECONDS_PER_DAY
    tags: list[tuple[str, ...]] = [
        ("k", Kind(order.kind).value),
        ("f", order.fiat_code),
        ("s", published),
        ("amt", str(order.amount)),
        ("fa", *fiat_amounts),
        ("pm", *(method for method in order.payment_method.split(",") if method)),
        ("premium", str(order.premium)),
        ("network", "unknown" if networks is None else ",".join(networks)),
        ("layer", "lightning"),
        ("expires_at", str(order.expires_at)),
        ("expiration", str(expiration)),
        platform_tag(instance_name),
        ("z", "order"),
    ]
    if pending_bucket:  # mostrod inserts these two at fixed positions, after `premium`
        rating = maker_rating if maker_rating is not None else FULL_PRIVACY_RATING
        tags.insert(7, ("rating", rating_tag_value(rating, now)))
        tags.insert(
            8, ("source", f"mostro:{order.id}?relays={','.join(relays)}&mostro={node_pubkey}")
        )
    return (("d", order.id), *tags)


def order_event(
    order: OrderEventFields,
    *,
    node_pubkey: str,
    relays: Sequence[str],
    networks: Sequence[str] | None,
    instance_name: str | None,
    maker_rating: MakerRating | None,
    now: int,
    order_days: int = 30,
    previous_created_at: int | None = None,
) -> EventTemplate | None:
    """The kind-38383 revision for `order`, or None when its status publishes nothing.

    `maker_rating` None means the maker has no user row (full privacy): a zero rating is shown.
    `networks` None means the LND status is unknown. `previous_created_at` is the last published
    revision's `created_at` for this order, if any.
    """
    tags = order_tags(
        order,
        node_pubkey=node_pubkey,
        relays=relays,
        networks=networks,
        instance_name=instance_name,
        maker_rating=maker_rating,
        now=now,
        order_days=order_days,
    )
    if tags is None:
        return None
    return EventTemplate(ORDER_EVENT_KIND, next_created_at(now, previous_created_at), tags, "")


def order_event_for_record(
    order: Any,
    public_status_value: str | None,
    node_pubkey: str,
    settings: Any,
    networks: Sequence[str] | None,
    now: int,
    previous_created_at: int | None = None,
    maker_rating: MakerRating | None = None,
) -> EventTemplate | None:
    """`order_event` for an order row (duck-typed: the order logic's `OrderRecord`) and the node
    settings (`nostr.relays`, `mostro.name`, `expiration.order_days`).

    The published status is recomputed with `public_status` (the one mapping); the caller's value
    only has to agree. `maker_rating` None shows the full-privacy zero rating: pass the maker
    identity's reputation when it has a user row.
    """
    fields = OrderEventFields(
        id=order.id,
        kind=Kind(order.kind),
        status=Status(order.status),
        fiat_code=order.fiat_code,
        amount=order.amount,
        fiat_amount=order.fiat_amount,
        payment_method=order.payment_method,
        premium=order.premium,
        expires_at=order.expires_at,
        min_amount=order.min_amount,
        max_amount=order.max_amount,
    )
    if public_status(fields.status, fields.kind) != public_status_value:
        raise ValueError(f"public status {public_status_value!r} disagrees with {fields.status}")
    return order_event(
        fields,
        node_pubkey=node_pubkey,
        relays=tuple(settings.nostr.relays),
        networks=networks,
        instance_name=settings.mostro.name,
        maker_rating=maker_rating,
        now=now,
        order_days=settings.expiration.order_days,
        previous_created_at=previous_created_at or None,
    )


# ---------------------------------------------------------------------------------------------
# Kind 38386: disputes
# ---------------------------------------------------------------------------------------------


def dispute_event(
    dispute_id: str,
    status: str,
    initiator: str,
    dispute_created_at: int,
    *,
    instance_name: str | None,
    now: int,
    dispute_days: int = 90,
    previous_created_at: int | None = None,
) -> EventTemplate:
    """Kind 38386: `d`, `expiration`, `s`, `initiator` (`buyer`/`seller`/`unknown`), `created_at`
    (when the dispute opened), `y`, `z` (PROTOCOL.md §3.4); revisions strictly increasing."""
    tags = (
        ("d", dispute_id),
        ("expiration", str(now + dispute_days * SECONDS_PER_DAY)),
        ("s", str(status)),
        ("initiator", str(initiator)),
        ("created_at", str(dispute_created_at)),
        platform_tag(instance_name),
        ("z", "dispute"),
    )
    return EventTemplate(DISPUTE_EVENT_KIND, next_created_at(now, previous_created_at), tags, "")


def dispute_event_for_record(
    dispute: Any, initiator: str, settings: Any, now: int, previous_created_at: int | None = None
) -> EventTemplate:
    """`dispute_event` for a dispute row (duck-typed: `id`, `status`, `created_at`)."""
    return dispute_event(
        dispute.id,
        dispute.status,
        initiator,
        dispute.created_at,
        instance_name=settings.mostro.name,
        now=now,
        dispute_days=settings.expiration.dispute_days,
        previous_created_at=previous_created_at or None,
    )


# ---------------------------------------------------------------------------------------------
# Kind 38385: node info
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BondPolicy:
    """`[anti_abuse_bond]` settings as advertised (PROTOCOL.md §3.3, BONDS.md)."""

    enabled: bool
    amount_pct: float = 0.01
    base_amount_sats: int = 1_000
    apply_to: str = "take"  # take | make | both
    slash_on_waiting_timeout: bool = False
    slash_node_share_pct: float = 0.5
    payout_claim_window_days: int = 14


@dataclass(frozen=True, slots=True)
class LndInfo:
    version: str
    node_pubkey: str
    commit_hash: str
    node_alias: str
    chains: tuple[str, ...]
    networks: tuple[str, ...]
    uris: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InfoEventFields:
    """Everything the 38385 event advertises: node settings plus LND's status."""

    mostro_version: str
    commit_hash: str
    max_order_amount: int
    min_payment_amount: int
    expiration_hours: int
    expiration_seconds: int
    fiat_currencies_accepted: tuple[str, ...]
    max_orders_per_response: int
    fee: float
    pow: int
    transport: Transport
    hold_invoice_expiration_window: int
    hold_invoice_cltv_delta: int
    lnd: LndInfo
    instance_name: str | None = None
    pow_first_contact: int | None = None
    bond: BondPolicy | None = None


def advertised_first_contact_pow(
    pow_: int, pow_first_contact: int | None, transport: Transport
) -> int:
    """nip44: max(pow, pow_first_contact or pow); gift wrap has no spam gate, so plain pow."""
    if Transport(transport) is Transport.NIP44:
        return max(pow_, pow_ if pow_first_contact is None else pow_first_contact)
    return pow_


def _bool(value: bool) -> str:
    return "true" if value else "false"


def bond_tags(bond: BondPolicy | None) -> list[tuple[str, ...]]:
    """`bond_enabled` always; the policy details only when bonds are enabled."""
    enabled = bond is not None and bond.enabled
    tags: list[tuple[str, ...]] = [("bond_enabled", _bool(enabled))]
    if bond is not None and enabled:
        tags += [
            ("bond_amount_pct", rust_f64_display(bond.amount_pct)),
            ("bond_base_amount_sats", str(bond.base_amount_sats)),
            ("bond_apply_to", bond.apply_to),
            ("bond_slash_on_waiting_timeout", _bool(bond.slash_on_waiting_timeout)),
            ("bond_slash_node_share_pct", rust_f64_display(bond.slash_node_share_pct)),
            ("bond_payout_claim_window_days", str(bond.payout_claim_window_days)),
        ]
    return tags


def info_tags(info: InfoEventFields, node_pubkey: str) -> tuple[tuple[str, ...], ...]:
    lnd = info.lnd
    protocol_version = "2" if Transport(info.transport) is Transport.NIP44 else "1"
    tags: list[tuple[str, ...]] = [
        ("d", node_pubkey),
        ("mostro_version", info.mostro_version),
        ("mostro_commit_hash", info.commit_hash),
        ("max_order_amount", str(info.max_order_amount)),
        ("min_order_amount", str(info.min_payment_amount)),
        ("expiration_hours", str(info.expiration_hours)),
        ("expiration_seconds", str(info.expiration_seconds)),
        ("fiat_currencies_accepted", ",".join(info.fiat_currencies_accepted)),
        ("max_orders_per_response", str(info.max_orders_per_response)),
        ("fee", rust_f64_display(info.fee)),
        ("pow", str(info.pow)),
        (
            "pow_first_contact",
            str(advertised_first_contact_pow(info.pow, info.pow_first_contact, info.transport)),
        ),
        ("protocol_version", protocol_version),
        ("hold_invoice_expiration_window", str(info.hold_invoice_expiration_window)),
        ("hold_invoice_cltv_delta", str(info.hold_invoice_cltv_delta)),
        # mostrod advertises the hold-invoice window under this name too
        ("invoice_expiration_window", str(info.hold_invoice_expiration_window)),
        ("lnd_version", lnd.version),
        ("lnd_node_pubkey", lnd.node_pubkey),
        ("lnd_commit_hash", lnd.commit_hash),
        ("lnd_node_alias", lnd.node_alias),
        ("lnd_chains", ",".join(lnd.chains)),
        ("lnd_networks", ",".join(lnd.networks)),
        ("lnd_uris", ",".join(lnd.uris)),
        platform_tag(info.instance_name),
        ("z", "info"),
    ]
    tags += bond_tags(info.bond)
    return tuple(tags)


def info_event(info: InfoEventFields, node_pubkey: str, now: int) -> EventTemplate:
    """The kind-38385 node info event (no expiration; republished periodically)."""
    return EventTemplate(INFO_EVENT_KIND, now, info_tags(info, node_pubkey), "")


# ---------------------------------------------------------------------------------------------
# Kind 0: metadata
# ---------------------------------------------------------------------------------------------

_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})


def normalize_url(text: str) -> str | None:
    """A URL as Rust's `url::Url` prints it (lowercase scheme/host, `/` path on special
    schemes), or None when it does not parse as an absolute URL (mostrod then skips it)."""
    try:
        parts = urlsplit(text.strip())
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not scheme or (scheme in _SPECIAL_SCHEMES and not parts.netloc):
        return None
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = userinfo + at + hostport.lower()
    path = parts.path or ("/" if scheme in _SPECIAL_SCHEMES else "")
    return urlunsplit((scheme, netloc, path, parts.query, parts.fragment))


def metadata_event(
    name: str | None,
    about: str | None,
    picture: str | None,
    website: str | None,
    now: int,
) -> EventTemplate | None:
    """Kind 0 with the set fields (nostr `Metadata` order: name, about, website, picture), or
    None when nothing is set. Invalid URLs are left out, as mostrod does."""
    content: dict[str, str] = {}
    if name is not None:
        content["name"] = name
    if about is not None:
        content["about"] = about
    website_url = normalize_url(website) if website is not None else None
    if website_url is not None:
        content["website"] = website_url
    picture_url = normalize_url(picture) if picture is not None else None
    if picture_url is not None:
        content["picture"] = picture_url
    if not content:
        return None
    text = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    return EventTemplate(METADATA_EVENT_KIND, now, (), text)
