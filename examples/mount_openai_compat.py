"""Serve the OpenAI Chat Completions API from any Anthropic Messages app, with one middleware.

The Starlette app below speaks only Anthropic (`POST /v1/messages`,
`GET /v1/models`): it echoes the last user message. `OpenAICompatMiddleware`
in front of it lets OpenAI clients call it too.

Run it, then call it with the OpenAI SDK:

    python examples/mount_openai_compat.py          # listens on 127.0.0.1:8000

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    reply = client.chat.completions.create(
        model="claude-echo", messages=[{"role": "user", "content": "hello"}]
    )
    print(reply.choices[0].message.content)        # → "You said: hello"
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lynkr.middleware.openai_compat import OpenAICompatMiddleware


async def messages(request: Request) -> JSONResponse:
    """A stand-in for a real Anthropic Messages backend (non-streaming only)."""
    body: dict[str, Any] = await request.json()
    last = body["messages"][-1]["content"]
    text = last if isinstance(last, str) else " ".join(b.get("text", "") for b in last)
    return JSONResponse(
        {
            "id": "msg_echo",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": f"You said: {text}"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": len(text) // 4 + 1, "output_tokens": 3},
        }
    )


async def models(request: Request) -> JSONResponse:
    model = {"type": "model", "id": "claude-echo", "created_at": "2025-01-01T00:00:00Z"}
    return JSONResponse({"data": [model], "has_more": False})


app = Starlette(
    routes=[Route("/v1/messages", messages, methods=["POST"]), Route("/v1/models", models)],
    middleware=[Middleware(OpenAICompatMiddleware, default_max_tokens=1024)],
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
