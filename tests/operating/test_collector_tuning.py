"""The supervisor's garbage-collector tuning, in a fresh interpreter (it is process-wide)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_young_passes_are_rarer_start_up_is_frozen_and_cycles_are_still_collected() -> None:
    script = textwrap.dedent("""
        import gc, weakref
        import supervisor
        default = gc.get_threshold()
        supervisor.tune_collector()
        print(default[0], gc.get_threshold()[0], gc.get_threshold()[1:] == default[1:])
        print(gc.get_freeze_count() > 1000)

        class Node:
            pass

        cycle = Node()
        cycle.me = cycle
        alive = weakref.ref(cycle)
        del cycle
        keep = [[] for _ in range(supervisor.YOUNG_COLLECTION_THRESHOLD + 100)]
        print(alive() is None)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    thresholds, frozen, collected = done.stdout.splitlines()[:3]
    default, tuned, rest_kept = thresholds.split()
    assert int(tuned) > int(default) and int(tuned) == 20_000 and rest_kept == "True"
    assert frozen == "True"  # what start-up imported is out of the collector's walks
    assert collected == "True"  # a garbage cycle still goes, after the raised threshold
