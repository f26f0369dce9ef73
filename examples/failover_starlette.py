"""Failover alone in a plain Starlette app: a circuit breaker in front of a flaky handler.

Run: `uvicorn examples.failover_starlette:app` (or `python examples/failover_starlette.py`).
After 3 server errors in a row on a path, its breaker opens: for the next 10 seconds
requests get `529 overloaded_error` with `retry-after` at once, without reaching the
handler; then one trial request is let through, and successes close it again.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lynkr.middleware.failover import FailoverMiddleware

state = {"healthy": False}


async def messages(request: Request) -> JSONResponse:
    if not state["healthy"]:
        return JSONResponse({"error": "the model server is down"}, status_code=502)
    return JSONResponse({"type": "message", "content": []})


app = Starlette(
    routes=[Route("/v1/messages", messages, methods=["POST"])],
    middleware=[
        Middleware(
            FailoverMiddleware, consecutive_failures=3, open_seconds=10, half_open_successes=1
        )
    ],
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
