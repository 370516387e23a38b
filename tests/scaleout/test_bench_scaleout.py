"""bench/scaleout.py runs the take storm on one and on two actor systems (smoke, slow lane).

The figures are not checked (speed is the lead's to judge on an idle machine): only that
both set-ups run the benchmark to a correct outcome and the report shows both side by side.
"""

from __future__ import annotations

import pytest

from bench import harness, scaleout

pytestmark = [pytest.mark.slow, pytest.mark.multiproc]


def test_the_take_storm_runs_on_one_and_on_two_systems() -> None:
    report = scaleout.measure(storm_sizes=[3], order_sizes=[], takes=0, timeout=60.0)
    assert harness.Workbench is scaleout._PlainWorkbench  # put back after the two-system run
    for count in ("1", "2"):
        runs = report["systems"][count]["take_storm"]["runs"]
        assert [run["ok"] for run in runs] == [True], runs
    text = scaleout.format_report(report)
    rows = [line.split() for line in text.splitlines() if line.startswith("N=3")]
    assert [row[1] for row in rows] == ["1", "2"] and all(row[-1] == "OK" for row in rows)
