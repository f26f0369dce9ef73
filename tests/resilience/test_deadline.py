from __future__ import annotations

import pytest

from lynkr.resilience import Deadline, FakeClock


def test_budget_counts_down_on_the_clock() -> None:
    clock = FakeClock()
    deadline = Deadline(10, clock)
    assert deadline.remaining() == 10
    clock.advance(4)
    assert deadline.remaining() == 6
    assert not deadline.expired


def test_allows_only_what_fits() -> None:
    clock = FakeClock()
    deadline = Deadline(10, clock)
    clock.advance(7)
    assert deadline.allows(3)
    assert not deadline.allows(3.5)


def test_expired_allows_nothing_and_never_goes_negative() -> None:
    clock = FakeClock()
    deadline = Deadline(1, clock)
    clock.advance(5)
    assert deadline.expired
    assert deadline.remaining() == 0
    assert not deadline.allows(0)


def test_bound_cuts_a_timeout_to_the_budget() -> None:
    clock = FakeClock()
    deadline = Deadline(30, clock)
    assert deadline.bound(5) == 5
    clock.advance(28)
    assert deadline.bound(5) == 2


@pytest.mark.parametrize("total", [0, -1, float("nan")])
def test_needs_a_positive_budget(total: float) -> None:
    with pytest.raises(ValueError, match="positive total_seconds"):
        Deadline(total, FakeClock())
