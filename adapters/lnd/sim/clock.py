"""The simulator's clock: real time or a manual clock, plus an offset that
tests and the control service move forward to make invoices expire.

Must not know about invoices; the ledger asks it for `now()` only.
"""

from __future__ import annotations

import threading
import time


class SimClock:
    """Seconds since the epoch, as the simulated network sees them.

    manual=True freezes time at `start` so nothing expires unless a test
    calls `advance`; manual=False follows the wall clock (plus the offset).
    """

    def __init__(self, *, manual: bool, start: float | None = None, offset: float = 0.0):
        self.manual = manual
        self._start = time.time() if start is None else start
        self._offset = offset
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            base = self._start if self.manual else time.time()
            return base + self._offset

    def advance(self, seconds: float) -> float:
        """Moves time forward (never backward) and returns the new now()."""
        if seconds < 0:
            raise ValueError("the simulated clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    def to_json(self) -> dict:
        with self._lock:
            return {"manual": self.manual, "start": self._start, "offset": self._offset}

    @classmethod
    def from_json(cls, data: dict, *, manual: bool) -> SimClock:
        """A clock continuing a saved one; a manual clock resumes where it was."""
        if manual and data.get("manual"):
            return cls(manual=True, start=data["start"], offset=data["offset"])
        return cls(manual=manual, offset=data.get("offset", 0.0) if not data.get("manual") else 0)
