"""Access log: one structured line per request, after it ends.

Logs method, path, status, duration, request id and, when the inner layers
chose them, the pool and provider. Never headers, bodies or credentials.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from lynkr.asgi import ASGIApp, Receive, ResponseStatus, Scope, Send, get_context

__all__ = ["AccessLogMiddleware"]


class AccessLogMiddleware:
    """Logs each HTTP request through structlog's `lynkr.access` logger."""

    def __init__(self, app: ASGIApp, *, logger_name: str = "lynkr.access") -> None:
        self.app = app
        self.logger: Any = structlog.get_logger(logger_name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        watch = ResponseStatus(send)
        try:
            await self.app(scope, receive, watch.send)
        finally:
            context = get_context(scope)
            self.logger.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=watch.status or "disconnected",
                ms=round((time.perf_counter() - started) * 1000, 1),
                request_id=context.request_id,
                pool=context.pool,
                provider=context.provider,
            )
