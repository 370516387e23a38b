"""The race scenarios tagged ``"multiproc"``, replayed through the daemon on ``multiprocTCPBase``.

Each actor runs in its own process, talking over TCP; requests travel as
signed, encrypted events through a real relay; payments are made by simulator
wallets. The runner and checks are those of test_scenarios_actors.py.

The subset is small on purpose: each actor system here is spawned, not
forked (see ``ActorRun._start_daemon``), so a run costs about 5 s (8 s with a
restart). It holds what crosses process boundaries — the full trade, the
simultaneous race, an LND fault, the maker's cancel and both restarts; the
ten-racer race runs on this base in test_bond_race_e2e.py, and every file
still runs on ``simpleSystemBase``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_scenarios_actors import run_scenario_file
from tests.scenario_runner.format import FormatError, load_scenario, scenario_paths


def tagged(runtime: str) -> list[Path]:
    """Files whose ``runtimes`` include ``runtime`` (unreadable ones too: they fail loudly)."""
    found = []
    for path in scenario_paths():
        scenario = load_scenario(path)
        if isinstance(scenario, FormatError) or runtime in scenario.runtimes:
            found.append(path)
    return found


PATHS = tagged("multiproc")


@pytest.mark.multiproc
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_scenario_on_multiproc(path: Path, session_relay, lnsim_factory,
                               tmp_path: Path) -> None:
    run_scenario_file(path, "multiproc", "multiprocTCPBase", session_relay, lnsim_factory,
                      tmp_path)
