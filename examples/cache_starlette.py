"""The response cache alone in a plain Starlette app that speaks the Anthropic Messages API.

Run: `uvicorn examples.cache_starlette:app` (or `python examples/cache_starlette.py`), then
POST the same body to /v1/messages twice: the second answer comes from the cache
(`x-lynkr-cache: hit`), as JSON or as SSE, whichever `"stream"` asks for. Entries live
in `cache.sqlite3` next to where the app runs, for ten minutes, and survive a restart.
Send `cache-control: no-store` to bypass it.
"""

from __future__ import annotations

import itertools

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from lynkr.middleware.cache import CacheMiddleware
from lynkr.protocol import message_as_sse

calls = itertools.count(1)  # how many requests reached the "model"


async def messages(request: Request) -> Response:
    """Stands in for a model: answers with the call number, as JSON or as a stream."""
    body = await request.json()
    message = {
        "id": f"msg_example_{next(calls)}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": f"Answer to: {body['messages'][-1]['content']}"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 5},
    }
    if body.get("stream"):
        return Response(message_as_sse(message), media_type="text/event-stream")
    return JSONResponse(message)


app = Starlette(
    routes=[Route("/v1/messages", messages, methods=["POST"])],
    middleware=[Middleware(CacheMiddleware, store="sqlite", path="cache.sqlite3", ttl_seconds=600)],
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
