"""Request validation: a body size limit, one JSON parse, and a check of the request's shape.

The body is read and parsed once here and kept in the request context; inner
layers get the parsed object from the context and the raw bytes through a
replaying `receive`, untouched unless a layer changed them.

The shape check covers the top-level fields every Messages request needs.
"""

from __future__ import annotations

from typing import Any

from lynkr.asgi import (
    DEFAULT_BODY_LIMIT,
    ASGIApp,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    get_context,
    parsed_body,
    replay_receive,
    send_error,
)
from lynkr.errors import ClientError, LynkrError

__all__ = ["ValidationMiddleware", "check_messages_request"]


class ValidationMiddleware:
    """Rejects oversized, unparsable or malformed requests with Anthropic-shaped 4xx errors."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int = DEFAULT_BODY_LIMIT) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be a positive integer, got {max_body_bytes!r}")
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            body = await parsed_body(scope, receive, limit=self.max_body_bytes)
            check_messages_request(body, counting=scope["path"].endswith("/count_tokens"))
        except ClientDisconnected:
            return
        except LynkrError as error:
            await send_error(send, error, request_id=get_context(scope).request_id)
            return
        await self.app(scope, replay_receive(scope, receive), send)


def check_messages_request(body: dict[str, Any], *, counting: bool = False) -> None:
    """Raise `ClientError` naming the JSON path of the first top-level field that is wrong.

    `counting` relaxes the rules for /v1/messages/count_tokens, which takes no max_tokens.
    """
    _require(body, "model", str, "a model name such as claude-sonnet-4-5")
    _require(body, "messages", list, "a list of {role, content} messages")
    if not counting:
        _require(body, "max_tokens", int, "a positive integer")
    for index, message in enumerate(body["messages"]):
        if not isinstance(message, dict):
            raise ClientError(f"messages[{index}]: expected an object with role and content")
        if "role" not in message:
            raise ClientError(f"messages[{index}].role: required")
        if "content" not in message:
            raise ClientError(f"messages[{index}].content: required")


def _require(body: dict[str, Any], key: str, kind: type, example: str) -> None:
    if key not in body:
        raise ClientError(f"{key}: required ({example})")
    value = body[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ClientError(f"{key}: expected {example}, got {type(value).__name__}")
