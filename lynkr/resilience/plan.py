"""What a request may spend on failing over: the breakers, one deadline, the retry rules.

The failover middleware builds one `FailoverPlan` per request and publishes it
in the request context; the provider pool follows it for every upstream call
the request makes. Plain data over the pure pieces of this package, so the
pool's decisions stay testable under a fake clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lynkr.resilience.backoff import DEFAULT_BASE, DEFAULT_CAP, MAX_RETRY_AFTER, Uniform, delay
from lynkr.resilience.breaker import BreakerRegistry
from lynkr.resilience.deadline import Deadline

__all__ = ["FailoverPlan", "RetryPolicy"]

# The OS's randomness has no state to share: one instance serves every request's plan.
_SYSTEM_RANDOM = random.SystemRandom()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of one provider before the pool moves on.

    One fast retry by default, then the next provider: the client retries
    too, and retries multiply across layers.
    """

    retries: int = 1
    count_429: bool = False
    backoff_base: float = DEFAULT_BASE
    backoff_cap: float = DEFAULT_CAP
    max_retry_after: float = MAX_RETRY_AFTER

    def delay(self, attempt: int, retry_after: float | None, rng: Uniform) -> float:
        return delay(
            attempt,
            retry_after=retry_after,
            rng=rng,
            base=self.backoff_base,
            cap=self.backoff_cap,
            max_retry_after=self.max_retry_after,
        )


@dataclass(slots=True)
class FailoverPlan:
    """One request's failover budget: shared breakers, its own deadline, the retry rules."""

    breakers: BreakerRegistry
    deadline: Deadline
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rng: Uniform = field(default_factory=lambda: _SYSTEM_RANDOM)
    # Set by the pool when it used the plan, so the middleware does not count twice.
    used: bool = False
