"""A fast fake LLM upstream for the benchmarks: Anthropic and OpenAI, JSON and SSE.

    python benchmarks/fake_upstream.py PORT

Runs as its own process (uvicorn + httptools + uvloop, one raw ASGI function, no framework)
so its CPU never mixes with the process under test. It never parses request bodies:

* a path ending in ``/chat/completions`` answers in OpenAI Chat Completions format
  (``data:`` chunks, then ``data: [DONE]``), any other POST in Anthropic Messages format
  (``message_start`` … ``message_stop``);
* a body containing ``"stream":true`` gets SSE, any other a JSON message.

Knobs (``POST /_bench`` with a JSON object; ``GET /_bench`` shows them), applied to every
later request until changed:

``events``      text-delta events per stream (default 20);
``first_ms``    delay before the first event (default 0);
``gap_ms``      delay between events (default 0);
``body_bytes``  size of the text in a JSON answer (default 100).

Unpaced streams (``first_ms == gap_ms == 0``) are written as one pre-built body. Paced
streams are written event by event, and every text delta is ``"<seq>@<ns> "`` where ``ns`` is
`time.monotonic_ns()` when the event was sent — CLOCK_MONOTONIC is system-wide on Linux, so
the load generator can compare its own arrival times with the upstream's send times.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

# One write of a stream: bytes, or a function building them when sent (timestamped deltas).
Part = bytes | Callable[[], bytes]

KNOBS: dict[str, float] = {"events": 20, "first_ms": 0.0, "gap_ms": 0.0, "body_bytes": 100}
_CACHE: dict[tuple[str, tuple[float, ...]], bytes] = {}


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _openai(data: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def anthropic_events(events: int, stamp: bool = False) -> list[Part]:
    """An Anthropic Messages stream: start, `events` text deltas, stop."""

    def delta(i: int) -> bytes:
        text = f"{i}@{time.monotonic_ns()} " if stamp else "word "
        return _sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            },
        )

    start = _sse(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_bench",
                "type": "message",
                "role": "assistant",
                "model": "up-model",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 20000, "output_tokens": 1},
            },
        },
    )
    block = _sse(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    end = [
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": events},
            },
        ),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return [start + block, *(partial(delta, i) for i in range(events)), b"".join(end)]


def openai_events(events: int, stamp: bool = False) -> list[Part]:
    """An OpenAI Chat Completions stream: role chunk, `events` content chunks, finish, usage."""
    base = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "up-model",
    }

    def delta(i: int) -> bytes:
        text = f"{i}@{time.monotonic_ns()} " if stamp else "word "
        return _openai(
            {**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
        )

    first = _openai(
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        }
    )
    end = [
        _openai({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        _openai(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": 20000,
                    "completion_tokens": events,
                    "total_tokens": 20000 + events,
                },
            }
        ),
        b"data: [DONE]\n\n",
    ]
    return [first, *(partial(delta, i) for i in range(events)), b"".join(end)]


def _materialise(part: Part) -> bytes:
    return part if isinstance(part, bytes) else part()


def anthropic_message(body_bytes: int) -> bytes:
    text = ("word " * (int(body_bytes) // 5 + 1))[: int(body_bytes)]
    return json.dumps(
        {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": "up-model",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 20000, "output_tokens": 20},
        }
    ).encode()


def openai_message(body_bytes: int) -> bytes:
    text = ("word " * (int(body_bytes) // 5 + 1))[: int(body_bytes)]
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1,
            "model": "up-model",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
            ],
            "usage": {"prompt_tokens": 20000, "completion_tokens": 20, "total_tokens": 20020},
        }
    ).encode()


def _cached(kind: str) -> bytes:
    key = (kind, tuple(KNOBS.values()))
    if key not in _CACHE:
        events = int(KNOBS["events"])
        if kind == "anthropic-sse":
            _CACHE[key] = b"".join(map(_materialise, anthropic_events(events)))
        elif kind == "openai-sse":
            _CACHE[key] = b"".join(map(_materialise, openai_events(events)))
        elif kind == "anthropic-json":
            _CACHE[key] = anthropic_message(KNOBS["body_bytes"])
        else:
            _CACHE[key] = openai_message(KNOBS["body_bytes"])
    return _CACHE[key]


async def _read(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = await _read(receive)
    path: str = scope["path"]
    if path == "/_bench":
        if scope["method"] == "POST" and body:
            KNOBS.update({k: float(v) for k, v in json.loads(body).items() if k in KNOBS})
        await _respond(send, 200, b"application/json", json.dumps(KNOBS).encode())
        return
    if scope["method"] != "POST":
        await _respond(send, 200, b"application/json", b'{"ok":true}')
        return
    openai = path.endswith("/chat/completions")
    stream = b'"stream":true' in body or b'"stream": true' in body
    if not stream:
        await _respond(
            send, 200, b"application/json", _cached("openai-json" if openai else "anthropic-json")
        )
        return
    first_ms, gap_ms = KNOBS["first_ms"], KNOBS["gap_ms"]
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        }
    )
    if not first_ms and not gap_ms:
        await send(
            {
                "type": "http.response.body",
                "body": _cached("openai-sse" if openai else "anthropic-sse"),
            }
        )
        return
    parts = (openai_events if openai else anthropic_events)(int(KNOBS["events"]), stamp=True)
    if first_ms:
        await asyncio.sleep(first_ms / 1000)
    for i, part in enumerate(parts):
        if i and gap_ms:
            await asyncio.sleep(gap_ms / 1000)
        await send({"type": "http.response.body", "body": _materialise(part), "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _respond(send: Any, status: int, kind: bytes, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]}
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
    )
