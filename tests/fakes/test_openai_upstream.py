"""The fake OpenAI upstream itself speaks Chat Completions (checked with plain httpx)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fakes.openai_upstream import (
    FakeOpenAI,
    call,
    context_length_exceeded,
    cut_stream,
    error,
    llamacpp_context_full,
    openrouter_error,
    reasoning,
    slow_text,
    stream_error,
    text,
    tool_calls,
)

BODY: dict[str, Any] = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**BODY, "stream": True, "stream_options": {"include_usage": True}}


@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(module_fake: FakeOpenAI) -> FakeOpenAI:
    module_fake.reset()
    return module_fake


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=10, trust_env=False) as http:
        yield http


def parse_chunks(raw: str) -> tuple[list[dict[str, Any]], list[str], bool]:
    """(chunks, comment lines, whether [DONE] closed the stream); no `event:` lines allowed."""
    chunks, comments, done = [], [], False
    for block in raw.split("\n\n"):
        if not block:
            continue
        assert not block.startswith("event:"), block
        if block.startswith(":"):
            comments.append(block[1:].strip())
            continue
        assert block.startswith("data: "), block
        assert not done, "data after [DONE]"
        payload = block[6:]
        if payload == "[DONE]":
            done = True
        else:
            chunks.append(json.loads(payload))
    return chunks, comments, done


def stream(client: httpx.Client, path: str = "/v1/chat/completions", **extra: Any) -> Any:
    response = client.post(path, json={**STREAM, **extra})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_chunks(response.text)


def content_of(chunks: list[dict[str, Any]], key: str = "content") -> str:
    return "".join(c["choices"][0]["delta"].get(key) or "" for c in chunks if c.get("choices"))


def test_default_text_stream_and_usage_chunk(client: httpx.Client) -> None:
    chunks, comments, done = stream(client)
    assert done and not comments
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert content_of(chunks) == "Hello from the fake OpenAI upstream."
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 30
    assert all(c["usage"] is None for c in chunks[:-1])


def test_without_include_usage_no_usage_chunk(client: httpx.Client) -> None:
    response = client.post("/v1/chat/completions", json={**BODY, "stream": True})
    chunks, _, done = parse_chunks(response.text)
    assert done and all(c["choices"] for c in chunks) and "usage" not in chunks[0]


def test_non_streaming_completion(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.script(text("whole", usage={"prompt_tokens": 120, "cached_tokens": 20}))
    answer = client.post("/v1/chat/completions", json=BODY).json()
    assert answer["object"] == "chat.completion" and answer["model"] == "gpt-x"
    choice = answer["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "whole", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert answer["usage"]["prompt_tokens"] == 120
    assert answer["usage"]["prompt_tokens_details"]["cached_tokens"] == 20


def test_tool_call_fragments(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.script(tool_calls(call("Bash", {"command": "echo hi"}, "call_1"), preamble="Running."))
    chunks, _, _ = stream(client)
    fragments = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    head = fragments[0]
    assert head["id"] == "call_1" and head["type"] == "function"
    assert head["function"] == {"name": "Bash", "arguments": ""}
    assert all(set(f) == {"index", "function"} for f in fragments[1:])
    joined = "".join(f["function"]["arguments"] for f in fragments)
    assert json.loads(joined) == {"command": "echo hi"} and len(fragments) > 2
    assert content_of(chunks) == "Running."
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"


def test_parallel_interleaved_tool_calls(fake: FakeOpenAI, client: httpx.Client) -> None:
    calls = (call("Bash", {"command": "ls -la"}, "call_a"), call("Read", {"file": "x"}, "call_b"))
    fake.script(tool_calls(*calls, interleave=True))
    chunks, _, _ = stream(client)
    fragments = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    indexes = [f["index"] for f in fragments]
    assert indexes[:2] == [0, 1] and indexes[2:4] == [0, 1]  # interleaved
    for k, expected in enumerate(({"command": "ls -la"}, {"file": "x"})):
        joined = "".join(f["function"]["arguments"] for f in fragments if f["index"] == k)
        assert json.loads(joined) == expected

    fake.script(tool_calls(*calls))
    message = client.post("/v1/chat/completions", json=BODY).json()["choices"][0]["message"]
    assert [c["id"] for c in message["tool_calls"]] == ["call_a", "call_b"]
    assert message["content"] is None


def test_reasoning_fields(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.script(reasoning("Hmm.", "Yes."), reasoning("Or.", "No.", field_name="reasoning"))
    chunks, _, _ = stream(client)
    assert content_of(chunks, "reasoning_content") == "Hmm."
    assert content_of(chunks) == "Yes."
    message = client.post("/v1/chat/completions", json=BODY).json()["choices"][0]["message"]
    assert message["reasoning"] == "Or." and message["content"] == "No."


def test_flavours(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.script(text("az", flavour="azure"), text("or", flavour="openrouter"))
    chunks, _, _ = stream(client, "/openai/deployments/d/chat/completions")
    assert chunks[0]["choices"] == [] and "prompt_filter_results" in chunks[0]
    assert "content_filter_results" in chunks[1]["choices"][0]
    chunks, comments, _ = stream(client, "/api/v1/chat/completions")
    assert comments and comments[0] == "OPENROUTER PROCESSING"
    assert content_of(chunks) == "or"

    fake.script(llamacpp_context_full())
    chunks, _, _ = stream(client)
    last = [c for c in chunks if c["choices"]][-1]
    assert last["choices"][0]["finish_reason"] == "length" and "timings" in last


def test_errors_have_openai_bodies(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.script(error(429), context_length_exceeded(), openrouter_error(402))
    limited = client.post("/v1/chat/completions", json=STREAM)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert set(limited.json()["error"]) == {"message", "type", "param", "code"}
    overflow = client.post("/v1/chat/completions", json=BODY)
    assert overflow.status_code == 400
    assert overflow.json()["error"]["code"] == "context_length_exceeded"
    assert "(120000 in the messages, 30000 in the completion)" in overflow.text
    credits = client.post("/api/v1/chat/completions", json=BODY)
    assert credits.status_code == 402 and credits.json()["error"]["code"] == 402


def test_mid_stream_error_chunk(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.script(stream_error())
    chunks, _, done = stream(client)
    assert done and chunks[-1]["error"]["code"] == 502
    assert chunks[-1]["choices"][0]["finish_reason"] == "error"
    assert content_of(chunks).startswith("Partial")


def test_cut_stream(fake: FakeOpenAI, client: httpx.Client) -> None:
    fake.script(cut_stream())
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", "/v1/chat/completions", json=STREAM) as response,
    ):
        for piece in response.iter_raw():
            received += piece
    assert b'"content": "This a' in received and b"[DONE]" not in received


def test_recording_and_disconnect(fake: FakeOpenAI, client: httpx.Client) -> None:
    client.post(
        "/serving-endpoints/chat/completions?api-version=x",
        json=BODY,
        headers={"Authorization": "Bearer k"},
    )
    sent = fake.last_chat_request()
    assert sent.path == "/serving-endpoints/chat/completions" and sent.query == "api-version=x"
    assert sent.header("authorization") == "Bearer k" and sent.body["model"] == "gpt-x"
    assert client.get("/v1/models").json()["data"][0]["id"] == "gpt-fake-1"

    fake.script(slow_text(event_delay=0.2))
    with client.stream("POST", "/v1/chat/completions", json=STREAM) as response:
        next(response.iter_raw())
    assert fake.wait_for_disconnects(1, timeout=5)
