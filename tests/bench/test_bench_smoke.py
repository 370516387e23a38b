"""Smoke runs of the benchmarks with tiny sizes: the report has every figure, the pipeline it times
really opens requests and builds replies a client can read, and its cache and secp256k1-call model
matches what the adapter does. Nothing here asserts on speed.
"""

from __future__ import annotations

import importlib
import io
import json
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from adapters.nostr import keys
from adapters.nostr import transport as nostr_transport
from adapters.nostr.keys import KeyPair
from adapters.nostr.protocol import Action, Transport, parse_content

REPO = Path(__file__).resolve().parents[2]
REPLY_ACTION = {
    Action.NEW_ORDER: Action.NEW_ORDER,
    Action.TAKE_SELL: Action.WAITING_SELLER_TO_PAY,
    Action.CANCEL: Action.CANCELED,
}


def _import(name: str) -> ModuleType:
    # bench/ is run from the repository root and is not an installed package
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def crypto_limit() -> ModuleType:
    return _import("bench.crypto_limit")


@pytest.fixture(scope="module")
def common() -> ModuleType:
    return _import("bench.common")


@pytest.fixture(scope="module")
def node() -> KeyPair:
    return keys.generate_keypair(bytes(range(1, 33)))


@pytest.fixture(scope="module")
def small_report(crypto_limit: ModuleType) -> dict[str, Any]:
    return crypto_limit.measure(requests=3, runs=2, warmup=0, primitive_repetitions=5)


def _run_main(crypto_limit: ModuleType, *args: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert crypto_limit.main(["--requests", "3", "--runs", "1", "--warmup", "0", *args]) == 0
    return out.getvalue()


# --- the report -------------------------------------------------------------------------------


def test_report_has_every_figure(crypto_limit: ModuleType, small_report: dict[str, Any]) -> None:
    assert small_report["benchmark"] == "crypto_limit"
    assert small_report["machine_line"].startswith("machine: ")
    assert small_report["machine"]["python"].endswith(sys.version.split()[0])
    assert set(small_report["primitives_us"]) == set(crypto_limit.PRIMITIVES)
    assert set(small_report["transports"]) == {"nip44", "gift-wrap"}
    for transport, by_cache in small_report["transports"].items():
        assert set(by_cache) == {"cold", "warm"}
        for cache, case in by_cache.items():
            assert case["requests"] == 3
            assert case["requests_per_s"] > 0 and case["cpu_requests_per_s"] > 0
            assert case["us_per_request"] == pytest.approx(1e6 / case["requests_per_s"], rel=0.01)
            assert len(case["runs_requests_per_s"]) == 2
            assert case["latency_us"]["count"] == 2 * 3
            assert case["latency_us"]["p50_us"] <= case["latency_us"]["p99_us"]
            assert list(case["steps_us"]) == list(crypto_limit.STEPS)
            assert all(value > 0 for value in case["steps_us"].values()), (transport, cache)
            assert case["steps_total_us"] == pytest.approx(sum(case["steps_us"].values()), abs=0.1)
            assert case["primitive_floor_us"] > 0
            assert crypto_limit.ceiling_requests_per_s(small_report, transport, cache) == (
                case["requests_per_s"]
            )


def test_cold_runs_miss_the_conversation_key_cache_and_warm_runs_do_not(
    small_report: dict[str, Any],
) -> None:
    # v2: one conversation key per request (the reply reuses it); v1: the seal layer in and out
    expected_cold = {"nip44": 1.0, "gift-wrap": 2.0}
    for transport, by_cache in small_report["transports"].items():
        assert by_cache["cold"]["conversation_key_misses_per_request"] == expected_cold[transport]
        assert by_cache["warm"]["conversation_key_misses_per_request"] == 0.0
        assert "note" not in by_cache["warm"]


def test_json_output_reads_back(crypto_limit: ModuleType, common: ModuleType, tmp_path: Path) -> None:
    text = _run_main(crypto_limit, "--transport", "nip44", "--json", "--no-primitives")
    path = tmp_path / "crypto_limit.json"
    path.write_text(text, encoding="utf-8")
    report = common.read_report(path)
    assert list(report["transports"]) == ["nip44"]
    assert "primitives_us" not in report
    assert crypto_limit.ceiling_requests_per_s(report, "nip44", clock="cpu") > 0


def test_human_output_has_the_machine_line_and_both_tables(crypto_limit: ModuleType) -> None:
    text = _run_main(crypto_limit, "--transport", "gift-wrap", "--no-primitives")
    lines = text.splitlines()
    assert lines[0].startswith("machine: ") and "Python" in lines[0]
    assert any(line.startswith("gift-wrap cold") for line in lines)
    assert any(line.startswith("gift-wrap warm") for line in lines)
    assert "sig-verify" in text and "req/s" in text
    assert not any(line.startswith("nip44") for line in lines)


# --- what is timed is the real work ---------------------------------------------------------------


@pytest.mark.parametrize("transport", [Transport.NIP44, Transport.GIFT_WRAP])
def test_timed_pipelines_answer_each_request_readably(
    crypto_limit: ModuleType, node: KeyPair, transport: Transport
) -> None:
    now = int(time.time())
    requests = crypto_limit.make_requests(3, transport, node.public_hex, now, seed=7)
    assert [request.action for request in requests] == list(crypto_limit.REQUEST_ACTIONS)
    assert len({request.trade_pubkey for request in requests}) == 3
    _, staged_replies = crypto_limit.run_stages(requests, crypto_limit.stages_for(transport, node, now))
    for request, staged in zip(requests, staged_replies, strict=True):
        sent = parse_content(
            nostr_transport.unwrap_inbound(request.event, node.secret_hex, transport.value, now)
            .plaintext, transport,
        )
        for reply in (
            crypto_limit.handle_request(request.event, node.secret_hex, transport, now),
            staged,
        ):
            opened = nostr_transport.unwrap_reply(
                reply, request.trade_secret_hex, transport.value, expected_sender=node.public_hex
            )
            assert not isinstance(opened, nostr_transport.TransportError), opened
            content = parse_content(opened[0], transport)
            assert content.message.action is REPLY_ACTION[request.action]
            assert content.message.request_id == sent.message.request_id
            assert content.message.version == (2 if transport is Transport.NIP44 else 1)
            if request.action is not Action.NEW_ORDER:
                assert content.message.id == sent.message.id


class _CallCounter:
    """Counts the libsecp256k1 calls the adapter makes (verify, sign, ECDH, key generation)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts = dict.fromkeys(("schnorr_verify", "schnorr_sign", "ecdh", "keygen"), 0)
        for module, attribute, name in (
            (keys, "verify", "schnorr_verify"),
            (keys, "ecdh_x", "ecdh"),
            (keys, "keypair_from_bytes", "keygen"),
            (KeyPair, "sign", "schnorr_sign"),
        ):
            monkeypatch.setattr(module, attribute, self._counting(getattr(module, attribute), name))

    def _counting(self, original: Any, name: str) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] += 1
            return original(*args, **kwargs)

        return counted

    def take(self) -> dict[str, int]:
        taken = dict(self.counts)
        self.counts = dict.fromkeys(self.counts, 0)
        return taken


@pytest.mark.parametrize("transport", [Transport.NIP44, Transport.GIFT_WRAP])
def test_secp256k1_call_model_matches_both_pipelines(
    crypto_limit: ModuleType, node: KeyPair, transport: Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(time.time())
    requests = crypto_limit.make_requests(1, transport, node.public_hex, now, seed=11)
    stages = crypto_limit.stages_for(transport, node, now)
    expected = crypto_limit.PRIMITIVE_COUNTS[transport]
    counter = _CallCounter(monkeypatch)
    for run in (
        lambda: crypto_limit.handle_request(requests[0].event, node.secret_hex, transport, now),
        lambda: crypto_limit.run_stages(requests, stages),
    ):
        crypto_limit.clear_peer_caches()
        run()
        assert counter.take() == expected["cold"]
        run()
        assert counter.take() == expected["warm"]


# --- the shared helpers ----------------------------------------------------------------------------


def test_common_summaries_and_tables(common: ModuleType) -> None:
    stats = common.summarize_ns([1000 * value for value in range(1, 101)])
    assert (stats.count, stats.p50_us, stats.p99_us, stats.min_us, stats.max_us) == (
        100, 50.0, 99.0, 1.0, 100.0,
    )
    assert stats.median_us == 50.5
    calls: list[str] = []
    timed = common.repeat_runs(
        lambda: calls.append("run") or len(calls), runs=2, warmup=1,
        before_each=lambda: calls.append("reset"),
    )
    assert timed == [4, 6] and calls.count("run") == 3
    table = common.format_table(["case", "req/s"], [["a", "1"], ["long name", "12,345"]])
    assert table.splitlines() == [
        "case        req/s", "---------  ------", "a" + " " * 15 + "1", "long name  12,345",
    ]
    assert common.describe_machine().line().startswith("machine: ")
    assert json.dumps(common.describe_machine().as_dict())


@pytest.mark.parametrize(("before", "after", "noted"), [
    (2006.0, 3031.0, True),  # seen on this machine: the speed changed within the case
    (2900.0, 3000.0, False),
])
def test_intake_report_says_when_the_crypto_limit_moved_during_a_case(
        before: float, after: float, noted: bool) -> None:
    intake = _import("bench.intake_throughput")
    case = {
        "transport": "nip44", "path": "inject", "base": "simpleSystemBase",
        "requests_per_s": 1000.0, "committed_requests_per_s": 1100.0,
        "crypto_limit_per_s": (before + after) / 2,
        "crypto_limit_before_after_per_s": [before, after], "ratio_to_crypto_limit": 0.4,
        "replies_published": 8, "expected_replies": 8, "unanswered": 0,
        "cpu_ms_per_request": {"daemon": 1.0}, "bottleneck": {"process": "daemon", "core_share": 0.5},
        "cpu": {}, "wall_s": 1.0, "requests": 6,
    }
    text = intake.format_report({"machine_line": "machine: test", "params": {"requests": 6},
                                 "cases": [case]})
    notes = [line for line in text.splitlines() if line.startswith("note: the crypto limit moved")]
    assert bool(notes) == noted
    if noted:
        assert "51 %" in notes[0] and "nip44 inject" in notes[0]
