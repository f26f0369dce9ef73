"""One time budget per request, shared by every attempt, backoff and fallback it makes.

Google SRE, "Addressing Cascading Failures": deadlines are set once and
checked before doing work, so retries at any layer cannot outlive the client
(one 590 s budget by default, under the Anthropic SDK's 600 s;
anthropics/claude-code#4968 shows what a proxy that outlives its client
costs). Envoy's per-try timeouts stop the same way.
"""

from __future__ import annotations

from lynkr.resilience.clock import Clock, MonotonicClock

__all__ = ["Deadline"]


class Deadline:
    """`total_seconds` from now on `clock`; ask it before every attempt and every wait."""

    def __init__(self, total_seconds: float, clock: Clock | None = None) -> None:
        if not total_seconds > 0:
            raise ValueError(f"a deadline needs a positive total_seconds, got {total_seconds!r}")
        self.total_seconds = total_seconds
        self._clock = clock or MonotonicClock()
        self._ends_at = self._clock.now() + total_seconds

    def remaining(self) -> float:
        """Seconds left, never below zero."""
        return max(0.0, self._ends_at - self._clock.now())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def allows(self, seconds: float) -> bool:
        """Whether `seconds` more of waiting or working still ends before the deadline."""
        return not self.expired and seconds <= self.remaining()

    def bound(self, seconds: float) -> float:
        """`seconds` cut down to what is left, e.g. a per-try timeout (Envoy `per_try_timeout`)."""
        return min(seconds, self.remaining())
