"""The benchmarks' tools without a daemon: /proc readings, the CPU meter, the profile summary.

Nothing here asserts on speed: a busy child must show some CPU, a profile's shares must add up.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # bench/ is run from the repository root, not installed
    sys.path.insert(0, str(REPO))

from bench import harness, profile_top  # noqa: E402
from tests.conftest import wait_until  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def test_proc_readings_of_this_process_and_a_child() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in harness.descendants(os.getpid())
        memory = harness.memory_of([os.getpid()])
        assert memory.processes == 1 and memory.rss_mb > 1 and 0 < memory.pss_mb <= memory.rss_mb
        assert "python" in harness.cmdline(child.pid)
    finally:
        child.kill()
        child.wait()
    assert child.pid not in harness.descendants(os.getpid())


def test_cpu_meter_counts_a_busy_child_and_a_child_born_during_the_window() -> None:
    spin = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\n"
    first = subprocess.Popen([sys.executable, "-c", spin + "time.sleep(30)"])
    later: list[subprocess.Popen[bytes]] = []

    def discover() -> dict[int, str]:
        return {p.pid: name for p, name in ((first, "first"), *((p, "later") for p in later))}

    meter = harness.CpuMeter(discover, interval=0.05)
    try:
        meter.start()
        later.append(subprocess.Popen([sys.executable, "-c", spin + "time.sleep(30)"]))
        wait_until(lambda: harness.cpu_seconds(later[0].pid) >= 0.3, 20,
                   "the later child's own spin finished", interval=0.02)
        meter.stop()
    finally:
        for process in (first, *later):
            process.kill()
            process.wait()
    usage = meter.by_label()
    assert set(usage) == {"first", "later"}
    assert usage["later"]["cpu_s"] >= 0.25  # born inside the window: counted from birth
    assert usage["first"]["processes"] == 1
    assert 0 <= usage["first"]["max_core_share"] <= 1.5


def test_profile_summary_names_processes_and_costs() -> None:
    lines = (DATA / "pyspy_sample.raw").read_text().splitlines()
    summary = profile_top.summarise(lines)
    assert summary["total"] == 40 and summary["busy"] == 10  # 30 samples waiting in select
    assert dict(summary["by_process"]) == {"OutboxActor": 8, "NostrAdapter": 2}
    assert summary["self"].most_common(1)[0] == ("_execute_cursor (peewee.py)", 6)
    assert summary["inclusive"]["receiveMessage (actors/outbox.py)"] == 8
    assert "select (selectors.py)" not in summary["self"]
    assert dict(summary["library"]) == {"peewee": 6, "mostro-py": 4}
    only = profile_top.summarise(lines, process="NostrAdapter")
    assert only["busy"] == 2 and "handle (actors/intake.py)" in only["inclusive"]
    text = profile_top.format_summary(summary, top=3)
    assert "80.0 %  OutboxActor" in text and "60.0 %  _execute_cursor (peewee.py)" in text
