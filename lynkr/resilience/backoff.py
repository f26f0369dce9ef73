"""How long to wait before a retry: exponential backoff with full jitter, or the server's word.

Pure arithmetic with an injected random source:

- Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"):
  `uniform(0, min(cap, base * 2**attempt))`; of the jitter variants it does the
  least total work. Defaults are the Anthropic SDK's constants, base 0.5 s and
  cap 8 s.
- A `retry-after` from the upstream wins (Envoy `rate_limited_retry_back_off`),
  capped at 60 s, the most the Anthropic SDKs obey. Whether a wait that
  long still fits the request is the `Deadline`'s call, not this module's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Protocol

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_CAP",
    "MAX_RETRY_AFTER",
    "Uniform",
    "delay",
    "retry_after_from_headers",
]

DEFAULT_BASE = 0.5
DEFAULT_CAP = 8.0
MAX_RETRY_AFTER = 60.0
# 2**62 × any sensible base is far past any cap; a larger exponent would overflow a float.
_MAX_EXPONENT = 62


class Uniform(Protocol):
    """A random source: `random.Random` (seed it in tests) or `random.SystemRandom`."""

    def uniform(self, a: float, b: float) -> float: ...


def delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    rng: Uniform,
    base: float = DEFAULT_BASE,
    cap: float = DEFAULT_CAP,
    max_retry_after: float = MAX_RETRY_AFTER,
) -> float:
    """Seconds to wait before retry number `attempt` (0 for the first retry).

    A positive `retry_after` (seconds, from the upstream) is used as given, at
    most `max_retry_after`; otherwise full jitter over `[0, min(cap, base·2^attempt)]`.
    """
    if attempt < 0:
        raise ValueError(f"attempt counts retries from 0, got {attempt!r}")
    if retry_after is not None and retry_after > 0:  # NaN fails `> 0` too
        return min(retry_after, max_retry_after)
    ceiling = min(cap, base * 2.0 ** min(attempt, _MAX_EXPONENT))
    return rng.uniform(0.0, ceiling)


def retry_after_from_headers(headers: Mapping[str, str], *, now: float) -> float | None:
    """The wait an upstream asked for, in seconds, or None when it asked for none.

    Reads `retry-after-ms` first, then `retry-after` as seconds or an HTTP date
    (the Anthropic SDK's order); `headers` has lower-case names and `now` is
    wall-clock epoch seconds (only an HTTP date needs it). Unreadable or
    negative values count as absent.
    """
    milliseconds = _number(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    return seconds if seconds is not None else _seconds_until(value, now)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _seconds_until(http_date: str, now: float) -> float | None:
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # `-0000`: RFC 9110 dates are GMT anyway
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now)
