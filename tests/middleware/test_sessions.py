"""The sessions layer records each turn as the client received it, on a real SQLite store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from lynkr.asgi import ASGIApp, Message, Receive, Scope, Send, send_json
from lynkr.middleware.cache import CacheMiddleware
from lynkr.middleware.policy import PolicyMiddleware
from lynkr.middleware.sessions import SessionsMiddleware
from lynkr.protocol import encode_event
from lynkr.sessions import SQLiteSessionStore

SESSION = "sess-layer"
BODY: dict[str, Any] = {
    "model": "claude-x",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "run it"}]}],
    "metadata": {"user_id": orjson.dumps({"session_id": SESSION}).decode()},
}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}


def answer(*content: dict[str, Any], stop: str = "end_turn") -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "model": "m",
        "content": list(content),
        "stop_reason": stop,
        "usage": {"input_tokens": 7, "output_tokens": 3},
    }


def stream_of(message: dict[str, Any]) -> bytes:
    """`message` as Anthropic's SSE events, one block at a time."""
    start = {**message, "content": [], "stop_reason": None}
    frames = [
        encode_event("message_start", orjson.dumps({"type": "message_start", "message": start}))
    ]
    for index, block in enumerate(message["content"]):
        opened = {**block, "input": {}} if block["type"] == "tool_use" else {**block, "text": ""}
        frames.append(_event("content_block_start", index=index, content_block=opened))
        if block["type"] == "tool_use":
            delta = {
                "type": "input_json_delta",
                "partial_json": orjson.dumps(block["input"]).decode(),
            }
        else:
            delta = {"type": "text_delta", "text": block["text"]}
        frames.append(_event("content_block_delta", index=index, delta=delta))
        frames.append(_event("content_block_stop", index=index))
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    frames.append(_event("message_delta", delta=stop, usage={"output_tokens": 3}))
    frames.append(_event("message_stop"))
    return b"".join(frames)


def _event(kind: str, **fields: Any) -> bytes:
    return encode_event(kind, orjson.dumps({"type": kind, **fields}))


def upstream(message: dict[str, Any], *, status: int = 200) -> tuple[ASGIApp, list[int]]:
    """An app answering `message` (as SSE when the request streams); counts its calls."""
    calls: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(1)
        request = orjson.loads((await receive())["body"])
        if status != 200 or not request.get("stream"):
            await send_json(send, status, orjson.dumps(message))
            return
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for frame in stream_of(message).split(b"\n\n")[:-1]:
            await send({"type": "http.response.body", "body": frame + b"\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app, calls


async def call(app: ASGIApp, body: dict[str, Any], path: str = "/v1/messages") -> list[Message]:
    sent: list[Message] = []
    raw = orjson.dumps(body)
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
    }
    messages = iter([{"type": "http.request", "body": raw, "more_body": False}])

    async def receive() -> Message:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


Scenario = Callable[[SQLiteSessionStore], Awaitable[Any]]


def played(tmp_path: Path, scenario: Scenario) -> Any:
    """Run `scenario` against a fresh store, then return the session it recorded."""

    async def main() -> Any:
        store = SQLiteSessionStore(tmp_path / "sessions.sqlite3")
        try:
            async with asyncio.timeout(20):
                await scenario(store)
                return await store.get(SESSION, full=True)  # queued behind the writes
        finally:
            await store.close()

    return asyncio.run(main())


@pytest.mark.parametrize("stream", [True, False])
def test_a_tool_call_the_policy_refused_is_recorded_as_the_refusal(
    tmp_path: Path, stream: bool
) -> None:
    app, _ = upstream(answer(TOOL_USE, stop="tool_use"))
    policy = {"tools": {"deny": ["shell"]}}

    async def scenario(store: SQLiteSessionStore) -> None:
        layer = PolicyMiddleware(app, policy=policy, enforce_on_responses=True)
        await call(SessionsMiddleware(layer, store=store), {**BODY, "stream": stream})

    session = played(tmp_path, scenario)
    (turn,) = session["turns"]
    blocks = turn["answer"]["content"]
    assert [block["type"] for block in blocks] == ["text"], blocks
    assert "refused by lynkr policy" in blocks[0]["text"]
    assert turn["answer"]["stop_reason"] == "end_turn"


def test_a_cache_hit_is_a_turn_the_client_received(tmp_path: Path) -> None:
    app, calls = upstream(answer({"type": "text", "text": "cached words"}))

    async def scenario(store: SQLiteSessionStore) -> None:
        stack = SessionsMiddleware(CacheMiddleware(app), store=store)
        for _ in range(2):
            await call(stack, BODY)

    session = played(tmp_path, scenario)
    assert len(calls) == 1  # the second answer came from the cache
    assert session["turn_count"] == 2
    for turn in session["turns"]:
        assert turn["answer"]["summary"] == "cached words"
    assert session["turns"][1]["usage"]["cache_read_input_tokens"] == 7  # a hit's usage, as sent


def test_an_error_answer_keeps_the_request_without_an_answer(tmp_path: Path) -> None:
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    app, _ = upstream(error, status=529)

    async def scenario(store: SQLiteSessionStore) -> None:
        sent = await call(SessionsMiddleware(app, store=store), BODY)
        assert sent[0]["status"] == 529

    (turn,) = played(tmp_path, scenario)["turns"]
    assert turn["answer"] is None and turn["new_message_count"] == 1


def test_other_paths_and_methods_are_not_recorded(tmp_path: Path) -> None:
    app, calls = upstream(answer({"type": "text", "text": "17"}))

    async def scenario(store: SQLiteSessionStore) -> None:
        layer = SessionsMiddleware(app, store=store)
        await call(layer, BODY, path="/v1/messages/count_tokens")
        await call(layer, BODY, path="/v1/chat/completions")

    assert played(tmp_path, scenario) is None
    assert len(calls) == 2


def test_a_client_path_prefix_is_still_the_messages_endpoint(tmp_path: Path) -> None:
    app, _ = upstream(answer({"type": "text", "text": "hi"}))

    async def scenario(store: SQLiteSessionStore) -> None:
        await call(SessionsMiddleware(app, store=store), BODY, path="/proxy/azure/v1/messages/")

    assert played(tmp_path, scenario)["turn_count"] == 1
