"""Load shedding alone in a plain Starlette app.

Run: `uvicorn examples.shedding_starlette:app` (or `python examples/shedding_starlette.py`).
At most 8 requests run at once; more wait up to half a second in a queue of 8,
then get `529 overloaded_error` with `retry-after: 1`. `/health` is never shed.
"""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lynkr.middleware.shedding import SheddingMiddleware


async def messages(request: Request) -> JSONResponse:
    body = await request.json()
    await asyncio.sleep(0)  # stands in for the model call
    return JSONResponse({"type": "message", "echo": body})


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[Route("/v1/messages", messages, methods=["POST"]), Route("/health", health)],
    middleware=[
        Middleware(
            SheddingMiddleware,
            max_concurrent=8,
            max_queue=8,
            max_queue_wait_ms=500,
            retry_after_seconds=1,
        )
    ],
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
