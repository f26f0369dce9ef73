"""Breaker transitions under a fake clock: tests advance it instead of sleeping."""

from __future__ import annotations

from typing import Any

import pytest

from lynkr.resilience import BreakerRegistry, BreakerSettings, CircuitBreaker, FakeClock, classify

FAST = 0.1  # a call duration well under the slow-call threshold


def make(clock: FakeClock, **settings: Any) -> CircuitBreaker:
    return CircuitBreaker("p", BreakerSettings(**settings), clock=clock)


def fail(breaker: CircuitBreaker, times: int = 1, duration: float = FAST) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_failure(duration)


def succeed(breaker: CircuitBreaker, times: int = 1, duration: float = FAST) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_success(duration)


def tripped(clock: FakeClock, **settings: Any) -> CircuitBreaker:
    breaker = make(clock, **settings)
    fail(breaker, breaker.settings.consecutive_failures)
    assert breaker.state == "open"
    return breaker


# --------------------------------------------------------------------------- classify


@pytest.mark.parametrize("status", [200, 201, 204, 304])
def test_classify_2xx_3xx_success(status: int) -> None:
    assert classify(status) == "success"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 529, 599, 101])
def test_classify_5xx_and_nonsense_failure(status: int) -> None:
    assert classify(status) == "failure"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 413, 422])
def test_classify_request_4xx_ignored(status: int) -> None:
    assert classify(status) == "ignore"


def test_classify_429_only_when_asked() -> None:
    assert classify(429) == "ignore"
    assert classify(429, count_429=True) == "failure"


@pytest.mark.parametrize("kind", ["connect", "timeout", "malformed", "stream_cut"])
def test_classify_exception_kinds_fail(kind: Any) -> None:
    assert classify(None, exception_kind=kind) == "failure"


def test_classify_client_disconnect_ignored_and_kind_wins_over_status() -> None:
    assert classify(None, exception_kind="client_disconnect") == "ignore"
    assert classify(200, exception_kind="malformed") == "failure"


def test_classify_refuses_nothing_and_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="needs an HTTP status"):
        classify(None)
    with pytest.raises(ValueError, match="unknown exception_kind 'dns'; known: client_disconnect"):
        classify(None, exception_kind="dns")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("window_seconds", 0, "window_seconds must be an integer ≥ 1, got 0"),
        ("half_open_max_calls", 0, "half_open_max_calls must be an integer ≥ 1"),
        ("failure_rate_threshold", 0, "failure_rate_threshold must be a rate in"),
        ("slow_call_rate_threshold", 1.5, "slow_call_rate_threshold must be a rate in"),
        ("open_seconds", 0, "open_seconds must be a positive number"),
        ("max_open_seconds", 10, r"max_open_seconds must be at least open_seconds \(30.0\)"),
    ],
)
def test_settings_refuse_nonsense(option: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BreakerSettings(**{option: value})


# --------------------------------------------------------------------------- closed → open


def test_starts_closed_and_lets_calls_through() -> None:
    breaker = make(FakeClock())
    assert breaker.state == "closed"
    assert breaker.allow()
    assert breaker.retry_after() == 0.0


def test_consecutive_failures_trip_it() -> None:
    breaker = make(FakeClock())
    fail(breaker, 4)
    assert breaker.state == "closed"
    fail(breaker)
    assert breaker.state == "open"
    assert not breaker.allow()


def test_a_success_resets_the_consecutive_count() -> None:
    breaker = make(FakeClock(), failure_rate_threshold=1.0)
    for _ in range(3):
        fail(breaker, 4)
        succeed(breaker)
    assert breaker.state == "closed"


def test_failure_rate_trips_once_minimum_calls_are_in() -> None:
    breaker = make(FakeClock(), consecutive_failures=100, minimum_calls=10)
    for _ in range(4):
        fail(breaker)
        succeed(breaker)
    fail(breaker)
    assert breaker.state == "closed"  # 5 of 9: under minimum_calls
    succeed(breaker)
    assert breaker.state == "open"  # 5 of 10 = 50 %


def test_below_minimum_calls_even_all_failures_do_not_trip_by_rate() -> None:
    breaker = make(FakeClock(), consecutive_failures=100, minimum_calls=10)
    fail(breaker, 9)
    assert breaker.state == "closed"


def test_failure_rate_below_threshold_keeps_it_closed() -> None:
    breaker = make(FakeClock(), consecutive_failures=100, minimum_calls=10)
    for _ in range(10):
        fail(breaker)
        succeed(breaker, 2)
    assert breaker.state == "closed"  # a third fail


def test_old_failures_slide_out_of_the_window() -> None:
    clock = FakeClock()
    breaker = make(clock, consecutive_failures=100, minimum_calls=10, window_seconds=60)
    fail(breaker, 9)
    clock.advance(61)
    fail(breaker)
    assert breaker.state == "closed"  # the window holds 1 call, not 10
    assert breaker.snapshot()["window_calls"] == 1


def test_old_successes_stop_diluting_the_rate() -> None:
    clock = FakeClock()
    breaker = make(clock, consecutive_failures=100, failure_rate_threshold=0.6)
    succeed(breaker, 10)
    clock.advance(61)
    fail(breaker, 10)
    assert breaker.state == "open"  # 10 of 10 in the window (10 of 20 overall would not be)


def test_window_is_bucketed_by_second() -> None:
    clock = FakeClock()
    breaker = make(clock, window_seconds=60)
    succeed(breaker, 3)
    clock.advance(30)
    succeed(breaker, 2)
    assert breaker.snapshot()["window_calls"] == 5
    clock.advance(30)  # t=60: second 0 left the window
    assert breaker.snapshot()["window_calls"] == 2
    clock.advance(30)
    assert breaker.snapshot()["window_calls"] == 0


def test_slow_call_rate_trips_it() -> None:
    breaker = make(FakeClock(), slow_call_seconds=30, slow_call_rate_threshold=0.8)
    succeed(breaker, 8, duration=30)  # exactly the threshold counts as slow
    succeed(breaker, 1, duration=29.9)
    assert breaker.state == "closed"
    succeed(breaker, 1, duration=45)
    assert breaker.state == "open"  # 9 of 10 slow


def test_slow_calls_below_the_rate_keep_it_closed() -> None:
    breaker = make(FakeClock(), slow_call_seconds=30, slow_call_rate_threshold=0.8)
    succeed(breaker, 7, duration=31)
    succeed(breaker, 3)
    assert breaker.state == "closed"


# --------------------------------------------------------------------------- open


def test_open_refuses_and_counts_down_to_the_probe() -> None:
    clock = FakeClock()
    breaker = tripped(clock)
    assert breaker.retry_after() == 30
    clock.advance(29)
    assert breaker.state == "open"
    assert not breaker.allow()
    assert breaker.retry_after() == 1
    assert breaker.snapshot()["rejected"] == 1


def test_a_late_result_while_open_changes_nothing() -> None:
    clock = FakeClock()
    breaker = make(clock)
    assert breaker.allow()  # a call starts while closed…
    fail(breaker, 5)  # …others trip the breaker…
    breaker.record_success(FAST)  # …and it ends late
    assert breaker.state == "open"
    assert breaker.retry_after() == 30


def test_open_becomes_half_open_exactly_when_the_wait_is_over() -> None:
    clock = FakeClock()
    breaker = tripped(clock)
    clock.advance(30)
    assert breaker.state == "half_open"
    assert breaker.retry_after() == 0.0
    assert breaker.snapshot()["since_change_seconds"] == 0


# --------------------------------------------------------------------------- half-open


def half_open(clock: FakeClock, **settings: Any) -> CircuitBreaker:
    breaker = tripped(clock, **settings)
    clock.advance(breaker.retry_after())
    return breaker


def test_half_open_allows_only_the_trial_calls() -> None:
    breaker = half_open(FakeClock())
    assert breaker.allow()
    assert not breaker.allow()
    assert breaker.snapshot()["half_open_calls"] == 1


def test_half_open_max_calls_is_an_option() -> None:
    breaker = half_open(FakeClock(), half_open_max_calls=3)
    assert [breaker.allow() for _ in range(4)] == [True, True, True, False]


def test_enough_trial_successes_close_it() -> None:
    breaker = half_open(FakeClock())
    succeed(breaker)
    assert breaker.state == "half_open"  # 1 of 2
    succeed(breaker)
    assert breaker.state == "closed"
    assert breaker.snapshot()["window_calls"] == 0


def test_one_trial_success_closes_it_when_configured() -> None:
    breaker = half_open(FakeClock(), half_open_successes=1)
    succeed(breaker)
    assert breaker.state == "closed"


def test_a_trial_failure_reopens_with_double_the_wait() -> None:
    breaker = half_open(FakeClock())
    fail(breaker)
    assert breaker.state == "open"
    assert breaker.retry_after() == 60


def test_a_slow_trial_reopens_it() -> None:
    breaker = half_open(FakeClock(), slow_call_seconds=30)
    succeed(breaker, duration=31)
    assert breaker.state == "open"


def test_an_ignored_trial_frees_its_slot() -> None:
    breaker = half_open(FakeClock())
    assert breaker.allow()
    breaker.record_ignored()
    assert breaker.state == "half_open"
    assert breaker.allow()


def test_ignored_outside_half_open_changes_nothing() -> None:
    breaker = make(FakeClock())
    fail(breaker, 4)
    breaker.record_ignored()
    fail(breaker)
    assert breaker.state == "open"  # still 5 in a row


def test_record_dispatches_classified_outcomes() -> None:
    breaker = half_open(FakeClock())
    assert breaker.allow()
    breaker.record(classify(404), FAST)
    assert breaker.state == "half_open"
    assert breaker.allow()
    breaker.record(classify(200), FAST)
    assert breaker.allow()
    breaker.record(classify(529), FAST)
    assert breaker.state == "open"


def test_open_duration_doubles_up_to_the_cap() -> None:
    clock = FakeClock()
    breaker = tripped(clock)
    waits = [breaker.retry_after()]
    for _ in range(5):
        clock.advance(breaker.retry_after())
        fail(breaker)
        waits.append(breaker.retry_after())
    assert waits == [30, 60, 120, 240, 300, 300]
    assert breaker.snapshot()["trips"] == 6


def test_closing_resets_the_open_duration() -> None:
    clock = FakeClock()
    breaker = half_open(clock)
    fail(breaker)  # 60 s now
    clock.advance(60)
    succeed(breaker, 2)
    assert breaker.state == "closed"
    fail(breaker, 5)
    assert breaker.retry_after() == 30
    assert breaker.snapshot()["trips"] == 1


def test_lifecycle_of_the_fault_matrix() -> None:
    """5 failures open it; open at 29 s, half-open at 31 s; a failed probe re-opens it for 60 s;
    at 61 s two good probes close it."""
    clock = FakeClock()
    breaker = make(clock)
    fail(breaker, 5)
    assert breaker.state == "open"
    clock.advance(29)
    assert breaker.state == "open"
    clock.advance(2)
    assert breaker.state == "half_open"
    assert breaker.allow()
    assert not breaker.allow()  # a second concurrent request is refused
    breaker.record_failure(FAST)
    assert breaker.state == "open"
    assert breaker.retry_after() == 60
    clock.advance(61)
    succeed(breaker, 2)
    assert breaker.state == "closed"


def test_snapshot_is_plain_data() -> None:
    clock = FakeClock()
    breaker = make(clock)
    fail(breaker, 2)
    succeed(breaker, duration=45)
    clock.advance(3)
    assert breaker.snapshot() == {
        "name": "p",
        "state": "closed",
        "since_change_seconds": 3.0,
        "retry_after_seconds": 0.0,
        "window_calls": 3,
        "window_failures": 2,
        "window_slow_calls": 1,
        "consecutive_failures": 0,
        "trips": 0,
        "half_open_calls": 0,
        "rejected": 0,
    }


# --------------------------------------------------------------------------- registry


def test_registry_keeps_one_breaker_per_name() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(BreakerSettings(consecutive_failures=1), clock=clock)
    assert registry.get("a") is registry.get("a")
    fail(registry.get("a"))
    assert registry.get("a").state == "open"
    assert registry.get("b").state == "closed"
    assert registry.get("b").settings.consecutive_failures == 1
    clock.advance(30)
    assert {name: s["state"] for name, s in registry.snapshot().items()} == {
        "a": "half_open",
        "b": "closed",
    }


def test_registry_defaults() -> None:
    registry = BreakerRegistry()
    assert registry.settings == BreakerSettings()
    assert registry.get("x").allow()


def test_the_registry_stays_bounded_and_keeps_open_breakers() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(
        BreakerSettings(consecutive_failures=1, minimum_calls=1), clock=clock, max_breakers=3
    )
    failing = registry.get("failing")
    failing.record("failure", 0.1)
    assert failing.state == "open"
    for index in range(100):  # a caller inventing names
        registry.get(f"invented-{index}")
    assert len(registry) == 3
    assert registry.get("failing") is failing  # the open one was never forgotten
    assert not failing.allow()
