from __future__ import annotations

from typing import Any

import orjson
import pytest

from lynkr.asgi import Receive, Scope, Send, get_context, read_body, send_json


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """An inner app that reports what it received: body bytes (read via receive) and context."""
    body = b""
    if scope["type"] == "http" and scope["method"] == "POST":
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
    context = get_context(scope)
    payload = {
        "body": body.decode(),
        "parsed": context.body is not None,
        "pool": context.pool,
        "route_reason": context.route_reason,
    }
    await send_json(send, 200, orjson.dumps(payload))


@pytest.fixture
def echo() -> Any:
    return echo_app


__all__ = ["echo_app", "read_body"]
