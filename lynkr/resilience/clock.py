"""Time as the resilience state machines see it: monotonic seconds from an injectable clock.

Every timed rule (breaker windows and open durations, queue waits, deadline
budgets) reads a `Clock`, never the wall clock, so tests drive time with
`FakeClock.advance()` instead of sleeping (resilience4j injects its `Clock`
the same way; pybreaker's real sleeps are the anti-pattern).
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["Clock", "FakeClock", "MonotonicClock"]


class Clock(Protocol):
    """A source of monotonic time in seconds; only differences between readings mean anything."""

    def now(self) -> float: ...


class MonotonicClock:
    """The process's monotonic clock (`time.monotonic`): never jumps with NTP or DST."""

    def now(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to, for deterministic tests."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` (monotonic: never backwards)."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back: advance({seconds!r})")
        self._now += seconds
