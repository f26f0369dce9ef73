"""The fake upstream itself speaks Anthropic's wire format (checked with plain httpx)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fakes.anthropic_upstream import (
    CONTEXT_OVERFLOW_OPENAI_MESSAGE,
    FakeAnthropic,
    context_overflow,
    cut_stream,
    error,
    odd_chunks,
    slow_text,
    stream_error,
    text,
    thinking,
    tool_use,
)

BODY = {"model": "m-1", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as fake:
        yield fake


@pytest.fixture
def fake(module_fake: FakeAnthropic) -> FakeAnthropic:
    module_fake.reset()
    return module_fake


@pytest.fixture
def client(fake: FakeAnthropic) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=10) as http:
        yield http


def parse_sse(raw: str) -> list[tuple[str, dict[str, Any]]]:
    frames = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line]
        if not lines:
            continue
        name = next(line[7:] for line in lines if line.startswith("event: "))
        data = json.loads("".join(line[6:] for line in lines if line.startswith("data: ")))
        assert data["type"] == name
        frames.append((name, data))
    return frames


def stream(client: httpx.Client, path: str = "/v1/messages") -> list[tuple[str, dict[str, Any]]]:
    response = client.post(path, json={**BODY, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return parse_sse(response.text)


def test_default_text_stream_follows_the_grammar(client: httpx.Client) -> None:
    frames = stream(client)
    names = [name for name, _ in frames]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert names[-2] == "message_delta" and "ping" in names
    assert frames[0][1]["message"]["model"] == "m-1"
    text_ = "".join(d["delta"]["text"] for n, d in frames if n == "content_block_delta")
    assert text_ == "Hello from the fake upstream."
    assert frames[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert frames[-2][1]["usage"]["output_tokens"] > 0


def test_non_streaming_answer_is_a_message(fake: FakeAnthropic, client: httpx.Client) -> None:
    fake.script(text("plain json"))
    response = client.post("/v1/messages", json=BODY)
    message = response.json()
    assert response.status_code == 200
    assert message["type"] == "message" and message["model"] == "m-1"
    assert message["content"] == [{"type": "text", "text": "plain json"}]


def test_tool_use_streams_input_json_deltas(fake: FakeAnthropic, client: httpx.Client) -> None:
    fake.script(tool_use("echo hi"))
    frames = stream(client)
    starts = [d["content_block"] for n, d in frames if n == "content_block_start"]
    assert [b["type"] for b in starts] == ["text", "tool_use"]
    partial = "".join(
        d["delta"]["partial_json"]
        for n, d in frames
        if n == "content_block_delta" and d["delta"]["type"] == "input_json_delta"
    )
    assert json.loads(partial)["command"] == "echo hi"
    assert frames[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_thinking_has_a_signature_delta(fake: FakeAnthropic, client: httpx.Client) -> None:
    fake.script(thinking())
    deltas = [d["delta"]["type"] for n, d in stream(client) if n == "content_block_delta"]
    assert "thinking_delta" in deltas and "signature_delta" in deltas


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 429, 500, 503, 529])
def test_errors_have_an_anthropic_body(
    fake: FakeAnthropic, client: httpx.Client, status: int
) -> None:
    fake.script(error(status))
    response = client.post("/v1/messages", json={**BODY, "stream": True})
    assert response.status_code == status
    assert response.json()["type"] == "error"
    assert response.headers["request-id"]
    if status == 429:
        assert response.headers["retry-after"] == "7"


def test_context_overflow_uses_openai_wording(fake: FakeAnthropic, client: httpx.Client) -> None:
    fake.script(context_overflow())
    response = client.post("/v1/messages", json=BODY)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == CONTEXT_OVERFLOW_OPENAI_MESSAGE


def test_cut_stream_closes_without_message_stop(fake: FakeAnthropic, client: httpx.Client) -> None:
    fake.script(cut_stream())
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", "/v1/messages", json={**BODY, "stream": True}) as response,
    ):
        for chunk in response.iter_raw():
            received += chunk
    assert b"text_delta" in received and b"message_stop" not in received


def test_error_event_mid_stream(fake: FakeAnthropic, client: httpx.Client) -> None:
    fake.script(stream_error())
    names = [name for name, _ in stream(client)]
    assert names[0] == "message_start" and names[-1] == "error"
    assert "message_stop" not in names


def test_odd_chunks_reassemble(fake: FakeAnthropic, client: httpx.Client) -> None:
    fake.script(odd_chunks())
    chunks: list[bytes] = []
    with client.stream("POST", "/v1/messages", json={**BODY, "stream": True}) as response:
        chunks.extend(response.iter_raw())
    assert len(chunks) > 10
    frames = parse_sse(b"".join(chunks).decode())
    text_ = "".join(d["delta"]["text"] for n, d in frames if n == "content_block_delta")
    assert text_ == "Ünïcödé ✓ — split everywhere 🎉"


def test_disconnect_is_observed(fake: FakeAnthropic) -> None:
    fake.script(slow_text(event_delay=0.2))
    with (
        httpx.Client(base_url=fake.url, timeout=10) as http,
        http.stream("POST", "/v1/messages", json={**BODY, "stream": True}) as response,
    ):
        next(response.iter_raw())
    assert fake.wait_for_disconnects(1, timeout=5)
    assert fake.completed == 0


def test_prefixes_count_tokens_head_and_recording(
    fake: FakeAnthropic, client: httpx.Client
) -> None:
    for prefix in ("/anthropic", "/serving-endpoints/anthropic"):
        response = client.post(
            f"{prefix}/v1/messages?beta=true",
            json=BODY,
            headers={"x-api-key": "k", "anthropic-beta": "a,b"},
        )
        assert response.status_code == 200
    assert [r.path for r in fake.message_requests()] == [
        "/anthropic/v1/messages",
        "/serving-endpoints/anthropic/v1/messages",
    ]
    last = fake.last_message_request()
    assert last.query == "beta=true" and last.header("X-Api-Key") == "k"
    assert last.body["model"] == "m-1" and last.header("anthropic-beta") == "a,b"

    assert client.post("/v1/messages/count_tokens", json=BODY).json() == {"input_tokens": 4242}
    fake.count_tokens_enabled = False
    assert client.post("/v1/messages/count_tokens", json=BODY).status_code == 404
    head = client.head("/")
    assert head.status_code == 200 and head.content == b""
    assert client.get("/v1/models").json()["data"][0]["id"] == "fake-model-1"
