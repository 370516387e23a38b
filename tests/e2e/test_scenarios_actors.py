"""Every race scenario of tests/scenarios/ replayed through the real actor system (BONDS.md §6).

The same files and checks as tests/logic/test_scenarios_pure.py, delivered
for real: a Daemon on ``simpleSystemBase``, a relay, the LND simulator, one
protocol client and one wallet per party (tests/scenario_runner/actors.py).
A scenario runs here when its ``runtimes`` include ``"actors"``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import make_settings
from tests.scenario_runner.actors import StackParts, run_on_actors, unsupported_reason
from tests.scenario_runner.format import FormatError, Scenario, load_scenario, scenario_paths
from tests.scenario_runner.pure import ScenarioFailed

PATHS = scenario_paths()
MAX_WALLETS = 10


def wallets_for(scenario: Scenario) -> int:
    """One wallet per payer (racers share them beyond MAX_WALLETS), plus the maker's."""
    payers = 0
    for step in scenario.steps:
        if step.op == "pay_many":
            payers = max(payers, int(step.args["count"]))
        elif step.op in ("pay", "take"):
            payers += 1
    return max(2, min(payers + 1, MAX_WALLETS))


def load_for(path: Path, runtime: str) -> Scenario:
    scenario = load_scenario(path)
    assert not isinstance(scenario, FormatError), str(scenario)
    if runtime not in scenario.runtimes:
        pytest.skip(f"not tagged for the {runtime} runtime")
    reason = unsupported_reason(scenario)
    if reason is not None:
        pytest.skip(reason)
    return scenario


def run_scenario_file(path: Path, runtime: str, base: str, relay, lnsim_factory,
                      tmp_path: Path) -> None:
    scenario = load_for(path, runtime)
    lnsim = lnsim_factory(wallets=wallets_for(scenario))
    parts = StackParts(relay.url, lnsim, tmp_path, make_settings, relay.query)
    if scenario.pending_fix is not None:
        with pytest.raises(ScenarioFailed) as failed:
            run_on_actors(scenario, parts, base)
        problems = failed.value.failure.problems
        assert all(scenario.pending_fix_symptom in line for line in problems), str(failed.value)
        pytest.xfail(scenario.pending_fix)
    run = run_on_actors(scenario, parts, base)
    assert run.journal(), "the order actor handled at least one event"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_scenario_on_actors(path: Path, session_relay, lnsim_factory, tmp_path: Path) -> None:
    run_scenario_file(path, "actors", "simpleSystemBase", session_relay, lnsim_factory, tmp_path)
