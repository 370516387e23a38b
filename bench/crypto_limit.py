"""Benchmark (1), the crypto limit: the cryptographic and parsing work of one request and its reply.

No daemon, no relay, no database, no actors: just what the Nostr adapter and the intake must do
for every client request, on one thread. Client requests (new-order / take-sell / cancel, each from
a fresh trade key with its own identity key: identity proofs on v2, identity-signed seals on v1)
are generated before any timing. The daemon-side pipeline per request is then timed:

    verify   outer event id + Schnorr signature (v1: also the seal's, and the rumor id)
    decrypt  NIP-44 conversation key (ECDH + HKDF) and decryption (v1: wrap and seal)
    parse    event JSON/shape (v1: seal and rumor too), content tuple, message, verify_message
    sig-verify  the trade signature and, on v2, the identity proof
    build    the reply message and its content tuple (v1: the rumor)
    encrypt  NIP-44 conversation key and encryption (v1: seal, fresh wrap key, wrap)
    sign     reply event id + Schnorr signature (v1: seal and wrap)

Two measurements: "end to end" calls the real adapter functions (`unwrap_inbound`, `parse_content`,
`verify_content`, `build_content`, `wrap_outbound`) request by request — its requests/s is the
ceiling later benchmarks compare against; the "breakdown" runs the same work split into the steps
above, still request by request, timing each step on its own. "cold" clears the per-peer caches (parsed
public keys, conversation keys) before each run, as for real clients who use a fresh trade key per
order; "warm" keeps them from an earlier pass over the same requests (a peer seen before).

It must not assert on speed, touch the network or the database, or change the adapter's code:
it reads the adapter's caches only to clear them and to count misses.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from adapters.nostr import keys, nip44, nip59
from adapters.nostr import transport as nostr_transport
from adapters.nostr.keys import KeyPair
from adapters.nostr.nostr_event import EventError, NostrEvent
from adapters.nostr.protocol import (
    Action,
    Content,
    Kind,
    Message,
    OrderPayload,
    ParseError,
    PaymentRequest,
    SignatureError,
    SmallOrder,
    Status,
    Transport,
    build_content,
    parse_content,
    stamp_version,
    verify_content,
    verify_message,
)
from bench import common

SCHEMA_VERSION = 1
BENCHMARK_NAME = "crypto_limit"
STEPS = ("verify", "decrypt", "parse", "sig-verify", "build", "encrypt", "sign")
TRANSPORTS = (Transport.NIP44, Transport.GIFT_WRAP)
CACHE_STATES = ("cold", "warm")
REQUEST_ACTIONS = (Action.NEW_ORDER, Action.TAKE_SELL, Action.CANCEL)
PRIMITIVES = ("schnorr_verify", "schnorr_sign", "ecdh", "keygen")
DEFAULT_REQUESTS, DEFAULT_RUNS, DEFAULT_WARMUP, DEFAULT_SEED = 1000, 5, 1, 38383
DM_EXPIRATION_SECONDS = nostr_transport.DEFAULT_DM_DAYS * nostr_transport.SECONDS_PER_DAY

# Unavoidable libsecp256k1 calls per request + reply, by transport and cache state. v2: event sig,
# trade sig and identity proof in; the reply reuses the inbound conversation key. v1: wrap sig,
# seal sig and trade sig in; ECDH for the one-off wrap key each way, plus seal layers when cold.
PRIMITIVE_COUNTS: dict[Transport, dict[str, dict[str, int]]] = {
    Transport.NIP44: {
        "cold": {"schnorr_verify": 3, "schnorr_sign": 1, "ecdh": 1, "keygen": 0},
        "warm": {"schnorr_verify": 3, "schnorr_sign": 1, "ecdh": 0, "keygen": 0},
    },
    Transport.GIFT_WRAP: {
        "cold": {"schnorr_verify": 3, "schnorr_sign": 2, "ecdh": 4, "keygen": 1},
        "warm": {"schnorr_verify": 3, "schnorr_sign": 2, "ecdh": 2, "keygen": 1},
    },
}


class BenchmarkBug(RuntimeError):
    """A pre-generated request failed the pipeline: the benchmark (or the adapter) is broken."""


# --- the per-peer caches ---------------------------------------------------------------------


def _peer_caches() -> tuple[Any, ...]:
    """The adapter's per-peer memo caches (parsed keys, conversation keys), looked up by name so a
    rename fails loudly here instead of silently turning "cold" into "warm"."""
    return (nip44.cached_conversation_key, keys._xonly, keys._even_point)


def clear_peer_caches() -> None:
    """Forget every peer: the state of a daemon meeting fresh trade keys."""
    for cache in _peer_caches():
        cache.cache_clear()


def conversation_key_misses() -> int:
    return nip44.cached_conversation_key.cache_info().misses


# --- client requests (generated outside the timed region) -------------------------------------


@dataclass(frozen=True)
class ClientRequest:
    """One client message as a relay delivers it, with what a test needs to open the reply."""

    event: dict[str, Any]
    action: Action
    trade_secret_hex: str
    trade_pubkey: str
    identity_pubkey: str


_BECH32_CHARS = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _invoice_shaped(rng: random.Random) -> str:
    """A string shaped like a mainnet BOLT11 invoice (length and alphabet); the crypto limit never
    decodes it, so it need not be valid."""
    return "lnbc" + str(rng.randint(1, 999)) + "u1p" + "".join(rng.choices(_BECH32_CHARS, k=260))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def client_message(action: Action, transport: Transport, index: int, rng: random.Random) -> Message:
    """A realistic inbound message for one of `REQUEST_ACTIONS`."""
    version = 2 if transport is Transport.NIP44 else 1
    if action is Action.NEW_ORDER:
        order = SmallOrder(
            amount=0,
            fiat_code=rng.choice(("eur", "usd", "ars", "ves", "cup")),
            fiat_amount=rng.randint(10, 2000),
            payment_method=rng.choice(("SEPA,Bank transfer", "face to face", "MercadoPago")),
            premium=rng.randint(-3, 5),
            kind=rng.choice((Kind.SELL, Kind.BUY)),
            status=Status.PENDING,
        )
        return Message(
            action, version=version, request_id=index, trade_index=index + 1,
            payload=OrderPayload(order),
        )
    if action is Action.TAKE_SELL:
        return Message(
            action, version=version, request_id=index, trade_index=index + 1, id=_uuid(rng),
            payload=PaymentRequest(None, _invoice_shaped(rng), None),
        )
    if action is Action.CANCEL:
        return Message(action, version=version, request_id=index, id=_uuid(rng))
    raise ValueError(f"no request template for {action}")


def make_requests(
    count: int, transport: Transport, node_pubkey: str, now: int, seed: int = DEFAULT_SEED
) -> list[ClientRequest]:
    """`count` distinct requests, each signed by its own trade key and identity key."""
    rng = random.Random(seed)
    entropy = nip59.SeededEntropy(seed + 1)
    requests: list[ClientRequest] = []
    for index in range(count):
        trade = nip59.fresh_keypair(entropy)
        identity = nip59.fresh_keypair(entropy)
        action = REQUEST_ACTIONS[index % len(REQUEST_ACTIONS)]
        message = client_message(action, transport, index, rng)
        plaintext = build_content(message, transport, trade.secret_hex, identity.secret_hex)
        event = nostr_transport.wrap_client_message(
            plaintext, trade.secret_hex, identity.secret_hex, node_pubkey, transport.value, now,
            entropy=entropy,
        )
        requests.append(
            ClientRequest(event, action, trade.secret_hex, trade.public_hex, identity.public_hex)
        )
    return requests


# --- the daemon's reply ------------------------------------------------------------------------


def reply_to(message: Message, transport: Transport, now: int) -> Message:
    """The daemon's direct answer to the requester (the order logic's real decisions aside)."""
    if message.action is Action.NEW_ORDER and isinstance(message.payload, OrderPayload):
        order_id = str(uuid.uuid4())
        order = dataclasses.replace(
            message.payload.order, id=order_id, status=Status.PENDING, created_at=now,
            expires_at=now + 86400,
        )
        reply = Message(
            Action.NEW_ORDER, request_id=message.request_id, trade_index=message.trade_index,
            id=order_id, payload=OrderPayload(order),
        )
    elif message.action is Action.TAKE_SELL:
        reply = Message(
            Action.WAITING_SELLER_TO_PAY, request_id=message.request_id, id=message.id
        )
    else:
        reply = Message(Action.CANCELED, request_id=message.request_id, id=message.id)
    return stamp_version(reply, transport)


# --- end to end: the real adapter calls ---------------------------------------------------------


def handle_request(
    event: dict[str, Any], node_secret_hex: str, transport: Transport, now: int
) -> dict[str, Any]:
    """What the daemon does for one request, crypto and parsing only: open, check, answer."""
    opened = nostr_transport.unwrap_inbound(event, node_secret_hex, transport.value, now)
    if isinstance(opened, nostr_transport.TransportError):
        raise BenchmarkBug(f"unwrap failed: {opened}")
    content = parse_content(opened.plaintext, transport)
    if isinstance(content, ParseError):
        raise BenchmarkBug(f"parse failed: {content}")
    why = verify_message(content.message)
    if why is not None:
        raise BenchmarkBug(f"verify_message: {why}")
    identity = verify_content(content, opened.sender, opened.seal_pubkey)
    if isinstance(identity, SignatureError):
        raise BenchmarkBug(f"signature: {identity}")
    reply = build_content(reply_to(content.message, transport, now), transport)
    return nostr_transport.wrap_outbound(reply, opened.sender, node_secret_hex, transport.value, now)


def run_end_to_end(
    requests: Sequence[ClientRequest],
    node_secret_hex: str,
    transport: Transport,
    now: int,
    latencies_ns: list[int] | None = None,
) -> common.Elapsed:
    """One timed pass over `requests`; returns its wall and CPU time, appends each request's
    wall nanoseconds to `latencies_ns`."""
    clock = time.perf_counter_ns
    record = latencies_ns.append if latencies_ns is not None else None
    with common.Stopwatch() as watch:
        for request in requests:
            before = clock()
            handle_request(request.event, node_secret_hex, transport, now)
            if record is not None:
                record(clock() - before)
    return watch.elapsed


# --- the breakdown: the same work, step by step ---------------------------------------------------


class _Flow:
    """One request's intermediate values as it moves through the steps."""

    __slots__ = (
        "raw", "event", "conv", "plaintext", "seal", "seal_conv", "rumor", "content", "sender",
        "seal_pubkey", "reply", "out_conv", "cipher", "seal_out", "wrap_key", "out",
    )

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw


@dataclass(frozen=True)
class Stage:
    name: str  # "<step>.<what>"
    step: str  # one of STEPS
    run: Callable[[_Flow], None]


def _ok(value: Any, what: str) -> Any:
    if isinstance(value, EventError | nip44.Nip44Error | ParseError | SignatureError):
        raise BenchmarkBug(f"{what}: {value}")
    return value


def _parse_event(raw: Any, kind: int, require_sig: bool = True) -> NostrEvent:
    parsed = NostrEvent.from_dict(raw, require_sig=require_sig) if isinstance(raw, dict) else (
        NostrEvent.from_json(raw, require_sig=require_sig)
    )
    event = _ok(parsed, "event")
    if event.kind != kind:
        raise BenchmarkBug(f"kind {event.kind}, expected {kind}")
    return event


def _verified(event: NostrEvent) -> None:
    if not event.verify():
        raise BenchmarkBug("event id or signature does not verify")


def _parse_tuple(flow: _Flow, transport: Transport) -> None:
    flow.content = _ok(parse_content(flow.plaintext, transport), "content")
    why = verify_message(flow.content.message)
    if why is not None:
        raise BenchmarkBug(f"verify_message: {why}")


def _check_signatures(content: Content, sender: str, seal_pubkey: str | None) -> None:
    _ok(verify_content(content, sender, seal_pubkey), "signature")


def nip44_stages(node: KeyPair, now: int) -> list[Stage]:
    """v2: kind 14 in (signed by the trade key), kind 14 out (signed by the node key)."""
    secret_hex, transport = node.secret_hex, Transport.NIP44

    def parse_event(f: _Flow) -> None:
        f.event = _parse_event(f.raw, nostr_transport.KIND_DIRECT_MESSAGE)

    def verify_event(f: _Flow) -> None:
        _verified(f.event)

    def conv_in(f: _Flow) -> None:
        f.conv = _ok(nip44.cached_conversation_key(secret_hex, f.event.pubkey), "conv")

    def decrypt(f: _Flow) -> None:
        f.plaintext = _ok(nip44.decrypt(f.event.content, f.conv), "decrypt")

    def parse(f: _Flow) -> None:
        _parse_tuple(f, transport)

    def sig_verify(f: _Flow) -> None:
        _check_signatures(f.content, f.event.pubkey, None)

    def build(f: _Flow) -> None:
        f.reply = build_content(reply_to(f.content.message, transport, now), transport)

    def conv_out(f: _Flow) -> None:
        f.out_conv = _ok(nip44.cached_conversation_key(secret_hex, f.event.pubkey), "conv")

    def encrypt(f: _Flow) -> None:
        f.cipher = nip44.encrypt(f.reply, f.out_conv, os.urandom(32))

    def sign(f: _Flow) -> None:
        tags = [["p", f.event.pubkey], ["expiration", str(now + DM_EXPIRATION_SECONDS)]]
        event = NostrEvent.unsigned(
            node.public_hex, now, nostr_transport.KIND_DIRECT_MESSAGE, tags, f.cipher
        )
        f.out = event.sign(node, os.urandom(32)).to_dict()

    return [
        Stage("parse.event", "parse", parse_event),
        Stage("verify.event", "verify", verify_event),
        Stage("decrypt.conversation_key", "decrypt", conv_in),
        Stage("decrypt.payload", "decrypt", decrypt),
        Stage("parse.content", "parse", parse),
        Stage("sig-verify.content", "sig-verify", sig_verify),
        Stage("build.reply", "build", build),
        Stage("encrypt.conversation_key", "encrypt", conv_out),
        Stage("encrypt.payload", "encrypt", encrypt),
        Stage("sign.event", "sign", sign),
    ]


def gift_wrap_stages(node: KeyPair, now: int) -> list[Stage]:
    """v1: wrap → seal (identity) → rumor (trade key) in; rumor and seal by the node key, wrap by a
    fresh key out."""
    secret_hex, transport = node.secret_hex, Transport.GIFT_WRAP
    entropy = nip59.SYSTEM_ENTROPY

    def parse_wrap(f: _Flow) -> None:
        f.event = _parse_event(f.raw, nip59.KIND_GIFT_WRAP)

    def verify_wrap(f: _Flow) -> None:
        _verified(f.event)

    def conv_wrap(f: _Flow) -> None:  # one-off key: never cached (as nip59.unwrap does)
        f.conv = _ok(nip44.conversation_key_from_bytes(node.secret, f.event.pubkey), "conv")

    def decrypt_wrap(f: _Flow) -> None:
        f.plaintext = _ok(nip44.decrypt(f.event.content, f.conv), "decrypt wrap")

    def parse_seal(f: _Flow) -> None:
        f.seal = _parse_event(f.plaintext, nip59.KIND_SEAL)

    def verify_seal(f: _Flow) -> None:
        _verified(f.seal)

    def conv_seal(f: _Flow) -> None:
        f.seal_conv = _ok(nip44.cached_conversation_key(secret_hex, f.seal.pubkey), "conv")

    def decrypt_seal(f: _Flow) -> None:
        f.plaintext = _ok(nip44.decrypt(f.seal.content, f.seal_conv), "decrypt seal")

    def parse_rumor(f: _Flow) -> None:
        f.rumor = _parse_event(f.plaintext, nip59.KIND_RUMOR_MOSTRO, require_sig=False)
        f.plaintext = f.rumor.content

    def verify_rumor_id(f: _Flow) -> None:
        if not f.rumor.has_valid_id():
            raise BenchmarkBug("rumor id")

    def parse(f: _Flow) -> None:
        _parse_tuple(f, transport)

    def sig_verify(f: _Flow) -> None:
        _check_signatures(f.content, f.rumor.pubkey, f.seal.pubkey)

    def build(f: _Flow) -> None:
        text = build_content(reply_to(f.content.message, transport, now), transport)
        f.reply = nip59.make_rumor(node.public_hex, text, now).to_json()

    def conv_seal_out(f: _Flow) -> None:
        f.out_conv = _ok(nip44.cached_conversation_key(secret_hex, f.rumor.pubkey), "conv")

    def encrypt_seal(f: _Flow) -> None:
        f.cipher = nip44.encrypt(f.reply, f.out_conv, os.urandom(32))

    def sign_seal(f: _Flow) -> None:
        created_at = nip59.tweaked_timestamp(now, entropy)
        seal = NostrEvent.signed(node, created_at, nip59.KIND_SEAL, (), f.cipher, os.urandom(32))
        f.seal_out = seal.to_json()

    def wrap_key(f: _Flow) -> None:
        f.wrap_key = nip59.fresh_keypair(entropy)

    def conv_wrap_out(f: _Flow) -> None:
        f.out_conv = _ok(
            nip44.conversation_key_from_bytes(f.wrap_key.secret, f.rumor.pubkey), "conv"
        )

    def encrypt_wrap(f: _Flow) -> None:
        f.cipher = nip44.encrypt(f.seal_out, f.out_conv, os.urandom(32))

    def sign_wrap(f: _Flow) -> None:
        created_at = nip59.tweaked_timestamp(now, entropy)
        tags = [["p", f.rumor.pubkey]]
        event = NostrEvent.unsigned(
            f.wrap_key.public_hex, created_at, nip59.KIND_GIFT_WRAP, tags, f.cipher
        )
        f.out = event.sign(f.wrap_key, os.urandom(32)).to_dict()

    return [
        Stage("parse.wrap", "parse", parse_wrap),
        Stage("verify.wrap", "verify", verify_wrap),
        Stage("decrypt.wrap_conversation_key", "decrypt", conv_wrap),
        Stage("decrypt.wrap", "decrypt", decrypt_wrap),
        Stage("parse.seal", "parse", parse_seal),
        Stage("verify.seal", "verify", verify_seal),
        Stage("decrypt.seal_conversation_key", "decrypt", conv_seal),
        Stage("decrypt.seal", "decrypt", decrypt_seal),
        Stage("parse.rumor", "parse", parse_rumor),
        Stage("verify.rumor_id", "verify", verify_rumor_id),
        Stage("parse.content", "parse", parse),
        Stage("sig-verify.content", "sig-verify", sig_verify),
        Stage("build.reply_and_rumor", "build", build),
        Stage("encrypt.seal_conversation_key", "encrypt", conv_seal_out),
        Stage("encrypt.seal", "encrypt", encrypt_seal),
        Stage("sign.seal", "sign", sign_seal),
        Stage("encrypt.wrap_keygen", "encrypt", wrap_key),
        Stage("encrypt.wrap_conversation_key", "encrypt", conv_wrap_out),
        Stage("encrypt.wrap", "encrypt", encrypt_wrap),
        Stage("sign.wrap", "sign", sign_wrap),
    ]


def stages_for(transport: Transport, node: KeyPair, now: int) -> list[Stage]:
    return nip44_stages(node, now) if transport is Transport.NIP44 else gift_wrap_stages(node, now)


def run_stages(
    requests: Sequence[ClientRequest],
    stages: Sequence[Stage],
    samples_ns: dict[str, list[int]] | None = None,
) -> tuple[common.Elapsed, list[dict[str, Any]]]:
    """The pipeline split into stages, request by request (so CPU caches behave as in the real
    pipeline); appends each stage's wall nanoseconds per request to `samples_ns[stage.name]`."""
    clock = time.perf_counter_ns
    recorders = [
        (stage.run, samples_ns.setdefault(stage.name, []).append if samples_ns is not None else None)
        for stage in stages
    ]
    replies: list[dict[str, Any]] = []
    with common.Stopwatch() as watch:
        for request in requests:
            flow = _Flow(request.event)
            for run, record in recorders:
                start = clock()
                run(flow)
                if record is not None:
                    record(clock() - start)
            replies.append(flow.out)
    return watch.elapsed, replies


# --- primitives and the floor they set ---------------------------------------------------------


def measure_primitives(repetitions: int = 2000) -> dict[str, float]:
    """µs per libsecp256k1 call through `keys` (parsed keys cached, as on the hot path)."""
    signer, peer = keys.generate_keypair(), keys.generate_keypair()
    digest, aux = os.urandom(32), os.urandom(32)
    signature = signer.sign(digest, aux)
    keys.verify(signature, digest, signer.public_hex)
    keys.ecdh_x(signer.secret, peer.public_hex)
    calls: dict[str, Callable[[], object]] = {
        "schnorr_verify": lambda: keys.verify(signature, digest, signer.public_hex),
        "schnorr_sign": lambda: signer.sign(digest, aux),
        "ecdh": lambda: keys.ecdh_x(signer.secret, peer.public_hex),
        "keygen": keys.generate_keypair,
    }
    return {
        name: round(common.time_per_call_ns(call, repetitions) / common.NS_PER_US, 3)
        for name, call in calls.items()
    }


def primitive_floor_us(transport: Transport, cache: str, primitives_us: dict[str, float]) -> float:
    counts = PRIMITIVE_COUNTS[transport][cache]
    return sum(count * primitives_us[name] for name, count in counts.items())


# --- one transport: cold and warm runs, alternated ----------------------------------------------


@dataclass
class _CaseRecord:
    """What the timed runs of one transport in one cache state collected."""

    passes: list[common.Elapsed] = dataclasses.field(default_factory=list)
    latencies_ns: list[int] = dataclasses.field(default_factory=list)
    misses: list[int] = dataclasses.field(default_factory=list)
    stage_passes: list[common.Elapsed] = dataclasses.field(default_factory=list)
    stage_samples_ns: dict[str, list[int]] = dataclasses.field(default_factory=dict)


def measure_transport(
    transport: Transport,
    requests: Sequence[ClientRequest],
    node: KeyPair,
    now: int,
    runs: int,
    warmup: int,
    primitives_us: dict[str, float] | None = None,
) -> dict[str, dict[str, Any]]:
    """End-to-end passes and the step breakdown, cold and warm.

    Each round runs: cold end to end (caches cleared first), warm end to end (the caches now hold
    every peer of the cold pass), then the same two for the step breakdown. Alternating keeps the
    cold/warm comparison fair when the machine's speed drifts during the benchmark.
    """
    stages = stages_for(transport, node, now)
    records = {cache: _CaseRecord() for cache in CACHE_STATES}
    for round_index in range(warmup + runs):
        timed = round_index >= warmup
        for cache in CACHE_STATES:
            record = records[cache]
            if cache == "cold":
                clear_peer_caches()
            gc.collect()
            latencies: list[int] = []
            start_misses = conversation_key_misses()
            elapsed = run_end_to_end(requests, node.secret_hex, transport, now, latencies)
            if timed:
                record.passes.append(elapsed)
                record.latencies_ns.extend(latencies)
                record.misses.append(conversation_key_misses() - start_misses)
        for cache in CACHE_STATES:
            record = records[cache]
            if cache == "cold":
                clear_peer_caches()
            gc.collect()
            samples = record.stage_samples_ns if timed else None
            elapsed, _ = run_stages(requests, stages, samples)
            if timed:
                record.stage_passes.append(elapsed)
    return {
        cache: _summarize_case(transport, cache, len(requests), stages, records[cache],
                               primitives_us)
        for cache in CACHE_STATES
    }


def _summarize_case(
    transport: Transport,
    cache: str,
    count: int,
    stages: Sequence[Stage],
    record: _CaseRecord,
    primitives_us: dict[str, float] | None,
) -> dict[str, Any]:
    wall_pass = _median([elapsed.wall_ns for elapsed in record.passes])
    cpu_pass = _median([elapsed.cpu_ns for elapsed in record.passes])
    samples = record.stage_samples_ns
    substeps = {
        stage.name: common.summarize_ns(samples[stage.name]).as_dict() for stage in stages
    }
    steps: dict[str, dict[str, float]] = {}
    for step in STEPS:
        members = [samples[stage.name] for stage in stages if stage.step == step]
        per_request = [sum(values) for values in zip(*members, strict=True)]
        stats = common.summarize_ns(per_request)
        steps[step] = {"p50_us": round(stats.p50_us, 2), "mean_us": round(stats.mean_us, 2)}
    staged_cpu = _median([elapsed.cpu_ns for elapsed in record.stage_passes])
    result: dict[str, Any] = {
        "requests": count,
        "requests_per_s": round(common.per_second(count, wall_pass), 1),
        "us_per_request": round(wall_pass / count / common.NS_PER_US, 2),
        "cpu_requests_per_s": round(common.per_second(count, cpu_pass), 1),
        "cpu_us_per_request": round(cpu_pass / count / common.NS_PER_US, 2),
        "runs_requests_per_s": [
            round(common.per_second(count, elapsed.wall_ns), 1) for elapsed in record.passes
        ],
        "runs_cpu_requests_per_s": [
            round(common.per_second(count, elapsed.cpu_ns), 1) for elapsed in record.passes
        ],
        "latency_us": common.summarize_ns(record.latencies_ns).as_dict(),
        "conversation_key_misses_per_request": round(_median(record.misses) / count, 3),
        "steps_us": {step: figures["p50_us"] for step, figures in steps.items()},
        "steps_total_us": round(sum(figures["p50_us"] for figures in steps.values()), 2),
        "steps_mean_us": {step: figures["mean_us"] for step, figures in steps.items()},
        "staged_cpu_us_per_request": round(staged_cpu / count / common.NS_PER_US, 2),
        "substeps": substeps,
        "primitive_counts": dict(PRIMITIVE_COUNTS[transport][cache]),
    }
    if primitives_us is not None:
        result["primitive_floor_us"] = round(primitive_floor_us(transport, cache, primitives_us), 2)
    if cache == "warm" and result["conversation_key_misses_per_request"] > 0:
        result["note"] = "more peers than the adapter's caches hold: warm figures are partly cold"
    return result


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 2) for name, value in values.items()}


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# --- the whole benchmark ---------------------------------------------------------------------------


def measure(
    requests: int = DEFAULT_REQUESTS,
    transports: Sequence[Transport] = TRANSPORTS,
    runs: int = DEFAULT_RUNS,
    warmup: int = DEFAULT_WARMUP,
    seed: int = DEFAULT_SEED,
    with_primitives: bool = True,
    pinned: str = "not pinned",
    primitive_repetitions: int = 2000,
) -> dict[str, Any]:
    """Run the benchmark and return its report (what `--json` prints)."""
    if requests < 1:
        raise ValueError("need at least one request")
    node = keys.generate_keypair(random.Random(seed).randbytes(32))
    now = int(time.time())
    primitives_us = measure_primitives(primitive_repetitions) if with_primitives else None
    results: dict[str, Any] = {}
    for transport in transports:
        batch = make_requests(requests, transport, node.public_hex, now, seed)
        results[transport.value] = measure_transport(
            transport, batch, node, now, runs, warmup, primitives_us
        )
    machine = common.describe_machine()
    report: dict[str, Any] = {
        "benchmark": BENCHMARK_NAME,
        "schema": SCHEMA_VERSION,
        "machine": machine.as_dict(),
        "machine_line": machine.line(),
        "params": {
            "requests": requests, "runs": runs, "warmup": warmup, "seed": seed,
            "actions": [action.value for action in REQUEST_ACTIONS], "pinned": pinned,
            "single_thread": True,
        },
        "steps": list(STEPS),
        "transports": results,
    }
    if primitives_us is not None:
        report["primitives_us"] = primitives_us
    return report


def ceiling_requests_per_s(
    report: dict[str, Any], transport: str, cache: str = "cold", clock: str = "wall"
) -> float:
    """The crypto limit a later benchmark divides its own requests/s by ("ratio to (1)").

    `clock="cpu"` gives the CPU-time figure (steadier on a busy machine); `cache="cold"` is the
    realistic one (clients use a fresh trade key per order).
    """
    case = report["transports"][transport][cache]
    return float(case["cpu_requests_per_s"] if clock == "cpu" else case["requests_per_s"])


def format_report(report: dict[str, Any]) -> str:
    """The human tables: throughput per transport and cache state, then the step breakdown."""
    params = report["params"]
    lines = [
        report["machine_line"],
        f"crypto limit: {params['requests']} distinct requests "
        f"({'/'.join(params['actions'])}), median of {params['runs']} runs after "
        f"{params['warmup']} warm-up, one thread ({params['pinned']})",
        "",
    ]
    rows, breakdown = [], []
    for transport, by_cache in report["transports"].items():
        for cache, case in by_cache.items():
            latency = case["latency_us"]
            rows.append([
                f"{transport} {cache}", f"{case['requests_per_s']:,.0f}",
                f"{case['us_per_request']:.1f}", f"{latency['p50_us']:.1f}",
                f"{latency['p99_us']:.1f}", f"{case['cpu_requests_per_s']:,.0f}",
                f"{case['cpu_us_per_request']:.1f}",
                f"{case['conversation_key_misses_per_request']:.2f}",
                f"{case['primitive_floor_us']:.1f}" if "primitive_floor_us" in case else "-",
            ])
            breakdown.append([
                f"{transport} {cache}",
                *(f"{case['steps_us'][step]:.1f}" for step in report["steps"]),
                f"{case['steps_total_us']:.1f}",
            ])
    lines.append(common.format_table(
        ["request+reply", "req/s", "µs/req", "p50 µs", "p99 µs", "CPU req/s", "CPU µs/req",
         "conv-key misses/req", "secp256k1 floor µs"], rows))
    lines += ["", "breakdown (median µs per request of each step, timed request by request):"]
    lines.append(common.format_table(["", *report["steps"], "sum"], breakdown))
    if "primitives_us" in report:
        primitives = ", ".join(
            f"{name} {value:.1f}" for name, value in report["primitives_us"].items()
        )
        lines += ["", f"libsecp256k1 calls (CPU µs each): {primitives}"]
    notes = [
        f"note: {transport} {cache}: {case['note']}"
        for transport, by_cache in report["transports"].items()
        for cache, case in by_cache.items() if "note" in case
    ]
    return "\n".join(lines + notes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.crypto_limit",
        description="Crypto and parsing cost of one Mostro request + reply (no daemon).",
    )
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, metavar="N",
                        help=f"distinct client requests per transport (default {DEFAULT_REQUESTS})")
    parser.add_argument("--transport", choices=("nip44", "gift-wrap", "both"), default="both")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS,
                        help=f"timed passes per case (default {DEFAULT_RUNS})")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP,
                        help=f"untimed passes first (default {DEFAULT_WARMUP})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--pin-cpu", type=int, default=None, metavar="CPU",
                        help="restrict the process to this processor")
    parser.add_argument("--no-primitives", action="store_true",
                        help="skip the libsecp256k1 micro-benchmark (and the floor column)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.runs < 1 or args.warmup < 0:
        parser.error("need --requests >= 1, --runs >= 1, --warmup >= 0")
    pinned = common.pin_to_cpu(args.pin_cpu) if args.pin_cpu is not None else "not pinned"
    transports = TRANSPORTS if args.transport == "both" else (Transport(args.transport),)
    report = measure(
        args.requests, transports, args.runs, args.warmup, args.seed,
        with_primitives=not args.no_primitives, pinned=pinned,
    )
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
