"""Routing: chooses the provider pool for a request and writes it into the request context.

Rules, first match wins:
1. `pool_header` (default `x-lynkr-pool`) names a pool directly;
2. `tool_thresholds`: by how many tools the request carries, up to `simple`
   → pool "simple", up to `moderate` → "moderate", more → "complex";
3. `default_pool`.

The decision and its reason go into the context (`pool`, `route_reason`) and
the response header `x-lynkr-route`, so a user can see why a pool was chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lynkr.asgi import (
    ASGIApp,
    ClientDisconnected,
    Message,
    Receive,
    Scope,
    Send,
    get_context,
    header,
    parsed_body,
    replay_receive,
    send_error,
)
from lynkr.errors import LynkrError

__all__ = ["RoutingMiddleware", "choose_pool"]


class RoutingMiddleware:
    """Writes the chosen pool into the request context; the app behind it calls that pool."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default_pool: str | None = None,
        tool_thresholds: Mapping[str, int] | None = None,
        pool_header: str | None = "x-lynkr-pool",
    ) -> None:
        if tool_thresholds is not None:
            missing = {"simple", "moderate"} - set(tool_thresholds)
            if missing:
                raise ValueError(
                    "tool_thresholds needs both 'simple' and 'moderate' tool counts, "
                    f"missing: {', '.join(sorted(missing))}"
                )
            if tool_thresholds["moderate"] < tool_thresholds["simple"]:
                raise ValueError("tool_thresholds.moderate must be at least tool_thresholds.simple")
        self.app = app
        self.default_pool = default_pool
        self.tool_thresholds = dict(tool_thresholds) if tool_thresholds else None
        self.pool_header = pool_header.lower().encode("latin-1") if pool_header else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        context = get_context(scope)
        named = header(scope, self.pool_header) if self.pool_header else None
        body: dict[str, Any] | None = None
        if named is None and self.tool_thresholds is not None:
            try:
                body = await parsed_body(scope, receive)
            except ClientDisconnected:
                return
            except LynkrError as error:
                await send_error(send, error, request_id=context.request_id)
                return
            receive = replay_receive(scope, receive)
        pool, reason = choose_pool(
            named_pool=named,
            tools=(body or {}).get("tools"),
            tool_thresholds=self.tool_thresholds,
            default_pool=self.default_pool,
        )
        context.pool, context.route_reason = pool, reason
        await self.app(scope, receive, _with_route_header(send, pool, reason))


def choose_pool(
    *,
    named_pool: str | None,
    tools: Any,
    tool_thresholds: Mapping[str, int] | None,
    default_pool: str | None,
) -> tuple[str | None, str]:
    """The pool for a request and the reason, as plain data (no I/O)."""
    if named_pool:
        return named_pool.strip(), "header"
    if tool_thresholds is not None:
        count = len(tools) if isinstance(tools, list) else 0
        if count <= tool_thresholds["simple"]:
            return "simple", f"tools={count}<={tool_thresholds['simple']}"
        if count <= tool_thresholds["moderate"]:
            return "moderate", f"tools={count}<={tool_thresholds['moderate']}"
        return "complex", f"tools={count}>{tool_thresholds['moderate']}"
    return default_pool, "default"


def _with_route_header(send: Send, pool: str | None, reason: str) -> Send:
    value = f"pool={pool or '-'}; rule={reason}".encode("latin-1")

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), (b"x-lynkr-route", value)]
        await send(message)

    return wrapped
