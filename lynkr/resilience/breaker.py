"""A circuit breaker per provider: closed → open → half-open → closed, driven by outcomes.

Pure state machine over an injectable `Clock`: no I/O, no asyncio, no threads
(one event loop calls it). The caller decides what an outcome was (`classify`)
and reports it; the breaker only counts and decides. Each rule names its anchor
in Envoy, resilience4j or pybreaker:

- **Closed.** Calls go through. Outcomes land in a time-based sliding window
  of one-second buckets (resilience4j `SlidingWindowType.TIME_BASED`). It trips
  on `consecutive_failures` failures in a row (Envoy outlier detection
  `consecutive_5xx`, pybreaker `fail_max`), or, once the window holds
  `minimum_calls` calls, when the failure rate or the slow-call rate reaches its
  threshold (resilience4j `failureRateThreshold`, `slowCallRateThreshold`,
  `minimumNumberOfCalls`). Low `minimum_calls` and a time window suit one
  developer's few calls a minute.
- **Open.** Calls are refused for the open duration: `open_seconds` on the
  first trip, doubled on each re-trip from half-open, capped at
  `max_open_seconds` (Envoy `base_ejection_time` 30 s / `max_ejection_time`
  300 s; doubling as resilience4j's exponential interval function).
- **Half-open.** Once the wait is over, at most `half_open_max_calls` trial
  calls run at a time (resilience4j `permittedNumberOfCallsInHalfOpenState`);
  `half_open_successes` successes close it, any
  failure or slow call re-opens it with the doubled wait. Closing resets the
  window and the open duration.

The interface is small on purpose (`allow`, `record_*`, `state`,
`retry_after`, `snapshot`): a later store keeps the same state in Redis.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

from lynkr.resilience.clock import Clock, MonotonicClock

__all__ = [
    "BreakerRegistry",
    "BreakerSettings",
    "BreakerState",
    "CircuitBreaker",
    "ExceptionKind",
    "Outcome",
    "classify",
]

BreakerState = Literal["closed", "open", "half_open"]
Outcome = Literal["success", "failure", "ignore"]
# How a call ended without a usable HTTP status.
ExceptionKind = Literal["connect", "timeout", "malformed", "stream_cut", "client_disconnect"]

# Failures: connect errors and timeouts, malformed upstream responses, a stream
# cut before `message_stop`. Ignored: the client went away.
_FAILURE_KINDS = frozenset({"connect", "timeout", "malformed", "stream_cut"})
_IGNORED_KINDS = frozenset({"client_disconnect"})


def classify(
    status: int | None, *, exception_kind: ExceptionKind | None = None, count_429: bool = False
) -> Outcome:
    """What one upstream call means for its provider's breaker.

    Failures: connection errors, timeouts, malformed responses, streams cut
    short, 5xx including 529, and 429 when `count_429`. A 429 is
    back-pressure, not ill health, by default (as Envoy's
    `rate_limited_retry_back_off` treats it). Other 4xx were caused by the
    request and count as neither (resilience4j's ignored exceptions), as does
    a client disconnect. `exception_kind`, when given, wins over `status`.
    """
    if exception_kind is not None:
        if exception_kind in _FAILURE_KINDS:
            return "failure"
        if exception_kind in _IGNORED_KINDS:
            return "ignore"
        known = ", ".join(sorted(_FAILURE_KINDS | _IGNORED_KINDS))
        raise ValueError(f"unknown exception_kind {exception_kind!r}; known: {known}")
    if status is None:
        raise ValueError("classify needs an HTTP status or an exception_kind")
    if 200 <= status < 400:
        return "success"
    if status == 429:
        return "failure" if count_429 else "ignore"
    return "ignore" if 400 <= status < 500 else "failure"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """One breaker's thresholds; the defaults suit a few calls a minute (one developer's CLI)."""

    window_seconds: int = 60
    minimum_calls: int = 10
    failure_rate_threshold: float = 0.5
    consecutive_failures: int = 5
    # Measure time to first byte/event, not total duration (that follows max_tokens).
    slow_call_seconds: float = 30.0
    slow_call_rate_threshold: float = 0.8
    open_seconds: float = 30.0
    max_open_seconds: float = 300.0
    half_open_max_calls: int = 1
    half_open_successes: int = 2

    def __post_init__(self) -> None:
        counts = ("window_seconds", "minimum_calls", "consecutive_failures")
        for name in (*counts, "half_open_max_calls", "half_open_successes"):
            _check(name, getattr(self, name) >= 1, "an integer ≥ 1", self)
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            _check(name, 0 < getattr(self, name) <= 1, "a rate in (0, 1], e.g. 0.5", self)
        for name in ("slow_call_seconds", "open_seconds"):
            _check(name, getattr(self, name) > 0, "a positive number of seconds", self)
        minimum = f"at least open_seconds ({self.open_seconds})"
        _check("max_open_seconds", self.max_open_seconds >= self.open_seconds, minimum, self)


def _check(name: str, ok: bool, expected: str, settings: BreakerSettings) -> None:
    if not ok:
        raise ValueError(f"breaker {name} must be {expected}, got {getattr(settings, name)!r}")


@dataclass(slots=True)
class _Bucket:
    second: int
    calls: int = 0
    failures: int = 0
    slow: int = 0


class _Window:
    """Outcomes of the last `seconds` seconds in one-second buckets (bounded memory).

    resilience4j `SlidingTimeWindowMetrics`: totals are kept alongside the
    buckets and corrected as old buckets fall out.
    """

    def __init__(self, seconds: int) -> None:
        self._seconds = seconds
        self._buckets: deque[_Bucket] = deque()
        self.calls = self.failures = self.slow = 0

    def add(self, now: float, *, failed: bool, slow: bool) -> None:
        self.expire(now)
        second = math.floor(now)
        if not self._buckets or self._buckets[-1].second != second:
            self._buckets.append(_Bucket(second))
        bucket = self._buckets[-1]
        bucket.calls += 1
        bucket.failures += failed
        bucket.slow += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def expire(self, now: float) -> None:
        oldest = math.floor(now) - self._seconds + 1
        while self._buckets and self._buckets[0].second < oldest:
            bucket = self._buckets.popleft()
            self.calls -= bucket.calls
            self.failures -= bucket.failures
            self.slow -= bucket.slow

    def clear(self) -> None:
        self._buckets.clear()
        self.calls = self.failures = self.slow = 0


class CircuitBreaker:
    """One provider's breaker. Report exactly one outcome for every call `allow()` let through."""

    def __init__(
        self, name: str, settings: BreakerSettings | None = None, *, clock: Clock | None = None
    ) -> None:
        self.name = name
        self.settings = settings or BreakerSettings()
        self._clock = clock or MonotonicClock()
        self._window = _Window(self.settings.window_seconds)
        self._state: BreakerState = "closed"
        self._changed_at = self._clock.now()
        self._consecutive = 0
        self._open_for = 0.0  # the current (or last) open duration; 0 after closing
        self._trips = 0
        self._probes = 0  # half-open trial calls in flight
        self._probe_successes = 0
        self._rejected = 0

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose wait is over reads as half-open)."""
        self._refresh(self._clock.now())
        return self._state

    def allow(self) -> bool:
        """Whether a call may go to the provider now; in half-open this reserves a trial slot."""
        self._refresh(self._clock.now())
        if self._state == "closed":
            return True
        if self._state == "half_open" and self._probes < self.settings.half_open_max_calls:
            self._probes += 1
            return True
        self._rejected += 1
        return False

    def record_success(self, duration: float) -> None:
        """A call that went well after `duration` seconds (slow if ≥ `slow_call_seconds`)."""
        self._record(failed=False, duration=duration)

    def record_failure(self, duration: float) -> None:
        """A call that failed (as `classify` says) after `duration` seconds."""
        self._record(failed=True, duration=duration)

    def record_ignored(self) -> None:
        """A call whose outcome says nothing about the provider: frees its trial slot only.

        resilience4j `releasePermission()`: without it an ignored trial call
        would hold a half-open slot for ever.
        """
        self._refresh(self._clock.now())
        if self._state == "half_open":
            self._probes = max(0, self._probes - 1)

    def record(self, outcome: Outcome, duration: float) -> None:
        """Report `classify(...)`'s verdict in one call."""
        if outcome == "success":
            self.record_success(duration)
        elif outcome == "failure":
            self.record_failure(duration)
        else:
            self.record_ignored()

    def retry_after(self) -> float:
        """Seconds until a trial call is allowed; 0.0 unless open.

        A half-open breaker whose slots are taken frees one when a trial ends,
        so it also answers 0.0; callers put at least 1 s in `retry-after`.
        """
        now = self._clock.now()
        self._refresh(now)
        if self._state != "open":
            return 0.0
        return max(0.0, self._changed_at + self._open_for - now)

    def snapshot(self) -> dict[str, object]:
        """Plain data for logs and metrics (state, time since it changed, next probe)."""
        now = self._clock.now()
        self._refresh(now)
        self._window.expire(now)
        return {
            "name": self.name,
            "state": self._state,
            "since_change_seconds": now - self._changed_at,
            "retry_after_seconds": self.retry_after(),
            "window_calls": self._window.calls,
            "window_failures": self._window.failures,
            "window_slow_calls": self._window.slow,
            "consecutive_failures": self._consecutive,
            "trips": self._trips,
            "half_open_calls": self._probes,
            "rejected": self._rejected,
        }

    def _record(self, *, failed: bool, duration: float) -> None:
        now = self._clock.now()
        self._refresh(now)
        slow = duration >= self.settings.slow_call_seconds
        if self._state == "closed":
            self._record_closed(now, failed=failed, slow=slow)
        elif self._state == "half_open":
            self._record_trial(now, failed=failed or slow)
        # Open: a call let through before the trip ended late; it changes nothing.

    def _record_closed(self, now: float, *, failed: bool, slow: bool) -> None:
        self._window.add(now, failed=failed, slow=slow)
        self._consecutive = self._consecutive + 1 if failed else 0
        if self._should_trip():
            self._open(now)

    def _should_trip(self) -> bool:
        settings, window = self.settings, self._window
        if self._consecutive >= settings.consecutive_failures:
            return True
        if window.calls < settings.minimum_calls:
            return False
        return (
            window.failures >= settings.failure_rate_threshold * window.calls
            or window.slow >= settings.slow_call_rate_threshold * window.calls
        )

    def _record_trial(self, now: float, *, failed: bool) -> None:
        """Half-open: a failed or slow trial re-opens; enough good ones close."""
        self._probes = max(0, self._probes - 1)
        if failed:
            self._open(now)
            return
        self._probe_successes += 1
        if self._probe_successes >= self.settings.half_open_successes:
            self._close(now)

    def _open(self, now: float) -> None:
        settings = self.settings
        doubled = self._open_for * 2 if self._open_for else settings.open_seconds
        self._open_for = min(doubled, settings.max_open_seconds)
        self._trips += 1
        self._transition("open", now)

    def _close(self, now: float) -> None:
        self._window.clear()
        self._consecutive = 0
        self._open_for = 0.0
        self._trips = 0
        self._transition("closed", now)

    def _refresh(self, now: float) -> None:
        """Open → half-open once the open duration is over (checked on every use)."""
        reopens_at = self._changed_at + self._open_for
        if self._state == "open" and now >= reopens_at:
            self._transition("half_open", reopens_at)

    def _transition(self, state: BreakerState, now: float) -> None:
        self._state = state
        self._changed_at = now
        self._probes = 0
        self._probe_successes = 0


class BreakerRegistry:
    """The breakers of a process by name (one per provider), all built from one settings object.

    Shared state: build it once and hand the same registry to every user
    (the failover middleware and the provider pool).

    Bounded: names come from config (providers), but a registry must not grow
    with whatever names a caller invents. Past `max_breakers`, the least
    recently used *closed* breaker is forgotten (a closed breaker with its
    window lost is a fresh closed breaker: nothing a client could exploit); an
    open or half-open one is kept, since forgetting it would let traffic through.
    """

    def __init__(
        self,
        settings: BreakerSettings | None = None,
        *,
        clock: Clock | None = None,
        max_breakers: int = 1024,
    ):
        self.settings = settings or BreakerSettings()
        self._clock = clock or MonotonicClock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self.max_breakers = max_breakers

    def get(self, name: str) -> CircuitBreaker:
        """The breaker for `name`, created closed on first use."""
        breaker = self._breakers.pop(name, None)
        if breaker is None:
            breaker = CircuitBreaker(name, self.settings, clock=self._clock)
            if len(self._breakers) >= self.max_breakers:
                self._forget_one_closed()
        self._breakers[name] = breaker  # (re)inserted last: the dict's order is recency
        return breaker

    def __len__(self) -> int:
        return len(self._breakers)

    def _forget_one_closed(self) -> None:
        for name, breaker in self._breakers.items():
            if breaker.state == "closed":
                del self._breakers[name]
                return

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Every breaker's `snapshot()` by name."""
        return {name: breaker.snapshot() for name, breaker in self._breakers.items()}
