"""Routing alone in a FastAPI app, with sticky sessions.

Run: `uvicorn examples.routing_fastapi:app` (or `python examples/routing_fastapi.py`).
A Claude Code session (`x-claude-code-session-id`) stays on the pool its first
request was routed to, where its prompt cache lives; `x-lynkr-pool` overrides.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request

from lynkr.asgi import get_context
from lynkr.middleware.routing import RoutingMiddleware

app = FastAPI()
app.add_middleware(
    RoutingMiddleware,
    default_pool="moderate",
    tool_thresholds={"simple": 2, "moderate": 14},
    sticky_sessions=True,
)


@app.post("/v1/messages")
async def messages(request: Request) -> dict[str, Any]:
    context = get_context(request.scope)
    return {"pool": context.pool, "rule": context.route_reason, "body": await request.json()}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
