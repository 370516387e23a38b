"""Every race scenario of tests/scenarios/ through the pure order logic (BONDS.md §6).

Each file is data (format: tests/scenarios/README.md); the runner checks the
bond invariants I1–I9 after every step and the file's expectations. Adding a
scenario is adding a file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.order_logic.decide import decide
from tests.scenario_runner.format import (
    FormatError,
    load_scenario,
    parse_scenario,
    scenario_paths,
)
from tests.scenario_runner.pure import ScenarioFailed, run_scenario

PATHS = scenario_paths()


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_scenario_in_pure_logic(path: Path) -> None:
    scenario = load_scenario(path)
    assert not isinstance(scenario, FormatError), str(scenario)
    if "pure" not in scenario.runtimes:
        pytest.skip("not a pure-logic scenario")
    if scenario.pending_fix is not None:
        # strict: once the gap is fixed this fails, and the file's pending_fix must go
        with pytest.raises(ScenarioFailed) as failed:
            run_scenario(scenario)
        problems = failed.value.failure.problems
        assert all(scenario.pending_fix_symptom in line for line in problems), str(failed.value)
        pytest.xfail(scenario.pending_fix)
    run_scenario(scenario)


def test_every_race_scenario_of_bonds_md_has_a_file() -> None:
    numbers = set()
    for path in PATHS:
        scenario = load_scenario(path)
        assert not isinstance(scenario, FormatError), str(scenario)
        if scenario.bonds_md is not None:
            numbers.add(scenario.bonds_md)
    assert numbers >= set(range(1, 24)), f"missing: {sorted(set(range(1, 24)) - numbers)}"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_replaying_the_journal_reproduces_every_decision(path: Path) -> None:
    """DESIGN.md §3: the journal (event + context per decision) replays to the same states."""
    scenario = load_scenario(path)
    assert not isinstance(scenario, FormatError), str(scenario)
    if scenario.pending_fix is not None:
        pytest.skip("known gap")
    run = run_scenario(scenario)
    assert run.journal, "a scenario handles at least one event"
    state = run.initial_state
    for event, context, recorded in run.journal:
        replayed = decide(state, event, context)
        assert replayed == recorded, f"replay differs at {event!r}"
        state = replayed.state if replayed.state is not None else state
    assert state == run.state


def _raw(**changes) -> dict:
    raw = {"order": {"kind": "sell"}, "steps": [{"do": "take", "who": "T1"}]}
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (_raw(order={"kind": "swap"}), "kind"),
        (_raw(order={"kind": "sell", "colour": "red"}), "colour"),
        (_raw(steps=[]), "at least one"),
        (_raw(steps=[{"do": "dance"}]), "unknown op"),
        (_raw(steps=[{"do": "take", "who": "T1", "speed": 3}]), "speed"),
        (_raw(steps=[{"do": "take", "who": "T1", "expect": {"mood": "ok"}}]), "mood"),
        (_raw(expect={"status": "pending", "colour": 1}), "colour"),
        (_raw(runtimes=["cloud"]), "runtime"),
        (_raw(steps=[{"do": "restart", "while_down": [{"do": "cancel", "who": "T1"}]}]), "down"),
        (_raw(surprise=True), "surprise"),
    ],
)
def test_the_loader_names_what_is_wrong(raw: dict, problem: str) -> None:
    result = parse_scenario(Path("bad.toml"), raw)
    assert isinstance(result, FormatError)
    assert problem in str(result) and "bad.toml" in str(result)


def test_the_loader_keeps_steps_and_expectations_in_order() -> None:
    raw = _raw(
        steps=[
            {"do": "take", "who": "T1", "expect": {"status": "waiting-taker-bond"}},
            {"do": "pay", "who": ["T1", "T2"], "crash_after_commit": True},
        ],
        expect={"status": "waiting-buyer-invoice"},
    )
    scenario = parse_scenario(Path("ok.toml"), raw)
    assert not isinstance(scenario, FormatError), str(scenario)
    assert [(s.index, s.op) for s in scenario.steps] == [(1, "take"), (2, "pay")]
    assert scenario.steps[0].expect == {"status": "waiting-taker-bond"}
    assert scenario.steps[1].crash_after_commit and scenario.steps[1].args == {"who": ["T1", "T2"]}
    assert scenario.name == "ok" and scenario.runtimes == ("pure",)
