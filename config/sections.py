"""The settings schema: one frozen dataclass per TOML section, each field declaring its rule.

Field names are the TOML key names (the Rust daemon's names where it has the
key); each field's metadata holds its rule, its one-line meaning (used for
config/REFERENCE.md) and, for secrets, the environment variable that may
supply it. Defaults are the Rust template values (ORDER_FLOW.md §1), not the
Rust `Default` impl, which zeroes several lightning keys.

This module only declares; reading files and the environment is
`config.loader`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from config.rules import (
    Boolean,
    Choice,
    DatabaseUrl,
    FilePath,
    GrpcHost,
    HostPort,
    Integer,
    NostrSecret,
    OptionalInteger,
    PriceTable,
    Real,
    RelayList,
    Rule,
    Text,
    TextList,
)
from config.secret_key import NostrSecretKey
from storage.url import SqliteLocation, parse_database_url, redact_database_url

U8_MAX = 2**8 - 1
U16_MAX = 2**16 - 1
U32_MAX = 2**32 - 1
I64_MAX = 2**63 - 1
# Rust MIN_DEV_FEE_PERCENTAGE / MAX_DEV_FEE_PERCENTAGE.
MIN_DEV_FEE_PERCENTAGE = 0.10
MAX_DEV_FEE_PERCENTAGE = 1.0
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class _Required:
    """Marks a key with no default: the file (or its environment variable) must give it."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class SettingSpec:
    rule: Rule
    doc: str
    required: bool = False
    env: str | None = None
    secret: bool = False


def setting(
    default: Any,
    rule: Rule,
    doc: str,
    *,
    env: str | None = None,
    secret: bool = False,
) -> Any:
    """A dataclass field carrying its validation rule and documentation."""
    spec = SettingSpec(rule, doc, required=default is REQUIRED, env=env, secret=secret)
    return field(
        default=None if default is REQUIRED else default,
        metadata={"setting": spec},
        repr=not secret,
    )


def spec_of(section_field: Any) -> SettingSpec:
    return section_field.metadata["setting"]


def _seconds(minimum: int = 1) -> Integer:
    return Integer(minimum, U32_MAX)


@dataclass(frozen=True)
class MostroSettings:
    fee: float = setting(0.0, Real(0.0, 1.0, maximum_open=True),
                         "Total Mostro fee as a fraction of the sats amount (0.006 = 0.6 %), split half/half between buyer and seller.")
    max_routing_fee: float = setting(0.002, Real(0.0, 1.0),
                                     "Cap on routing fees of the buyer payout, as a fraction of the amount.")
    max_order_amount: int = setting(1_000_000, Integer(1, U32_MAX),
                                    "Largest sats amount of a new order (fixed, or the quote of each fiat bound).")
    min_payment_amount: int = setting(100, Integer(0, U32_MAX),
                                      "Smallest sats amount of a new order, and of a buyer invoice that carries an amount.")
    expiration_hours: int = setting(24, Integer(1, U32_MAX),
                                    "Lifetime of a pending order whose maker sent no expires_at.")
    max_expiration_days: int = setting(15, Integer(1, U32_MAX),
                                       "Clamp for a client-supplied expires_at, in days from now.")
    expiration_seconds: int = setting(900, _seconds(),
                                      "How long an order may wait in waiting-buyer-invoice / waiting-payment before the timeout re-lists or cancels it.")
    user_rates_sent_interval_seconds: int = setting(3600, _seconds(),
                                                    "Period of the job that publishes rating events (kind 38384).")
    publish_relays_interval: int = setting(60, _seconds(),
                                           "Period of the relay-list publication (kind 10002), seconds.")
    pow: int = setting(0, Integer(0, U8_MAX),
                       "NIP-13 proof-of-work bits demanded of inbound events.")
    pow_first_contact: int | None = setting(None, OptionalInteger(Integer(0, U8_MAX)),
                                            "Stiffer PoW for unknown trade keys (gift-wrap transport only); unset means `pow`.")
    active_pubkeys_refresh_interval: int = setting(60, _seconds(),
                                                   "Rebuild period of the known-trade-key cache used by the spam gate, seconds.")
    publish_mostro_info_interval: int = setting(300, _seconds(),
                                                "Period of the node info event (kind 38385), seconds.")
    fiat_currencies_accepted: tuple[str, ...] = setting(("USD", "EUR", "ARS", "CUP"), TextList(),
                                                        "Fiat codes accepted for new orders (exact match); empty accepts all.")
    max_orders_per_response: int = setting(10, Integer(1, U8_MAX),
                                           "Most order ids in one `orders` request.")
    dev_fee_percentage: float = setting(0.30, Real(MIN_DEV_FEE_PERCENTAGE, MAX_DEV_FEE_PERCENTAGE),
                                        "Share of the total Mostro fee forwarded to the development fund.")
    transport: str = setting("nip44", Choice(("nip44", "gift-wrap")),
                             "Wire transport of Mostro messages.")
    name: str | None = setting(None, Text(optional=True), "Kind-0 metadata: node name.")
    about: str | None = setting(None, Text(optional=True), "Kind-0 metadata: short description.")
    picture: str | None = setting(None, Text(optional=True), "Kind-0 metadata: avatar URL.")
    website: str | None = setting(None, Text(optional=True), "Kind-0 metadata: operator website.")

    def first_contact_pow(self) -> int:
        """PoW demanded of an unknown trade key: `pow_first_contact`, else `pow`."""
        return self.pow if self.pow_first_contact is None else self.pow_first_contact


@dataclass(frozen=True)
class LightningSettings:
    lnd_cert_file: str = setting(REQUIRED, FilePath(), "LND's TLS certificate (tls.cert).")
    lnd_macaroon_file: str = setting(REQUIRED, FilePath(), "LND macaroon with invoice and payment rights (admin.macaroon).")
    lnd_grpc_host: str = setting(REQUIRED, GrpcHost(), "LND gRPC endpoint.")
    invoice_expiration_window: int = setting(3600, _seconds(),
                                             "A buyer invoice must stay valid at least this long when submitted, seconds.")
    hold_invoice_cltv_delta: int = setting(144, Integer(1, U32_MAX),
                                           "CLTV delta (blocks) of the escrow hold invoice.")
    hold_invoice_expiration_window: int = setting(300, _seconds(),
                                                  "Only advertised in the info event; the real deadline is mostro.expiration_seconds.")
    payment_attempts: int = setting(3, Integer(1, U32_MAX),
                                    "Most payout attempts made by the retry job.")
    payment_retries_interval: int = setting(60, _seconds(),
                                            "Period of the failed-payment retry job, seconds.")
    max_final_cltv_expiry_delta: int = setting(432, Integer(1, U32_MAX),
                                               "Refuse payout invoices whose min_final_cltv_expiry_delta is larger (blocks).")
    network: str = setting("", Choice(("", "mainnet", "testnet", "signet", "regtest")),
                           "Network LND must be on (checked against GetInfo at start); empty accepts what LND reports.")
    escrow_deadline_margin_blocks: int = setting(24, Integer(0, U32_MAX),
                                                 "Blocks before the hold invoice's CLTV horizon at which the escrow guard acts.")

    def grpc_target(self) -> str:
        """`host:port` for grpc.secure_channel (the `https://` prefix removed)."""
        host = self.lnd_grpc_host
        return host.split("://", 1)[1].rstrip("/") if "://" in host else host


@dataclass(frozen=True)
class NostrSettings:
    nsec_privkey: NostrSecretKey = setting(REQUIRED, NostrSecret(),
                                           "Node secret key, nsec1… or 64 hex digits. Leave empty to take it from MOSTRO_NSEC_PRIVKEY.",
                                           env="MOSTRO_NSEC_PRIVKEY", secret=True)
    relays: tuple[str, ...] = setting(REQUIRED, RelayList(), "Relays the node reads from and publishes to.")

    def secret_key_hex(self) -> str:
        """The node secret as 64 hex digits, for the signer only; never log it."""
        return self.nsec_privkey.reveal_hex()

    def public_key_hex(self) -> str:
        return self.nsec_privkey.public_key_hex()


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = setting("sqlite://mostro.db", DatabaseUrl(),
                       "Database URL; may come from MOSTRO_DATABASE_URL (e.g. to keep a PostgreSQL password out of the file).",
                       env="MOSTRO_DATABASE_URL")


@dataclass(frozen=True)
class ExpirationSettings:
    order_days: int = setting(30, Integer(1, U32_MAX), "NIP-40 expiration of order events (kind 38383), days.")
    rating_days: int = setting(90, Integer(1, U32_MAX), "NIP-40 expiration of rating events (kind 38384), days.")
    dispute_days: int = setting(90, Integer(1, U32_MAX), "NIP-40 expiration of dispute events (kind 38386), days.")
    fee_audit_days: int = setting(365, Integer(1, U32_MAX), "NIP-40 expiration of dev-fee audit events (kind 8383), days.")
    dm_days: int = setting(30, Integer(1, U32_MAX), "NIP-40 expiration of direct messages (kind 14), days.")


@dataclass(frozen=True)
class AntiAbuseBondSettings:
    enabled: bool = setting(False, Boolean(), "Master switch of the anti-abuse bond.")
    amount_pct: float = setting(0.01, Real(0.0, 1.0), "Bond as a fraction of the take's sats amount.")
    base_amount_sats: int = setting(1000, Integer(0, I64_MAX), "Bond floor in sats.")
    apply_to: str = setting("take", Choice(("take", "make", "both")),
                            "Who posts a bond: the taker at take time, the maker at create time, or both.")
    slash_on_waiting_timeout: bool = setting(False, Boolean(),
                                             "Part B: slash the responsible party when a waiting-state timeout elapses.")
    slash_node_share_pct: float = setting(0.5, Real(0.0, 1.0), "Part B: share of a slashed bond the node keeps.")
    payout_invoice_window_seconds: int = setting(300, _seconds(),
                                                 "Part B: how often to ask the winner for a payout invoice, seconds.")
    payout_max_retries: int = setting(5, Integer(1, U32_MAX),
                                      "Part B: payment attempts once a payout invoice is received.")
    payout_claim_window_days: int = setting(15, Integer(1, U32_MAX),
                                            "Part B: after this many days an unclaimed share is forfeited to the node.")

    def applies_to_takers(self) -> bool:
        return self.enabled and self.apply_to in ("take", "both")

    def applies_to_makers(self) -> bool:
        return self.enabled and self.apply_to in ("make", "both")


@dataclass(frozen=True)
class PriceSettings:
    fixed: tuple[tuple[str, float], ...] = setting((), PriceTable(),
                                                   "Fixed BTC prices per fiat code for devnet and tests, e.g. {USD = 100000.0}.")
    max_price_staleness_seconds: int = setting(1800, _seconds(),
                                               "A price older than this makes market creates/takes fail with price_too_stale.")

    def fixed_prices(self) -> dict[str, float]:
        return dict(self.fixed)


@dataclass(frozen=True)
class ActorsSettings:
    base: str = setting("multiprocTCPBase", Choice(("multiprocTCPBase", "multiprocQueueBase", "simpleSystemBase")),
                        "Thespian system base. multiprocTCPBase: a process per actor, inspection "
                        "tools and scale-out. simpleSystemBase: every actor in the supervisor's own "
                        "thread, the cheapest per request (see bench/README.md (2)), one core, no "
                        "admin port (no inspection from another process).")
    admin_port: int = setting(1900, Integer(1, U16_MAX), "Thespian admin port (TCP/queue bases).")
    live_order_actor_cap: int = setting(64, Integer(1, U32_MAX),
                                        "Most order actors alive at once; least recently used ones are passivated "
                                        "(on the multiprocess bases each is a process of about 9 MB: the default "
                                        "keeps a node with any number of orders under 1 GB).")
    order_actor_idle_seconds: int = setting(300, _seconds(),
                                            "An order actor idle this long is passivated, seconds.")
    convention_leader: str = setting("", HostPort(allow_empty=True),
                                     "Admin address (host:port) of the convention leader this host joins; "
                                     "empty: this host is the leader, or runs alone. Needs base multiprocTCPBase; "
                                     "hosts on several machines share one postgresql:// database.")
    orders: bool = setting(True, Boolean(), "This host may run order actors.")
    nostr: bool = setting(True, Boolean(), "This host runs the Nostr adapter (one host of a convention).")
    lightning: bool = setting(True, Boolean(),
                              "This host runs the Lightning adapter and the outbox (one host, next to LND).")
    member_checkin_seconds: int = setting(10, _seconds(),
                                          "Convention members check in with the leader this often, seconds; a member "
                                          "silent for 3 check-ins is declared gone and its orders are re-activated "
                                          "elsewhere. Use the same value on every host.")

    def joins_convention(self) -> bool:
        """True when this host is a member of another host's convention (not its leader)."""
        return bool(self.convention_leader)

    def convention_address(self) -> tuple[str, int] | None:
        """The leader's (host, port), as thespian's `Convention Address.IPv4` takes it; None on a leader."""
        if not self.convention_leader:
            return None
        host, _, port = self.convention_leader.rpartition(":")
        return host.strip("[]"), int(port)

    def host_capabilities(self) -> dict[str, bool]:
        """What this host offers: `orders`, `nostr`, `lightning`."""
        return {"orders": self.orders, "nostr": self.nostr, "lightning": self.lightning}

    def spans_hosts(self) -> bool:
        """True when some of the work runs on another host (this one joins, or leaves a part out)."""
        return self.joins_convention() or not (self.orders and self.nostr and self.lightning)

    def problems(self, database_url: str | None = None) -> list[tuple[str, str]]:
        """Contradictions between the keys of this section (and the database URL, when given),
        as (key, reason), one per key; empty when coherent."""
        found: dict[str, list[str]] = {}
        if self.convention_leader and self.base != "multiprocTCPBase":
            found.setdefault("convention_leader", []).append(
                f"joining a convention needs base = \"multiprocTCPBase\" (got {self.base!r}); "
                "multiprocQueueBase and simpleSystemBase run on one host only")
        if not (self.orders or self.nostr or self.lightning):
            found.setdefault("orders", []).append(
                "orders, nostr and lightning are all false: this host would run nothing")
        elif not self.convention_leader and self.base != "multiprocTCPBase" and self.spans_hosts():
            off = ", ".join(name for name, on in self.host_capabilities().items() if not on)
            found.setdefault("base", []).append(
                f"{off} = false leaves work for another host, which needs "
                f"base = \"multiprocTCPBase\" (got {self.base!r})")
        address = self.convention_address()
        if address is not None and address[0] in LOOPBACK_HOSTS and (
            address[1] == self.admin_port
        ):
            found.setdefault("convention_leader", []).append(
                f"points at this host's own admin port {address[1]}; leave it empty on the leader")
        # A leader on this machine may share the file (tests, a single-machine convention).
        remote_leader = address is not None and address[0] not in LOOPBACK_HOSTS
        if database_url is not None and remote_leader and isinstance(
            parse_database_url(database_url), SqliteLocation
        ):
            found.setdefault("convention_leader", []).append(
                "hosts of one convention share one database: database.url must be "
                "postgresql://… (a SQLite file is one machine's)")
        return [(key, "; ".join(reasons)) for key, reasons in found.items()]


@dataclass(frozen=True)
class LoggingSettings:
    level: str = setting("INFO", Choice(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), fold_case=True),
                         "Log level (any case).")


SECTION_CLASSES: dict[str, type] = {
    "mostro": MostroSettings,
    "lightning": LightningSettings,
    "nostr": NostrSettings,
    "database": DatabaseSettings,
    "expiration": ExpirationSettings,
    "anti_abuse_bond": AntiAbuseBondSettings,
    "price": PriceSettings,
    "actors": ActorsSettings,
    "logging": LoggingSettings,
}


def _field(section_obj: Any, key: str) -> Any:
    return next(f for f in fields(section_obj) if f.name == key)


def _shown(section_obj: Any, key: str) -> str:
    value = getattr(section_obj, key)
    if isinstance(value, NostrSecretKey):
        return f"<redacted> (public key {value.public_key_hex()})"
    if isinstance(section_obj, DatabaseSettings) and key == "url":
        return redact_database_url(value)
    if isinstance(spec_of(_field(section_obj, key)).rule, PriceTable):
        return "{" + ", ".join(f"{k} = {v}" for k, v in value) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(value) + "]"
    if value is None:
        return "(unset)"
    return str(value)


@dataclass(frozen=True)
class Settings:
    """Everything the daemon was configured with; immutable and picklable."""

    mostro: MostroSettings
    lightning: LightningSettings
    nostr: NostrSettings
    database: DatabaseSettings
    expiration: ExpirationSettings
    anti_abuse_bond: AntiAbuseBondSettings
    price: PriceSettings
    actors: ActorsSettings
    logging: LoggingSettings

    def describe(self) -> str:
        """A human summary, one `section.key = value` per line, secrets redacted."""
        lines = []
        for section_name in SECTION_CLASSES:
            section_obj = getattr(self, section_name)
            for section_field in fields(section_obj):
                lines.append(f"{section_name}.{section_field.name} = {_shown(section_obj, section_field.name)}")
        return "\n".join(lines)
