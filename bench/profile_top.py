"""Summarise a py-spy profile (`--format raw`, collapsed stacks) into the top costs.

`py-spy record --subprocesses --pid <daemon admin pid> --format raw -o run.raw` samples every
actor process of a running benchmark (the benchmarks print the admin's pid on stderr). This tool
reads the collapsed stacks and prints, per process (thespian titles each actor process with its
class) and overall, the functions with the most samples on top of the stack ("self") and anywhere
in it ("inclusive"), as a share of all samples. Idle samples (the thespian transport waiting in
`select`) are counted apart so they do not drown the work.

Run: `python -m bench.profile_top run.raw [--top 20] [--process NostrAdapter]`. It must not run
or attach to anything itself.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

IDLE_FRAMES = ("select (selectors.py", "poll (selectors.py", "wait (threading.py",
               "_wait_for_tstate_lock", "accept (socket.py", "_recv (", "epoll",
               "thespian_compat.py")  # thespian transport waiting in its poll selector
# inclusive costs are listed for the project's own functions (library internals show as self)
FORK_FRAME = ("_bootstrap (", "BaseProcess._bootstrap (")
OWN_CODE = ("(actors/", "(adapters/", "(storage/", "(config/")
_PROCESS = re.compile(r'^process \d+:"?([^";]*)"?')
_FRAME = re.compile(r"^(.*?) \((.*?)(?::\d+)?\)$")


def _label(first: str) -> str:
    match = _PROCESS.match(first)
    if not match:
        return "?"
    command = match.group(1).strip()
    return command.split(" ")[0] if command else "?"


def _name_end(frame: str) -> int:
    """Where a frame's `(path:line)` part starts."""
    return max(frame.rfind(" ("), 0) + 1


def _library(frame: str) -> str:
    """Which package the code on top of the stack belongs to (py-spy prints paths relative to
    their import root: `thespian/system/...`, `peewee.py`, `actors/outbox.py`)."""
    path = frame[_name_end(frame):].lstrip("(").split(":", 1)[0]
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    root = path.split("/", 1)[0].removesuffix(".py")
    if root in ("actors", "adapters", "storage", "config", "bench", "supervisor"):
        return "mostro-py"
    return root or "?"


def _function(frame: str) -> str:
    """`name (path/to/module.py:123)` -> `name (module.py)`: lines differ, functions matter."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    name, path = match.groups()
    parts = path.replace("\\", "/").split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({short})"


def summarise(lines: Sequence[str], process: str | None = None) -> dict[str, object]:
    by_process: Counter[str] = Counter()
    idle_by_process: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    by_library: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = busy = 0
    for line in lines:
        line = line.rstrip("\n")
        if not line or " " not in line:
            continue
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = stack.split(";")
        owners = [f for f in frames if f.startswith("process ")]  # parent;child;... processes
        label = _label(owners[-1]) if owners else "?"
        if process is not None and label != process:
            continue
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        # an actor process is forked from its parent mid-call: keep what runs after the fork
        forks = [i for i, f in enumerate(frames) if f.startswith(FORK_FRAME)]
        if forks:
            frames = frames[forks[-1] + 1:]
        total += count
        if not frames or any(marker in frames[-1] for marker in IDLE_FRAMES):
            idle_by_process[label] += count
            continue
        busy += count
        by_process[label] += count
        self_time[_function(frames[-1])] += count
        by_library[_library(frames[-1])] += count
        for function in {_function(f) for f in frames if f.startswith(OWN_CODE, _name_end(f))}:
            inclusive[function] += count
    return {"total": total, "busy": busy, "by_process": by_process, "idle": idle_by_process,
            "self": self_time, "inclusive": inclusive, "library": by_library}


def format_summary(summary: dict[str, object], top: int) -> str:
    busy = max(int(summary["busy"]), 1)  # type: ignore[call-overload]
    lines = [f"samples: {summary['total']} ({summary['busy']} busy, the rest waiting)", "",
             "busy samples by process:"]
    for label, count in summary["by_process"].most_common():  # type: ignore[attr-defined]
        lines.append(f"  {100 * count / busy:5.1f} %  {label}")
    lines += ["", "busy samples by library (code on top of the stack):"]
    for library, count in summary["library"].most_common(8):  # type: ignore[attr-defined]
        lines.append(f"  {100 * count / busy:5.1f} %  {library}")
    for title in ("self", "inclusive"):
        what = "on top of the stack" if title == "self" else "the project's own, anywhere in the stack"
        lines += ["", f"top {top} functions, {what} (share of busy samples):"]
        for function, count in summary[title].most_common(top):  # type: ignore[attr-defined]
            lines.append(f"  {100 * count / busy:5.1f} %  {function}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_top",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path, help="py-spy --format raw output")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--process", help="only this process title (e.g. OutboxActor)")
    args = parser.parse_args(argv)
    lines = args.raw.read_text(encoding="utf-8", errors="replace").splitlines()
    print(format_summary(summarise(lines, args.process), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
