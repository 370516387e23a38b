"""`inspect stuck` over manufactured orders: each stuck reason is found and named, healthy
orders are not flagged (cases in data/stuck_cases.json)."""

from __future__ import annotations

import io
import json

import pytest

from actors import inspection
from actors.stuck_rules import RULE_OUTBOX, Thresholds
from actors.tools_cli import inspect_main

from .conftest import case_order_id, install_case, install_outbox, load_data

DATA = load_data("stuck_cases.json")
NOW = DATA["now"]
CASES = DATA["cases"]


@pytest.fixture
def all_cases(db):
    ids = [install_case(DATA, index) for index in range(len(CASES))]
    for effect in DATA["orderless_outbox"]:
        install_outbox(effect, None, NOW)
    return ids


def rules_by_order(findings) -> dict[str | None, list[str]]:
    found: dict[str | None, list[str]] = {}
    for finding in findings:
        found.setdefault(finding.order_id, []).append(finding.rule)
    return found


@pytest.mark.parametrize("index", range(len(CASES)), ids=[c["name"] for c in CASES])
def test_each_case_is_flagged_exactly_by_its_rules(db, settings, index):
    order_id = install_case(DATA, index)
    findings = inspection.find_stuck(settings, NOW, Thresholds())
    assert sorted(rules_by_order(findings).get(order_id, [])) == sorted(CASES[index]["expect"])
    for finding in findings:
        assert finding.reason  # every finding says why


def test_all_cases_together_and_the_orderless_effect(all_cases, settings):
    findings = inspection.find_stuck(settings, NOW, Thresholds())
    found = rules_by_order(findings)
    for index, case in enumerate(CASES):
        assert sorted(found.get(case_order_id(index), [])) == sorted(case["expect"]), case["name"]
    assert found[None] == [RULE_OUTBOX]


def test_stuck_command_json_names_every_reason_and_exits_1(all_cases, config_path):
    out = io.StringIO()
    code = inspect_main(["stuck", "--config", str(config_path), "--now", str(NOW), "--json"], out)
    assert code == 1
    findings = json.loads(out.getvalue())
    flagged = {(f["order_id"], f["rule"]) for f in findings}
    expected = {(case_order_id(i), rule) for i, c in enumerate(CASES) for rule in c["expect"]}
    assert flagged == expected | {(None, RULE_OUTBOX)}
    outbox = next(f for f in findings if f["order_id"] == case_order_id(6))
    assert "relay down" in outbox["reason"] and "SendMessage" in outbox["reason"]


def test_stuck_command_table(all_cases, config_path):
    out = io.StringIO()
    assert inspect_main(["stuck", "--config", str(config_path), "--now", str(NOW)], out) == 1
    text = out.getvalue()
    for rule in ("deadline-passed", "outbox-undone", "bond-invoice-mismatch",
                 "bond-locked-outside-trade", "no-path-forward"):
        assert rule in text
    assert "released but LND still holds its HTLC" in text
    assert "waits for the buyer's add-invoice" in text


def test_thresholds_are_options(all_cases, config_path):
    out = io.StringIO()
    # an hour-long grace for effects: the one-hour-old effect is no longer flagged
    inspect_main(["stuck", "--config", str(config_path), "--now", str(NOW), "--json",
                  "--outbox-age", "3700"], out)
    rules = {(f["order_id"], f["rule"]) for f in json.loads(out.getvalue())}
    assert (case_order_id(6), RULE_OUTBOX) not in rules
    assert (None, RULE_OUTBOX) in rules


def test_no_stuck_orders_exits_0(db, config_path):
    install_case(DATA, 0)
    out = io.StringIO()
    assert inspect_main(["stuck", "--config", str(config_path), "--now", str(NOW)], out) == 0
    assert "0 finding(s)" in out.getvalue()


def test_orders_listing_filters(all_cases, config_path):
    out = io.StringIO()
    assert inspect_main(["orders", "--config", str(config_path), "--json",
                         "--status", "canceled"], out) == 0
    listed = json.loads(out.getvalue())
    assert {o["status"] for o in listed} == {"canceled"}
    assert len(listed) == sum(1 for c in CASES if c["order"].get("status") == "canceled")

    out = io.StringIO()
    inspect_main(["orders", "--config", str(config_path), "--json", "--stuck", "--now", str(NOW)], out)
    stuck_ids = {o["id"] for o in json.loads(out.getvalue())}
    assert stuck_ids == {case_order_id(i) for i, c in enumerate(CASES) if c["expect"]}

    out = io.StringIO()
    inspect_main(["orders", "--config", str(config_path)], out)
    assert f"{len(CASES)} order(s)" in out.getvalue()
    assert case_order_id(0) in out.getvalue()
