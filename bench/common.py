"""Timing helpers shared by the benchmarks: repeated runs, summaries, the machine line, reports.

Every benchmark times a run of many operations several times after untimed warm-up runs and
quotes the median run (one slow or lucky run must not move the figure), plus per-operation
percentiles. Reports are plain dicts so `--json` output is `json.dumps(report)` and a later
benchmark can read an earlier one's figures (`read_report`).

It must not know what is being measured (no Nostr, no Mostro) and must not assert on speed:
benchmarks measure, they never pass or fail.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

NS_PER_S = 1_000_000_000
NS_PER_US = 1_000
T = TypeVar("T")


@dataclass(frozen=True)
class Stats:
    """Summary of samples in nanoseconds, quoted in microseconds (what per-request costs are in)."""

    count: int
    median_us: float
    p50_us: float
    p99_us: float
    min_us: float
    max_us: float
    mean_us: float

    def as_dict(self) -> dict[str, Any]:
        return {key: round(value, 3) if isinstance(value, float) else value
                for key, value in asdict(self).items()}


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (`fraction` in 0..1)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    rank = max(1, min(len(sorted_values), int(-(-fraction * len(sorted_values) // 1))))
    return float(sorted_values[rank - 1])


def summarize_ns(samples_ns: Sequence[int | float]) -> Stats:
    """Median, p50, p99, min, max and mean of nanosecond samples, in microseconds."""
    ordered = sorted(samples_ns)
    return Stats(
        count=len(ordered),
        median_us=statistics.median(ordered) / NS_PER_US,
        p50_us=percentile(ordered, 0.50) / NS_PER_US,
        p99_us=percentile(ordered, 0.99) / NS_PER_US,
        min_us=ordered[0] / NS_PER_US,
        max_us=ordered[-1] / NS_PER_US,
        mean_us=statistics.fmean(ordered) / NS_PER_US,
    )


def repeat_runs(
    run_once: Callable[[], T], runs: int, warmup: int, before_each: Callable[[], None] | None = None
) -> list[T]:
    """Call `run_once` `warmup` times untimed, then `runs` times; return the timed runs' results.

    `run_once` returns its own timing (e.g. an `Elapsed`), so it keeps set-up out of its timed region.
    `before_each` (untimed) resets state, e.g. clears caches for a cold run. A full garbage
    collection happens before every run so one run does not pay for another's garbage.
    """
    if runs < 1 or warmup < 0:
        raise ValueError("need runs >= 1 and warmup >= 0")
    timed: list[T] = []
    for index in range(warmup + runs):
        if before_each is not None:
            before_each()
        gc.collect()
        elapsed = run_once()
        if index >= warmup:
            timed.append(elapsed)
    return timed


def per_second(operations: int, elapsed_ns: int | float) -> float:
    return operations * NS_PER_S / elapsed_ns if elapsed_ns > 0 else float("inf")


def time_per_call_ns(
    call: Callable[[], object], repetitions: int, blocks: int = 5,
    clock: Callable[[], int] = time.thread_time_ns,
) -> float:
    """Median over `blocks` of the mean nanoseconds of `call` (for micro-benchmarks).

    CPU time of this thread by default: on a shared machine it is far steadier than wall time.
    """
    means: list[float] = []
    for _ in range(blocks):
        start = clock()
        for _ in range(repetitions):
            call()
        means.append((clock() - start) / repetitions)
    return statistics.median(means)


@dataclass
class Elapsed:
    """Wall and CPU nanoseconds of one timed region (CPU = this thread's CPU time).

    Wall time is what a user sees; CPU time is what the work costs when the machine is busy
    with other processes. Quote both: they agree on an idle machine.
    """

    wall_ns: int = 0
    cpu_ns: int = 0


class Stopwatch:
    """`with Stopwatch() as watch:` measures wall and CPU time of the block into `watch.elapsed`."""

    def __init__(self) -> None:
        self.elapsed = Elapsed()

    def __enter__(self) -> Stopwatch:
        self._cpu = time.thread_time_ns()
        self._wall = time.perf_counter_ns()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.elapsed.wall_ns = time.perf_counter_ns() - self._wall
        self.elapsed.cpu_ns = time.thread_time_ns() - self._cpu


# --- the machine line --------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


@dataclass(frozen=True)
class Machine:
    """Where figures were taken: without it a figure cannot be compared with another."""

    cpu_model: str
    cores: int
    usable_cores: int
    python: str
    platform: str
    date_utc: str
    load_average: tuple[float, float, float]
    libraries: dict[str, str]

    def line(self) -> str:
        libs = ", ".join(f"{name} {version}" for name, version in self.libraries.items())
        load = " ".join(f"{value:.2f}" for value in self.load_average)
        return (
            f"machine: {self.cpu_model}, {self.cores} cores ({self.usable_cores} usable), "
            f"Python {self.python}, {self.platform}, {self.date_utc}, load {load}; {libs}"
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["load_average"] = list(self.load_average)
        return data


def describe_machine(libraries: Sequence[str] = ("coincurve", "cryptography")) -> Machine:
    """CPU model, cores, Python version, UTC date and the versions of the named libraries."""
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return Machine(
        cpu_model=_cpu_model(),
        cores=os.cpu_count() or 1,
        usable_cores=_usable_cores(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        platform=f"{platform.system()} {platform.machine()}",
        date_utc=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        load_average=(round(load[0], 2), round(load[1], 2), round(load[2], 2)),
        libraries={name: _version(name) for name in libraries},
    )


def pin_to_cpu(cpu: int) -> str:
    """Restrict this process to one processor; returns what happened (for the report)."""
    try:
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError) as err:
        return f"not pinned ({err})"
    return f"pinned to CPU {cpu}"


# --- reports -----------------------------------------------------------------------------------


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [
        max(len(headers[col]), *(len(row[col]) for row in cells)) if cells else len(headers[col])
        for col in range(len(headers))
    ]

    def render(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(widths[col]) if col == 0 else cell.rjust(widths[col])
            for col, cell in enumerate(row)
        )

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([render(list(headers)), rule, *(render(row) for row in cells)])


def read_report(path: str | Path) -> dict[str, Any]:
    """A benchmark's `--json` output read back (what a later benchmark compares itself with)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
