"""Failover alone in a FastAPI app: an OpenAI-style route answers 503 while its breaker is open.

Run: `uvicorn examples.failover_fastapi:app` (or `python examples/failover_fastapi.py`).
Exceptions count as failures too; after 2 in a row the breaker opens for 5 seconds and
`/v1/chat/completions` answers 503 in OpenAI's error shape with `retry-after`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from lynkr.middleware.failover import FailoverMiddleware

app = FastAPI()
app.add_middleware(FailoverMiddleware, consecutive_failures=2, open_seconds=5)
calls = {"count": 0}


@app.post("/v1/chat/completions")
async def chat_completions(body: dict[str, Any]) -> dict[str, Any]:
    calls["count"] += 1
    raise RuntimeError("the model server crashed")


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
