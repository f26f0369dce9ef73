"""Routing alone in a plain Starlette app: the pool lynkr would choose, for your own handler.

Run: `uvicorn examples.routing_starlette:app` (or `python examples/routing_starlette.py`).
Requests with many tools go to "complex", Haiku-named models to "simple", the rest by
tool count; the handler reads the decision from lynkr's request context and the
response carries `x-lynkr-route` saying which rule matched.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lynkr.asgi import get_context
from lynkr.middleware.routing import RoutingMiddleware


async def messages(request: Request) -> JSONResponse:
    context = get_context(request.scope)
    return JSONResponse({"pool": context.pool, "rule": context.route_reason})


app = Starlette(
    routes=[Route("/v1/messages", messages, methods=["POST"])],
    middleware=[
        Middleware(
            RoutingMiddleware,
            default_pool="moderate",
            tool_thresholds={"simple": 2, "moderate": 14},
            rules=[{"name": "background", "model": "claude-*haiku*", "pool": "simple"}],
        )
    ],
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
