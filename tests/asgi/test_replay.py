"""Several layers that read the body hand the app behind them one `http.request`, not one each."""

from __future__ import annotations

from typing import Any

import pytest

from lynkr.middleware.routing import RoutingMiddleware
from lynkr.middleware.validation import ValidationMiddleware


@pytest.mark.anyio
async def test_stacked_layers_replay_the_body_once() -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        seen.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    stack = ValidationMiddleware(
        RoutingMiddleware(app, default_pool="p", tool_thresholds={"simple": 1, "moderate": 2}),
        validate_schema=False,
    )
    body = b'{"model": "m", "max_tokens": 1, "messages": []}'
    incoming = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        pass

    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": []}
    await stack(scope, receive, send)
    assert seen == [
        {"type": "http.request", "body": body, "more_body": False},
        {"type": "http.disconnect"},
    ]
