"""The fake clock: time that moves only when a test says so."""

from __future__ import annotations

import time
from datetime import timedelta

import attrs

__all__ = ["FakeClock"]


@attrs.define
class FakeClock:
    """A clock that moves only when told to, so TTL tests run instantly and never flake.

    It starts at the current wall-clock second (a whole number): a backend that stores
    absolute expiry times next to its own server-side cleanup (a Mongo TTL index) then sees
    plausible dates, and expiry times built from whole-second steps stay exact floats.
    """

    now: float = attrs.field(factory=lambda: float(int(time.time())))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float | timedelta) -> float:
        """Move forward by ``seconds``; return the new time. A clock never runs backwards."""
        step = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if step < 0:
            raise ValueError(f"a clock never goes back; got advance({seconds!r})")
        self.now += step
        return self.now
