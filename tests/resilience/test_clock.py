from __future__ import annotations

import pytest

from lynkr.resilience import FakeClock, MonotonicClock


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(start=100.0)
    assert clock.now() == 100.0
    clock.advance(2.5)
    clock.advance(0)
    assert clock.now() == 102.5


def test_fake_clock_never_goes_back() -> None:
    with pytest.raises(ValueError, match="cannot go back"):
        FakeClock().advance(-1)


def test_monotonic_clock_does_not_decrease() -> None:
    clock = MonotonicClock()
    first = clock.now()
    assert clock.now() >= first
