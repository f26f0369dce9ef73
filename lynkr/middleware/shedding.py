"""Load shedding: at most `max_concurrent` requests in flight, a short queue, then a fast 529.

Over capacity the client gets what Anthropic itself sends when full: `529
overloaded_error` with `retry-after` and `x-should-retry: true`, which the
Anthropic SDKs and Claude Code back off on and retry (docs/protocol.md A.9).
OpenAI routes get 503 in OpenAI's error shape, the status OpenAI clients
retry on. The answer is decided before the body is read, so it costs no I/O.

Defaults: 64 in flight (one Claude Code with subagents keeps 10–20 busy, so
64 leaves room for a few users while bounding the proxy's memory and CPU); a
queue of 64 waiting at most 1 s (Helidon-style), so a short burst waits
instead of failing; `retry-after: 2`, inside the 1–5 s shedders usually ask
for and well under the 60 s the SDKs obey. Shed requests are answered as they
arrive, so their retries come back spread out rather than all at once.

Health, readiness and metrics paths are never shed: a full proxy must still
say how it is. Lifespan and websocket scopes pass straight through.

Shared state: the `AdmissionLimiter` built in `__init__` is shared by every
request through this instance; `counters` is its live `AdmissionState`
(`in_flight`, `queued`, `admitted`, `shed`, `abandoned`, `released`, or
`snapshot()`), for a metrics layer to read.
"""

from __future__ import annotations

from collections.abc import Sequence

from lynkr.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    api_path,
    send_overloaded,
)
from lynkr.resilience import AdmissionLimiter, Slot

__all__ = ["SheddingMiddleware"]

# The Anthropic SDKs obey a `retry-after` of at most 60 s and ignore longer ones.
_MAX_RETRY_AFTER = 60


class SheddingMiddleware:
    """Admits a bounded number of requests; answers the rest 529 (OpenAI routes: 503)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_concurrent: int = 64,
        max_queue: int = 64,
        max_queue_wait_ms: int = 1000,
        retry_after_seconds: int = 2,
        exempt_paths: Sequence[str] = ("/health", "/ready", "/metrics"),
        openai_paths: Sequence[str] = ("/v1/chat/completions",),
    ) -> None:
        if not 1 <= retry_after_seconds <= _MAX_RETRY_AFTER:
            raise ValueError(
                f"retry_after_seconds must be between 1 and {_MAX_RETRY_AFTER} (clients ignore "
                f"longer waits), got {retry_after_seconds!r}"
            )
        if max_queue_wait_ms < 0:
            raise ValueError(
                f"max_queue_wait_ms must be 0 (no waiting) or more, got {max_queue_wait_ms!r}"
            )
        _check_paths("exempt_paths", exempt_paths)
        _check_paths("openai_paths", openai_paths)
        self.app = app
        self.limiter = AdmissionLimiter(
            max_concurrent=max_concurrent,
            max_queue=max_queue,
            max_queue_wait=max_queue_wait_ms / 1000,
        )
        self.counters = self.limiter.state
        self._exempt = frozenset(exempt_paths)
        self._openai = frozenset(openai_paths)
        self._retry_after = str(retry_after_seconds)
        queue = self.counters.max_queue  # 0 when max_queue_wait_ms is 0
        self._message = (
            f"lynkr is at capacity ({max_concurrent} requests in flight, {queue} waiting). "
            f"Retry after {retry_after_seconds} s; an operator can raise the shedding "
            "middleware's max_concurrent if the machine has headroom."
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._exempt:
            await self.app(scope, receive, send)
            return
        slot = await self.limiter.acquire()
        if slot is None:
            await self._shed(scope, send)
            return
        try:
            await self.app(scope, _releasing_receive(receive, slot), _releasing_send(send, slot))
        finally:
            slot.release()

    async def _shed(self, scope: Scope, send: Send) -> None:
        headers = {"retry-after": self._retry_after, "x-should-retry": "true"}
        openai = api_path(scope["path"]) in self._openai
        await send_overloaded(scope, send, self._message, headers=headers, openai=openai)


def _releasing_receive(receive: Receive, slot: Slot) -> Receive:
    """Frees the slot as soon as the client is known to be gone (`http.disconnect`)."""

    async def wrapped() -> Message:
        message = await receive()
        if message["type"] == "http.disconnect":
            slot.release()
        return message

    return wrapped


def _releasing_send(send: Send, slot: Slot) -> Send:
    """Frees the slot once the last body chunk went out, even if the app lingers after it."""

    async def wrapped(message: Message) -> None:
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            slot.release()

    return wrapped


def _check_paths(option: str, paths: Sequence[str]) -> None:
    if isinstance(paths, str):
        raise ValueError(f"{option} must be a list of paths, got the string {paths!r}")
    for path in paths:
        if not path.startswith("/"):
            raise ValueError(f"{option}: paths start with '/', got {path!r}")
