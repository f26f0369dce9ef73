from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from lynkr.resilience import delay, retry_after_from_headers


class Highest:
    """An rng that always draws the top of the range."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_ceiling_doubles_from_base_up_to_cap() -> None:
    ceilings = [delay(attempt, rng=Highest()) for attempt in range(7)]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_base_and_cap_are_options() -> None:
    assert [delay(a, rng=Highest(), base=0.025, cap=0.25) for a in range(5)] == [
        0.025,
        0.05,
        0.1,
        0.2,
        0.25,
    ]


def test_full_jitter_stays_within_zero_and_the_ceiling() -> None:
    rng = random.Random(7)
    for attempt in range(10):
        ceiling = min(8.0, 0.5 * 2**attempt)
        for _ in range(50):
            assert 0.0 <= delay(attempt, rng=rng) <= ceiling


def test_full_jitter_spreads_the_waits() -> None:
    rng = random.Random(7)
    waits = [delay(4, rng=rng) for _ in range(200)]
    assert len(set(waits)) == 200
    assert min(waits) < 1.0 < 7.0 < max(waits)


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert delay(10_000, rng=Highest()) == 8.0


def test_attempts_count_from_zero() -> None:
    with pytest.raises(ValueError, match="from 0"):
        delay(-1, rng=Highest())


@pytest.mark.parametrize(("retry_after", "expected"), [(3.0, 3.0), (0.25, 0.25), (120.0, 60.0)])
def test_retry_after_wins_capped_at_sixty(retry_after: float, expected: float) -> None:
    assert delay(0, retry_after=retry_after, rng=Highest()) == expected


def test_retry_after_cap_is_an_option() -> None:
    assert delay(0, retry_after=30, rng=Highest(), max_retry_after=10) == 10


@pytest.mark.parametrize("retry_after", [0.0, -5.0, float("nan")])
def test_meaningless_retry_after_falls_back_to_jitter(retry_after: float) -> None:
    assert delay(2, retry_after=retry_after, rng=Highest()) == 2.0


NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "Wed, 01 Jan 2025 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Wed, 01 Jan 2025 12:00:30 -0000"}, 30.0),
        ({"retry-after": "Wed, 01 Jan 2025 11:59:00 GMT"}, 0.0),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "tomorrow"}, None),
    ],
)
def test_retry_after_from_headers(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_from_headers(headers, now=NOW) == expected


def test_retry_after_date_round_trips() -> None:
    moment = datetime(2025, 1, 1, 12, 1, 0, tzinfo=UTC)
    headers = {"retry-after": format_datetime(moment, usegmt=True)}
    assert retry_after_from_headers(headers, now=NOW) == 60.0
