"""The openai_compat middleware, driven by the real `openai` SDK over an in-process transport.

A tiny Anthropic-speaking app stands behind it: it records what it received
and answers with a scripted Message, as JSON or streamed as SSE (B.1's
grammar), or with a scripted Anthropic error.
"""

from __future__ import annotations

import runpy
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from lynkr.asgi import Message, Receive, Scope, Send, get_context, send_json
from lynkr.middleware.openai_compat import OpenAICompatMiddleware

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mount_openai_compat.py"

TEXT = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "upstream-model",
    "content": [{"type": "text", "text": "Hello there"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 5},
}
TOOL = {
    **TEXT,
    "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_9", "name": "Read", "input": {"file_path": "/a"}},
    ],
    "stop_reason": "tool_use",
}
MODELS = {
    "data": [
        {
            "type": "model",
            "id": "claude-a",
            "display_name": "A",
            "created_at": "2025-01-01T00:00:00Z",
        }
    ],
    "has_more": False,
    "first_id": "claude-a",
    "last_id": "claude-a",
}


class AnthropicApp:
    """Answers POST /v1/messages with `message` (SSE when the request streams) or `error`."""

    def __init__(
        self,
        message: dict[str, Any] = TEXT,
        *,
        error: tuple[int, str, str] | None = None,
        fail_mid_stream: bool = False,
    ) -> None:
        self.message = message
        self.error = error
        self.fail_mid_stream = fail_mid_stream
        self.seen: list[tuple[Scope, dict[str, Any]]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET":
            self.seen.append((scope, {}))
            single = scope["path"].startswith("/v1/models/")
            await send_json(send, 200, orjson.dumps(MODELS["data"][0] if single else MODELS))
            return
        body = orjson.loads(await _read(receive))
        self.seen.append((scope, body))
        if self.error is not None:
            status, kind, text = self.error
            payload = {"type": "error", "error": {"type": kind, "message": text}}
            headers = [(b"retry-after", b"7")] if status == 429 else []
            await send_json(send, status, orjson.dumps(payload), headers=headers)
        elif body.get("stream"):
            await self._stream(send)
        else:
            await send_json(send, 200, orjson.dumps(self.message))

    async def _stream(self, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"request-id", b"req_1")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for frame in sse_frames(self.message, fail=self.fail_mid_stream):
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _read(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def sse_frames(message: dict[str, Any], *, fail: bool = False) -> list[bytes]:
    """`message` as B.1's event sequence; text and tool JSON split in two deltas each."""
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {**message, "content": [], "stop_reason": None}},
        {"type": "ping"},
    ]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            start, key, kind, whole = (
                {"type": "text", "text": ""},
                "text",
                "text_delta",
                block["text"],
            )
        else:
            start = {**block, "input": {}}
            key, kind, whole = (
                "partial_json",
                "input_json_delta",
                orjson.dumps(block["input"]).decode(),
            )
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        for piece in (whole[:4], whole[4:]):
            delta = {"type": kind, key: piece}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        if fail:
            events.append(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            )
            break
        events.append({"type": "content_block_stop", "index": index})
    if not fail:
        usage = {"output_tokens": message["usage"]["output_tokens"]}
        delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
        events += [
            {"type": "message_delta", "delta": delta, "usage": usage},
            {"type": "message_stop"},
        ]
    return [f"event: {e['type']}\ndata: ".encode() + orjson.dumps(e) + b"\n\n" for e in events]


async def run(app: Any, call: Callable[[openai.AsyncOpenAI], Awaitable[Any]]) -> Any:
    """Run `call` with an OpenAI client whose requests go to `app` in process."""
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport) as http,
        openai.AsyncOpenAI(
            base_url="http://test/v1", api_key="k", http_client=http, max_retries=0
        ) as client,
    ):
        return await call(client)


def chat(**extra: Any) -> Callable[[openai.AsyncOpenAI], Awaitable[Any]]:
    async def call(client: openai.AsyncOpenAI) -> Any:
        request: dict[str, Any] = {
            "model": "claude-x",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
            ],
            **extra,
        }
        if not request.get("stream"):
            return await client.chat.completions.create(**request)
        stream = await client.chat.completions.create(**request)
        return [chunk async for chunk in stream]

    return call


async def test_non_streaming_text() -> None:
    inner = AnthropicApp()
    completion = await run(OpenAICompatMiddleware(inner), chat())
    assert completion.object == "chat.completion"
    assert completion.id == "chatcmpl-1"
    assert completion.model == "claude-x"
    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("Hello there", "stop")
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (15, 3, 18)
    assert usage.prompt_tokens_details.cached_tokens == 5


async def test_inner_app_gets_an_anthropic_request_in_context_and_on_receive() -> None:
    inner = AnthropicApp()
    await run(OpenAICompatMiddleware(inner, default_max_tokens=321), chat())
    scope, body = inner.seen[0]
    assert scope["path"] == "/v1/messages"
    assert scope["raw_path"] == b"/v1/messages"
    assert body == {
        "model": "claude-x",
        "max_tokens": 321,
        "messages": [{"role": "user", "content": "hi"}],
        "system": "Be brief.",
    }
    context = get_context(scope)
    assert (context.body, context.body_changed) == (body, False)  # raw_body is this body
    assert context.raw_body == orjson.dumps(body)
    headers = dict(scope["headers"])
    assert headers[b"content-length"] == str(len(context.raw_body)).encode()
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"anthropic-version"] == b"2023-06-01"
    assert headers[b"authorization"] == b"Bearer k"  # credentials pass through as sent


async def test_streaming_text_with_usage() -> None:
    inner = AnthropicApp()
    chunks = await run(
        OpenAICompatMiddleware(inner), chat(stream=True, stream_options={"include_usage": True})
    )
    assert inner.seen[0][1]["stream"] is True
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (15, 3)
    assert {c.id for c in chunks} == {"chatcmpl-1"}


async def test_streaming_without_usage_has_no_usage_chunk() -> None:
    chunks = await run(OpenAICompatMiddleware(AnthropicApp()), chat(stream=True))
    assert all(c.choices and c.usage is None for c in chunks)


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "Read",
            "description": "read a file",
            "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}},
        },
    }
]
HISTORY = [
    {"role": "user", "content": "read /a and /b"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "Read", "arguments": '{"file_path":"/a"}'},
            },
            {
                "id": "c2",
                "type": "function",
                "function": {"name": "Read", "arguments": '{"file_path":"/b"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "A"},
    {"role": "tool", "tool_call_id": "c2", "content": "B"},
]


async def test_tool_calls_both_ways() -> None:
    inner = AnthropicApp(TOOL)
    completion = await run(
        OpenAICompatMiddleware(inner),
        chat(messages=HISTORY, tools=TOOLS, parallel_tool_calls=False),
    )
    body = inner.seen[0][1]
    assert body["tools"] == [
        {
            "name": "Read",
            "description": "read a file",
            "input_schema": TOOLS[0]["function"]["parameters"],
        }
    ]
    assert body["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert body["messages"][1]["content"][1] == {
        "type": "tool_use",
        "id": "c2",
        "name": "Read",
        "input": {"file_path": "/b"},
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "A"},
            {"type": "tool_result", "tool_use_id": "c2", "content": "B"},
        ],
    }
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me look."
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name) == ("toolu_9", "Read")
    assert orjson.loads(call.function.arguments) == {"file_path": "/a"}


async def test_streamed_tool_call_fragments_join() -> None:
    chunks = await run(OpenAICompatMiddleware(AnthropicApp(TOOL)), chat(stream=True, tools=TOOLS))
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    assert (calls[0].index, calls[0].id, calls[0].function.name) == (0, "toolu_9", "Read")
    assert "".join(call.function.arguments for call in calls) == '{"file_path":"/a"}'
    assert {call.index for call in calls} == {0}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("status", "kind", "error_class", "openai_type"),
    [
        (429, "rate_limit_error", openai.RateLimitError, "rate_limit_exceeded"),
        (401, "authentication_error", openai.AuthenticationError, "authentication_error"),
        (529, "overloaded_error", openai.APIStatusError, "server_error"),
    ],
)
async def test_inner_errors_become_openai_errors(
    status: int, kind: str, error_class: type[openai.APIStatusError], openai_type: str
) -> None:
    app = OpenAICompatMiddleware(AnthropicApp(error=(status, kind, "nope")))
    for stream in (False, True):
        with pytest.raises(error_class) as caught:
            await run(app, chat(stream=stream))
        assert caught.value.status_code == status
        assert caught.value.body == {
            "message": "nope",
            "type": openai_type,
            "param": None,
            "code": openai_type,
        }
    if status == 429:
        assert caught.value.response.headers["retry-after"] == "7"


async def test_mid_stream_error_raises_in_the_client() -> None:
    app = OpenAICompatMiddleware(AnthropicApp(fail_mid_stream=True))
    with pytest.raises(openai.APIError, match="Overloaded") as caught:
        await run(app, chat(stream=True))
    assert caught.value.body == {
        "message": "Overloaded",
        "type": "server_error",
        "param": None,
        "code": "server_error",
    }


async def test_untranslatable_request_is_an_openai_400() -> None:
    inner = AnthropicApp()
    with pytest.raises(openai.BadRequestError, match="only 1 choice") as caught:
        await run(OpenAICompatMiddleware(inner), chat(n=2))
    assert caught.value.body["type"] == "invalid_request_error"
    assert inner.seen == []


async def test_models_list_and_single_model() -> None:
    inner = AnthropicApp()

    async def call(client: openai.AsyncOpenAI) -> Any:
        return [model async for model in client.models.list()], await client.models.retrieve("x")

    listing, single = await run(OpenAICompatMiddleware(inner), call)
    assert [(m.id, m.object, m.created, m.owned_by) for m in listing] == [
        ("claude-a", "model", 1735689600, "lynkr")
    ]
    scope = inner.seen[0][0]
    assert (scope["path"], scope["query_string"]) == ("/v1/models", b"limit=1000")
    assert dict(scope["headers"])[b"anthropic-version"] == b"2023-06-01"
    assert inner.seen[1][0]["path"] == "/v1/models/x"
    assert (single.id, single.object, single.owned_by) == ("claude-a", "model", "lynkr")


async def drive(
    app: Any, method: str, path: str, body: bytes = b"", headers: Any = ()
) -> list[Message]:
    """Call `app` once with a raw ASGI scope; return every message it sent."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": list(headers)}
    await app(scope, receive, send)
    return sent


async def test_anthropic_clients_and_other_paths_pass_untouched() -> None:
    inner = AnthropicApp()
    app = OpenAICompatMiddleware(inner)
    sent = await drive(app, "GET", "/v1/models", headers=[(b"anthropic-version", b"2023-06-01")])
    assert orjson.loads(sent[1]["body"]) == MODELS
    raw = orjson.dumps({"model": "m", "max_tokens": 1, "messages": []})
    sent = await drive(app, "POST", "/v1/messages", raw)
    assert orjson.loads(sent[1]["body"]) == TEXT
    assert inner.seen[-1][0]["path"] == "/v1/messages"


async def test_stream_is_translated_chunk_by_chunk() -> None:
    """Each inner SSE chunk is translated and sent before the next one is produced."""
    log: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await _read(receive)
        headers = [(b"content-type", b"text/event-stream"), (b"content-length", b"999")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for frame in sse_frames(TEXT):
            log.append("inner")
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def outer(scope: Scope, receive: Receive, send: Send) -> None:
        async def logging_send(message: Message) -> None:
            log.append("out")
            await send(message)

        await OpenAICompatMiddleware(inner)(scope, receive, logging_send)

    body = orjson.dumps(
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}
    )
    sent = await drive(outer, "POST", "/proxy/v1/chat/completions", body)
    assert b"content-length" not in dict(sent[0]["headers"])
    assert log[:4] == ["out", "inner", "out", "inner"]  # start; message_start → role chunk
    stream = b"".join(m.get("body", b"") for m in sent[1:])
    assert stream.endswith(b"data: [DONE]\n\n")
    assert stream.count(b"data: ") == 5  # role, 2 text pieces, finish, [DONE]


async def test_prefix_is_kept_for_the_inner_path() -> None:
    inner = AnthropicApp()
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]})
    await drive(OpenAICompatMiddleware(inner), "POST", "/proxy/azure/v1/chat/completions", body)
    assert inner.seen[0][0]["path"] == "/proxy/azure/v1/messages"


async def test_lifespan_passes_through() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        raise AssertionError(message)

    await OpenAICompatMiddleware(inner)({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"chat_path": "v1/chat"}, "chat_path must be a path starting with '/'"),
        ({"models_path": "models"}, "models_path must be a path"),
        ({"default_max_tokens": 0}, "default_max_tokens must be a positive integer, got 0"),
        ({"max_body_bytes": 0}, "max_body_bytes must be a positive integer"),
    ],
)
def test_constructor_refuses_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OpenAICompatMiddleware(AnthropicApp(), **options)


async def test_the_shipped_example_answers_the_openai_sdk() -> None:
    app = runpy.run_path(str(EXAMPLE))["app"]

    async def call(client: openai.AsyncOpenAI) -> Any:
        reply = await client.chat.completions.create(
            model="claude-echo", messages=[{"role": "user", "content": "hello"}]
        )
        return reply, [model.id async for model in client.models.list()]

    reply, ids = await run(app, call)
    assert reply.choices[0].message.content == "You said: hello"
    assert ids == ["claude-echo"]


async def test_oversized_body_is_an_openai_413() -> None:
    inner = AnthropicApp()
    with pytest.raises(openai.APIStatusError) as caught:
        await run(OpenAICompatMiddleware(inner, max_body_bytes=20), chat())
    assert caught.value.status_code == 413
    assert "larger than the limit of 20 bytes" in caught.value.body["message"]
    assert inner.seen == []


async def test_models_translation_can_be_turned_off() -> None:
    sent = await drive(
        OpenAICompatMiddleware(AnthropicApp(), models_path=None), "GET", "/v1/models"
    )
    assert orjson.loads(sent[1]["body"]) == MODELS


def test_a_malformed_request_is_an_openai_400_not_a_500() -> None:
    from starlette.testclient import TestClient

    from lynkr.middleware.openai_compat import OpenAICompatMiddleware

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("never reached")

    client = TestClient(OpenAICompatMiddleware(inner))
    bad = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": 5}]}]}  # fmt: skip
    response = client.post("/v1/chat/completions", json=bad)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_a_request_nested_too_deeply_is_a_400_not_a_500() -> None:
    """A tool's parameters nested 300 levels: parsed fine, but no layer could write it again."""
    deep = '{"type":"object","properties":{"x":' * 150 + "{}" + "}}" * 150
    raw = (
        b'{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function",'
        b'"function":{"name":"f","parameters":' + deep.encode() + b"}}]}"
    )
    inner = AnthropicApp()
    sent = await drive(OpenAICompatMiddleware(inner), "POST", "/v1/chat/completions", raw)
    assert sent[0]["status"] == 400
    assert b"nested too deeply" in sent[1]["body"]
    assert inner.seen == []
