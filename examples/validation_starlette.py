"""Request validation alone in a Starlette app.

Run: `uvicorn examples.validation_starlette:app` (or `python examples/validation_starlette.py`).
Every POST is size-limited (1 MB here; Anthropic's 32 MB by default), parsed
once and checked against the Anthropic Messages schema: a broken request gets
`400 invalid_request_error` naming the JSON path, e.g.
`messages[0].role: expected one of 'user', 'assistant', 'system', got 'bot'`,
before the app runs. The handlers read the parsed body from lynkr's request
context instead of parsing it again.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lynkr.asgi import get_context
from lynkr.middleware.validation import ValidationMiddleware


def parsed(request: Request) -> dict[str, Any]:
    """The body ValidationMiddleware parsed and checked: no second parse."""
    body = get_context(request.scope).body
    assert body is not None, "mount ValidationMiddleware in front of this route"
    return body


async def messages(request: Request) -> JSONResponse:
    """A stand-in for a Messages backend: the body is already parsed and valid."""
    body = parsed(request)
    return JSONResponse({"type": "message", "model": body["model"], "turns": len(body["messages"])})


async def count_tokens(request: Request) -> JSONResponse:
    body = parsed(request)
    return JSONResponse({"input_tokens": len(str(body["messages"])) // 4})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/health", health),
    ],
    middleware=[Middleware(ValidationMiddleware, max_body_bytes=1_000_000)],
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
