"""Pure resilience building blocks: circuit breaker, backoff, deadline budget, admission limiter.

State machines and arithmetic over an injectable clock and random source, with
no I/O (docs/architecture.md, "The layers"): the shedding and failover
middlewares and the provider pool share them. The one asyncio piece is
`AdmissionLimiter.acquire`, a thin FIFO of futures over the pure
`AdmissionState`.
"""

from lynkr.resilience.admission import AdmissionLimiter, AdmissionState, Decision, Slot
from lynkr.resilience.backoff import (
    DEFAULT_BASE,
    DEFAULT_CAP,
    MAX_RETRY_AFTER,
    Uniform,
    delay,
    retry_after_from_headers,
)
from lynkr.resilience.breaker import (
    BreakerRegistry,
    BreakerSettings,
    BreakerState,
    CircuitBreaker,
    ExceptionKind,
    Outcome,
    classify,
)
from lynkr.resilience.clock import Clock, FakeClock, MonotonicClock
from lynkr.resilience.deadline import Deadline

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_CAP",
    "MAX_RETRY_AFTER",
    "AdmissionLimiter",
    "AdmissionState",
    "BreakerRegistry",
    "BreakerSettings",
    "BreakerState",
    "CircuitBreaker",
    "Clock",
    "Deadline",
    "Decision",
    "ExceptionKind",
    "FakeClock",
    "MonotonicClock",
    "Outcome",
    "Slot",
    "Uniform",
    "classify",
    "delay",
    "retry_after_from_headers",
]
