"""The fake Ollama speaks the native `/api/chat` NDJSON protocol (checked with httpx)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fakes.ollama_upstream import (
    FakeOllama,
    cut_stream,
    error,
    ollama_call,
    slow_text,
    stream_error,
    thinking,
    tool_calls,
)

BODY: dict[str, Any] = {"model": "llama-x", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


@pytest.fixture
def fake(module_fake: FakeOllama) -> FakeOllama:
    module_fake.reset()
    return module_fake


@pytest.fixture
def client(fake: FakeOllama) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=10, trust_env=False) as http:
        yield http


def lines(client: httpx.Client, **extra: Any) -> list[dict[str, Any]]:
    response = client.post("/api/chat", json={**BODY, **extra})  # streams by default
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines() if line]


def test_text_stream_ends_with_done(client: httpx.Client) -> None:
    found = lines(client)
    assert all(not line["done"] for line in found[:-1])
    assert "".join(line["message"]["content"] for line in found) == (
        "Hello from the fake Ollama upstream."
    )
    last = found[-1]
    assert last["done"] is True and last["done_reason"] == "stop"
    assert last["prompt_eval_count"] == 30 and last["eval_count"] == 5


def test_non_streaming(fake: FakeOllama, client: httpx.Client) -> None:
    fake.script(thinking("Hmm.", "Yes.", prompt_eval_count=99))
    answer = client.post("/api/chat", json={**BODY, "stream": False}).json()
    assert answer["message"] == {"role": "assistant", "content": "Yes.", "thinking": "Hmm."}
    assert answer["done"] is True and answer["prompt_eval_count"] == 99


def test_whole_tool_calls_with_object_arguments(fake: FakeOllama, client: httpx.Client) -> None:
    calls = (
        ollama_call("Bash", {"command": "ls"}, "c1"),
        ollama_call("Read", {"file_path": "/x"}, "c2", index=1),
    )
    fake.script(tool_calls(*calls))
    found = lines(client, stream=True)
    with_calls = [line for line in found if line["message"].get("tool_calls")]
    assert len(with_calls) == 1
    assert with_calls[0]["message"]["tool_calls"][0] == {
        "id": "c1",
        "function": {"index": 0, "name": "Bash", "arguments": {"command": "ls"}},
    }
    assert found[-1]["done_reason"] == "stop"  # even with tool calls, like real Ollama


def test_thinking_pieces(fake: FakeOllama, client: httpx.Client) -> None:
    fake.script(thinking("Let me see it.", "Done."))
    found = lines(client)
    assert "".join(line["message"].get("thinking", "") for line in found) == "Let me see it."


def test_errors(fake: FakeOllama, client: httpx.Client) -> None:
    fake.script(error(404, 'model "nope" not found, try pulling it first'), stream_error())
    missing = client.post("/api/chat", json=BODY)
    assert missing.status_code == 404 and missing.json() == {
        "error": 'model "nope" not found, try pulling it first'
    }
    found = lines(client)
    assert found[-1] == {"error": "model runner crashed"}
    assert not any(line.get("done") for line in found)


def test_cut_and_disconnect(fake: FakeOllama, client: httpx.Client) -> None:
    fake.script(cut_stream())
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", "/api/chat", json=BODY) as response,
    ):
        for _ in response.iter_raw():
            pass
    fake.script(slow_text(event_delay=0.2))
    with client.stream("POST", "/api/chat", json=BODY) as response:
        next(response.iter_raw())
    assert fake.wait_for_disconnects(1, timeout=5)
    assert fake.last_chat_request().body["model"] == "llama-x"
    assert client.head("/").status_code == 200
