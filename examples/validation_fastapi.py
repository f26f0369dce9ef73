"""Request validation alone in a FastAPI app.

Run: `uvicorn examples.validation_fastapi:app` (or `python examples/validation_fastapi.py`).
The middleware answers oversized bodies (over 1 MB here) with `413
request_too_large` and malformed Messages requests with an Anthropic `400
invalid_request_error` that names the JSON path, e.g.
`messages[1].content[0].tool_use_id: required`, instead of FastAPI's 422. The
body reaches FastAPI byte for byte, so its own parsing works as usual.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from lynkr.middleware.validation import ValidationMiddleware

app = FastAPI()
app.add_middleware(ValidationMiddleware, max_body_bytes=1_000_000)


@app.post("/v1/messages")
async def messages(body: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "model": body["model"], "turns": len(body["messages"])}


@app.post("/v1/messages/count_tokens")
async def count_tokens(body: dict[str, Any]) -> dict[str, int]:
    return {"input_tokens": len(str(body["messages"])) // 4}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
