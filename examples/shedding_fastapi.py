"""Load shedding alone in a FastAPI app.

Run: `uvicorn examples.shedding_fastapi:app` (or `python examples/shedding_fastapi.py`).
At most 8 requests run at once and none wait: the 9th gets `529
overloaded_error` with `retry-after: 2` at once; `/v1/chat/completions` (an
OpenAI route) gets 503 in OpenAI's error shape instead. `/health` is never shed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from lynkr.middleware.shedding import SheddingMiddleware

app = FastAPI()
app.add_middleware(SheddingMiddleware, max_concurrent=8, max_queue=0)


@app.post("/v1/messages")
async def messages(body: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0)  # stands in for the model call
    return {"type": "message", "echo": body}


@app.post("/v1/chat/completions")
async def chat_completions(body: dict[str, Any]) -> dict[str, Any]:
    return {"object": "chat.completion", "echo": body}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
