"""`replay export` / `replay run` on a journal written by the real order processor: a faithful
journal replays without divergence; a tampered effect stops the replay at its step."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from actors import replay
from actors.tools_cli import replay_main
from storage import repository

from .conftest import load_data
from .journal_kit import REQUEST_ORDER_ID, run_script

SCRIPT = load_data("sell_trade.json")
STEPS = len(SCRIPT["steps"])


@pytest.fixture
def traded(db, settings) -> str:
    return run_script(SCRIPT, settings)[0]


@pytest.fixture
def exported(traded, config_path, tmp_path) -> Path:
    path = tmp_path / "journal.jsonl"
    out = io.StringIO()
    assert replay_main(["export", traded, "-o", str(path), "--config", str(config_path)], out) == 0
    assert f"wrote {STEPS} journal entr" in out.getvalue()
    return path


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_holds_every_step_with_the_new_order_entry_first(exported, traded):
    lines = read_lines(exported)
    assert len(lines) == STEPS
    # the new-order decision was journaled under the request's id, the rest under the order's
    assert lines[0]["order_id"] == REQUEST_ORDER_ID
    assert [line["order_id"] for line in lines[1:]] == [traded] * (STEPS - 1)
    assert [line["seq"] for line in lines[1:]] == list(range(1, STEPS))
    assert {"now", "entropy", "network", "prices", "reputations"} <= set(lines[0]["decision"]["context"])


def test_faithful_journal_replays_without_divergence(exported, config_path):
    out = io.StringIO()
    code = replay_main(["run", str(exported), "--config", str(config_path)], out)
    text = out.getvalue()
    assert code == 0, text
    assert f"replayed {STEPS} step(s): no divergence" in text
    assert "status (none) → pending" in text
    assert "status fiat-sent → settled-hold-invoice" in text
    assert "effect SettleHoldInvoice(" in text
    assert "diff   order.status: \"active\" → \"fiat-sent\"" in text


def test_replayed_states_equal_the_stored_row(exported, traded, settings):
    lines = replay.read_export(exported)
    steps = list(replay.replay_lines(lines, settings))
    assert all(isinstance(s, replay.ReplayStep) and not s.divergences for s in steps)
    assert [s.status_after for s in steps] == [step["expect"] for step in SCRIPT["steps"]]
    recorded_final = lines[-1]["decision"]["changes"]["order"]  # rating changed the order
    stored = repository.find_order(traded)
    assert recorded_final["status"]["v"] == stored.status == "success"
    assert recorded_final["buyer_sent_rate"] is True and stored.buyer_sent_rate


def _tamper_first_effect(path: Path, predicate) -> int:
    lines = read_lines(path)
    index = next(i for i, line in enumerate(lines) if predicate(line))
    effect = lines[index]["decision"]["effects"][0]
    if effect["__type__"] == "SendMessage":
        effect["recipient"] = "ff" * 32
    else:
        effect["hash"] = "ee" * 32
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return index + 1


def test_tampered_effect_stops_at_its_step_with_exit_1(exported, config_path):
    number = _tamper_first_effect(
        exported, lambda line: any(e["__type__"] == "SettleHoldInvoice" for e in line["decision"]["effects"]))
    out = io.StringIO()
    code = replay_main(["run", str(exported), "--config", str(config_path)], out)
    text = out.getvalue()
    assert code == 1
    assert f"DIVERGENCE at step {number} " in text
    assert "effects differ at [0].hash" in text
    assert f"step {number + 1} " not in text  # stopped there
    assert f"step {number - 1} " in text  # earlier steps were shown


def test_tampered_state_is_a_divergence_too(exported, settings):
    lines = read_lines(exported)
    lines[3]["decision"]["changes"]["order"]["taken_at"] += 1
    steps = list(replay.replay_lines(lines, settings))
    assert len(steps) == 4
    divergence = steps[-1].divergences[0]
    assert (divergence.part, divergence.path) == ("state", "order.taken_at")
    assert divergence.replayed == divergence.recorded - 1


def test_journal_without_its_start_says_so(exported, config_path, tmp_path):
    lines = exported.read_text().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[1:]) + "\n")
    out = io.StringIO()
    assert replay_main(["run", str(cut), "--config", str(config_path)], out) == 2
    assert "starts with take-sell" in out.getvalue()
    assert "not new-order" in out.getvalue()


def test_unknown_order_and_bad_files_are_one_line_errors(db, config_path, tmp_path, capsys):
    out = io.StringIO()
    assert replay_main(["export", "nope", "-o", str(tmp_path / "x"), "--config", str(config_path)], out) == 2
    assert "no journal entries for order nope" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert replay_main(["run", str(bad), "--config", str(config_path)], out) == 2
    assert "bad.jsonl:1: not JSON" in capsys.readouterr().err
    assert replay_main(["run", str(tmp_path / "missing.jsonl"), "--config", str(config_path)], out) == 2
    assert "cannot read" in capsys.readouterr().err


RANGE = load_data("range_trade.json")


@pytest.fixture
def range_orders(db, settings) -> list[str]:
    return run_script(RANGE, settings)


def test_range_child_replays_from_the_parent_entry_that_created_it(range_orders, config_path, tmp_path):
    parent, child = range_orders
    path = tmp_path / "child.jsonl"
    assert replay_main(["export", child, "-o", str(path), "--config", str(config_path)], io.StringIO()) == 0
    lines = read_lines(path)
    subjects = [replay.subject_of(line) for line in lines]
    assert subjects == [parent] * (len(RANGE["steps"]) - 1) + [child]
    out = io.StringIO()
    code = replay_main(["run", str(path), "--config", str(config_path)], out)
    text = out.getvalue()
    assert code == 0, text
    assert f"order {child}  seq 1: take-sell from b2b2b2b2" in text
    assert "status pending → waiting-buyer-invoice" in text.split(f"order {child}")[-1]


def test_range_child_without_its_parent_says_so(range_orders, settings, config_path, tmp_path):
    parent, child = range_orders
    lines = [line for line in replay.export_journal(child) if replay.subject_of(line) == child]
    path = tmp_path / "orphan.jsonl"
    replay.write_export(lines, path)
    out = io.StringIO()
    assert replay_main(["run", str(path), "--config", str(config_path)], out) == 2
    assert f"is a range child of {parent}" in out.getvalue()
    assert "not in the file" in out.getvalue()
