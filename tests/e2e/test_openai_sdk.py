"""End to end with the real `openai` SDK in front: OpenAI client → `lynkr serve` with the
`openai_compat` middleware → lynkr's Anthropic agent → an upstream.

Each test runs twice: with the fake **Anthropic** upstream (one translation, OpenAI ⇄
Anthropic) and with the fake **OpenAI** upstream (OpenAI → Anthropic inside lynkr → OpenAI
again). The routes mount `openai_compat` on ``/v1/chat/completions`` and ``/v1/models``;
``/v1/messages`` stays the plain Anthropic route.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from fakes import anthropic_upstream as an
from fakes import openai_upstream as oa

pytestmark = pytest.mark.e2e

CLIENT_KEY = "client-key"
CLIENT_MODEL = "gpt-4o-via-lynkr"
TIMEOUT = 15.0
BASH_FUNCTION: Any = {
    "type": "function",
    "function": {
        "name": "Bash",
        "description": "Run a shell command",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    },
}
ROUTES = [
    {
        "path": "/v1/messages",
        "middleware": [{"use": "validation"}, {"use": "routing"}],
        "app": "agent",
    },
    {
        "path": "/v1/chat/completions",
        "middleware": [{"use": "openai_compat"}, {"use": "validation"}, {"use": "routing"}],
        "app": "agent",
    },
    {"path": "/v1/models", "middleware": [{"use": "openai_compat"}], "app": "agent"},
]
UPSTREAMS = ["anthropic", "openai"]


class Upstream:
    """The fake behind lynkr for one test, with scenario builders of its dialect."""

    def __init__(self, kind: str, fake: Any) -> None:
        self.kind = kind
        self.fake = fake

    def text(self, answer: str) -> Any:
        return an.text(answer) if self.kind == "anthropic" else oa.text(answer)

    def tool_call(self, command: str, call_id: str) -> Any:
        if self.kind == "anthropic":
            return an.tool_use(command, tool_id=call_id, tool_input={"command": command})
        return oa.tool_calls(
            oa.call("Bash", {"command": command}, call_id), preamble="I'll run it."
        )

    def error(self, status: int, message: str) -> Any:
        module: Any = an if self.kind == "anthropic" else oa
        return module.error(status, message)

    def stream_error(self) -> Any:
        return an.stream_error() if self.kind == "anthropic" else oa.stream_error()

    def requests(self) -> list[Any]:
        if self.kind == "anthropic":
            return self.fake.message_requests()
        return self.fake.chat_requests()

    def tool_results(self, record: Any) -> list[tuple[str, str]]:
        """(call id, text) of each tool result in an upstream request."""
        found = []
        for message in record.body["messages"]:
            if self.kind == "openai" and message["role"] == "tool":
                content = message["content"]
                if isinstance(content, list):
                    content = "".join(p.get("text", "") for p in content)
                found.append((message["tool_call_id"], content))
            elif self.kind == "anthropic" and isinstance(message.get("content"), list):
                for block in message["content"]:
                    if block.get("type") == "tool_result":
                        found.append((block["tool_use_id"], json.dumps(block.get("content"))))
        return found


@pytest.fixture(params=UPSTREAMS)
def upstream(request: pytest.FixtureRequest, fake: Any, openai_fake: Any) -> Upstream:
    return Upstream(request.param, fake if request.param == "anthropic" else openai_fake)


@pytest.fixture
def client(
    upstream: Upstream, lynkr_server: Callable[..., Any], openai_upstream: Any
) -> Iterator[openai.OpenAI]:
    if upstream.kind == "anthropic":
        server = lynkr_server("openai-compat-anthropic", extra={"routes": ROUTES})
    else:
        provider = {
            "type": "openai",
            "base_url": f"{openai_upstream.url}/v1",
            "api_key": "sk-up-openai",
            "model": "gpt-fake-1",
        }
        server = lynkr_server(
            "openai-compat-openai",
            providers={"oa": provider},
            pools={"main": {"providers": ["oa"]}},
            extra={"routes": ROUTES},
        )
    with openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=CLIENT_KEY, max_retries=0, timeout=TIMEOUT
    ) as sdk:
        yield sdk


def test_non_streaming_text(upstream: Upstream, client: openai.OpenAI) -> None:
    upstream.fake.script(upstream.text("Hello, OpenAI client."))
    completion = client.chat.completions.create(
        model=CLIENT_MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        max_tokens=200,
    )
    assert completion.object == "chat.completion"
    assert completion.model == CLIENT_MODEL
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello, OpenAI client."
    assert choice.finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    sent = upstream.requests()
    assert len(sent) == 1
    assert "Be brief." in json.dumps(sent[0].body)
    assert all(CLIENT_KEY not in value for value in sent[0].headers.values())


def test_streaming_text(upstream: Upstream, client: openai.OpenAI) -> None:
    upstream.fake.script(upstream.text("Streamed to an OpenAI client."))
    stream = client.chat.completions.create(
        model=CLIENT_MODEL,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Streamed to an OpenAI client."
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert upstream.requests()[0].body.get("stream") is True


def test_tool_calls_round_trip(upstream: Upstream, client: openai.OpenAI) -> None:
    upstream.fake.script(
        upstream.tool_call("echo LYNKR_TOOL_OK", "call_sdk_1"), upstream.text("It printed OK.")
    )
    messages: list[Any] = [{"role": "user", "content": "run echo"}]
    completion = client.chat.completions.create(
        model=CLIENT_MODEL, messages=messages, tools=[BASH_FUNCTION]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1
    tool_call: Any = calls[0]
    assert tool_call.id == "call_sdk_1" and tool_call.type == "function"
    assert tool_call.function.name == "Bash"
    assert json.loads(tool_call.function.arguments) == {"command": "echo LYNKR_TOOL_OK"}

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": "call_sdk_1", "content": "LYNKR_TOOL_OK"})
    answer = client.chat.completions.create(
        model=CLIENT_MODEL, messages=messages, tools=[BASH_FUNCTION]
    )
    assert answer.choices[0].message.content == "It printed OK."
    results = upstream.tool_results(upstream.requests()[-1])
    assert len(results) == 1 and results[0][0] == "call_sdk_1"
    assert "LYNKR_TOOL_OK" in results[0][1]


def test_streaming_tool_calls(upstream: Upstream, client: openai.OpenAI) -> None:
    upstream.fake.script(upstream.tool_call("ls -la", "call_sdk_2"))
    stream = client.chat.completions.create(
        model=CLIENT_MODEL,
        messages=[{"role": "user", "content": "list"}],
        tools=[BASH_FUNCTION],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        for piece in delta.tool_calls or []:
            entry = calls.setdefault(piece.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += piece.id or ""
            if piece.function is not None:
                entry["name"] += piece.function.name or ""
                entry["arguments"] += piece.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert list(calls) == [0]
    assert calls[0]["id"] == "call_sdk_2" and calls[0]["name"] == "Bash"
    assert json.loads(calls[0]["arguments"]) == {"command": "ls -la"}


@pytest.mark.parametrize(
    ("status", "exception", "client_status"),
    [
        (400, openai.BadRequestError, 400),
        (429, openai.RateLimitError, 429),
        (503, openai.APIStatusError, 529),
    ],
)
def test_errors_are_openai_shaped(
    upstream: Upstream,
    client: openai.OpenAI,
    status: int,
    exception: type[openai.APIStatusError],
    client_status: int,
) -> None:
    upstream.fake.default = upstream.error(status, f"upstream says {status}")
    with pytest.raises(exception) as caught:
        client.chat.completions.create(
            model=CLIENT_MODEL, messages=[{"role": "user", "content": "hi"}]
        )
    error = caught.value
    assert error.status_code == client_status
    document = error.response.json()
    assert set(document) == {"error"}, document
    assert {"message", "type"} <= set(document["error"]), document
    assert isinstance(document["error"]["message"], str) and document["error"]["message"]
    if status == 400:
        assert "upstream says 400" in document["error"]["message"]
    if status == 429:
        assert error.response.headers.get("retry-after") == "7"


def test_mid_stream_error_raises(upstream: Upstream, client: openai.OpenAI) -> None:
    upstream.fake.default = upstream.stream_error()
    with pytest.raises(openai.APIError):  # the SDK raises on a chunk with an `error` key
        for _ in client.chat.completions.create(
            model=CLIENT_MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            pass


def test_models_list(upstream: Upstream, client: openai.OpenAI) -> None:
    page = client.models.list()
    assert page.data, "GET /v1/models listed nothing"
    for model in page.data:
        assert model.object == "model" and model.id
    assert upstream.requests() == []
