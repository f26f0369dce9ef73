"""A fake Anthropic Messages API: a real HTTP server on loopback, scripted per request.

Usage::

    with FakeAnthropic() as fake:              # uvicorn in a background thread, free port
        fake.script(tool_use("echo hi"), text("done"))   # the next two /v1/messages answers
        ...                                    # point a client or lynkr at fake.url
        fake.last_message_request().body["model"]

A *scenario* is plain data (`Scenario`): an HTTP status, headers, and either a JSON body or
a list of steps (`Event`, `Sleep`, `Raw`, `Cut`) that the server plays in order. The helpers
below (`text`, `tool_use`, `thinking`, `error`, `cut_stream`, ...) build the common ones.
A message scenario answers a streaming request with SSE events and a non-streaming one
with the equivalent JSON message, so one scenario serves both kinds of request.

The server answers ``POST /v1/messages``, ``POST /v1/messages/count_tokens``,
``GET /v1/models`` and ``HEAD`` on any path, also below a path prefix
(``/anthropic/v1/messages`` for Azure Foundry, ``/serving-endpoints/anthropic/v1/messages``
for Databricks). It records every request (`Recorded`) and every client that went away
before the response ended (`wait_for_disconnects`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fakes._server import (
    Cut,
    FakeServer,
    Raw,
    Recorded,
    Sleep,
    pieces,
    rechunk,
    respond,
    respond_json,
)

__all__ = [
    "CONTEXT_OVERFLOW_OPENAI_MESSAGE",
    "Cut",
    "Event",
    "FakeAnthropic",
    "Raw",
    "Recorded",
    "Scenario",
    "Sleep",
    "context_overflow",
    "cut_stream",
    "echoing",
    "error",
    "message_scenario",
    "odd_chunks",
    "openai_context_message",
    "slow_text",
    "stream_error",
    "text",
    "thinking",
    "tool_use",
]

DEFAULT_TEXT = "Hello from the fake upstream."
CONTEXT_OVERFLOW_OPENAI_MESSAGE = (
    "This model's maximum context length is 128000 tokens. However, you requested 140000 "
    "tokens (136000 in the messages, 4000 in the completion). Please reduce the length of "
    "the messages or completion."
)  # == openai_context_message(128000, 136000, 4000)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True, slots=True)
class Event:
    """One SSE frame: ``event: <name>`` then ``data: <json>``."""

    name: str
    data: Mapping[str, Any]

    def encode(self) -> bytes:
        return f"event: {self.name}\ndata: {json.dumps(self.data)}\n\n".encode()


Step = Event | Sleep | Raw | Cut


@dataclass(slots=True)
class Scenario:
    """How the fake answers one request.

    * `message`: a complete Anthropic message (content blocks, stop_reason, usage). It is
      sent as JSON to non-streaming requests and as SSE events (`message_events`) to
      streaming ones, unless `steps` is given.
    * `steps`: the exact SSE steps to play for a streaming request (overrides `message`).
    * `json_body`: the body for a non-SSE answer (errors); sent whatever the request asked.
    * `event_delay`: seconds between SSE steps; `headers_delay`: seconds before the
      response starts (the request's disconnect is watched meanwhile).
    * `chunk_sizes`: send the SSE byte stream in chunks of these sizes (cycled), so frames
      and even UTF-8 sequences are split at odd places.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    message: dict[str, Any] | None = None
    steps: list[Step] | None = None
    json_body: Any = None
    event_delay: float = 0.0
    headers_delay: float = 0.0
    chunk_sizes: tuple[int, ...] | None = None
    name: str = "scenario"
    # A hostile upstream: builds the real scenario from the request it answers
    # (`echoing`: the request's headers, credentials included, put into the answer).
    echo: Callable[[Recorded], Scenario] | None = None

    def stream_steps(self, model: str) -> list[Step]:
        if self.steps is not None:
            return list(self.steps)
        assert self.message is not None, "a message scenario needs `message` or `steps`"
        return list(message_events(self.message, model))


def _usage(input_tokens: int = 25, output_tokens: int = 10) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def message_scenario(
    content: Sequence[Mapping[str, Any]],
    stop_reason: str = "end_turn",
    *,
    name: str = "message",
    usage: Mapping[str, Any] | None = None,
    **options: Any,
) -> Scenario:
    message = {
        "id": "msg_fake_" + format(time.time_ns() % 10**12, "012d"),
        "type": "message",
        "role": "assistant",
        "model": None,  # filled with the request's model
        "content": [dict(block) for block in content],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": dict(usage) if usage is not None else _usage(),
    }
    return Scenario(message=message, name=name, **options)


def message_events(message: Mapping[str, Any], model: str) -> Iterator[Event]:
    """The SSE events Anthropic streams for `message` (B.1 grammar)."""
    usage = message.get("usage") or _usage()
    start_usage = dict(usage, output_tokens=1)
    yield Event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": message["id"],
                "type": "message",
                "role": "assistant",
                "model": message.get("model") or model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": start_usage,
            },
        },
    )
    yield Event("ping", {"type": "ping"})
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        if kind == "text":
            start: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in pieces(block["text"])]
        elif kind == "tool_use":
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            raw = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [{"type": "input_json_delta", "partial_json": p} for p in pieces(raw, 9)]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": piece} for piece in pieces(block["thinking"])
            ]
            if block.get("signature"):
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
        else:  # redacted_thinking, server tool results...: the start carries the whole block
            start, deltas = dict(block), []
        yield Event(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
        for delta in deltas:
            yield Event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        yield Event("content_block_stop", {"type": "content_block_stop", "index": index})
    yield Event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": dict(usage),
        },
    )
    yield Event("message_stop", {"type": "message_stop"})


# The common scenarios.


def text(answer: str = DEFAULT_TEXT, **options: Any) -> Scenario:
    """A plain text answer, stop_reason end_turn."""
    return message_scenario([{"type": "text", "text": answer}], name="text", **options)


def tool_use(
    command: str = "echo LYNKR_TOOL_OK",
    *,
    preamble: str = "I'll run a command.",
    tool_id: str = "toolu_fake_01",
    name: str = "Bash",
    tool_input: Mapping[str, Any] | None = None,
    **options: Any,
) -> Scenario:
    """A text block, then a tool_use block (Bash by default) streamed as input_json_delta."""
    arguments = (
        dict(tool_input)
        if tool_input is not None
        else {
            "command": command,
            "description": "Run a command for the test",
        }
    )
    blocks = [
        {"type": "text", "text": preamble},
        {"type": "tool_use", "id": tool_id, "name": name, "input": arguments},
    ]
    return message_scenario(blocks, "tool_use", name="tool_use", **options)


def thinking(
    thought: str = "Let me think about it.",
    answer: str = DEFAULT_TEXT,
    signature: str = "c2lnbmF0dXJlLWZha2U=",
    **options: Any,
) -> Scenario:
    """A thinking block with a signature_delta, then a text block."""
    blocks = [
        {"type": "thinking", "thinking": thought, "signature": signature},
        {"type": "text", "text": answer},
    ]
    return message_scenario(blocks, name="thinking", **options)


def error(
    status: int,
    message: str | None = None,
    *,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Scenario:
    """An HTTP error with an Anthropic error body (and a request-id header)."""
    kind = error_type or ERROR_TYPES.get(status, "api_error")
    text_ = message or f"fake upstream {status} {kind}"
    all_headers = {"request-id": f"req_fake_{status}"}
    if status == 429:
        all_headers["retry-after"] = "7"
    all_headers.update(headers or {})
    body = {
        "type": "error",
        "error": {"type": kind, "message": text_},
        "request_id": all_headers["request-id"],
    }
    return Scenario(status=status, headers=all_headers, json_body=body, name=f"error_{status}")


def context_overflow(limit: int = 128000, prompt: int = 136000, completion: int = 4000) -> Scenario:
    """A 400 whose message is OpenAI's context-length wording (defaults: the prompt alone
    is over the limit; pick `prompt` < `limit` for "only max_tokens makes it overflow")."""
    return error(400, openai_context_message(limit, prompt, completion))


def openai_context_message(limit: int, prompt: int, completion: int) -> str:
    return (
        f"This model's maximum context length is {limit} tokens. However, you requested "
        f"{prompt + completion} tokens ({prompt} in the messages, {completion} in the "
        "completion). Please reduce the length of the messages or completion."
    )


def cut_stream(answer: str = "This answer will be cut off", after_deltas: int = 2) -> Scenario:
    """A stream that closes the connection after a few text deltas, with no message_stop."""
    full = text(answer).stream_steps("?")
    steps: list[Step] = []
    deltas = 0
    for step in full:
        steps.append(step)
        if isinstance(step, Event) and step.name == "content_block_delta":
            deltas += 1
            if deltas >= after_deltas:
                break
    steps.append(Sleep(0.05))
    steps.append(Cut())
    scenario = text(answer)
    scenario.steps, scenario.name = steps, "cut_stream"
    return scenario


def stream_error(
    answer: str = "Partial answer",
    error_type: str = "overloaded_error",
    message: str = "Overloaded",
) -> Scenario:
    """A few text deltas, then an `event: error` frame, and the stream ends."""
    steps: list[Step] = []
    for step in text(answer).stream_steps("?"):
        if isinstance(step, Event) and step.name == "content_block_stop":
            break
        steps.append(step)
    steps.append(
        Event("error", {"type": "error", "error": {"type": error_type, "message": message}})
    )
    scenario = text(answer)
    scenario.steps, scenario.name = steps, "stream_error"
    return scenario


def echoing(where: str, transform: Callable[[str], str] = lambda s: s) -> Scenario:
    """An upstream that repeats the request's headers (its credential too) back, `where`:

    * `ok_error` — a 200 whose JSON body is an error naming them;
    * `status_error` — a 500 error body;
    * `stream_error` — a few deltas, then an `event: error` frame carrying them;
    * `text` — as the answer's text (JSON or a stream, as asked).

    `transform` is applied to the echoed text first (base64, reversed…), as a
    hostile upstream told to smuggle the key past an exact-string match would.
    """

    def build(record: Recorded) -> Scenario:
        said = transform(" ".join(f"{k}: {v}" for k, v in record.headers.items()))
        if where == "ok_error":
            return Scenario(json_body={"type": "error", "error": {"type": "api_error",
                                                               "message": said}})  # fmt: skip
        if where == "status_error":
            return error(500, f"bad request with headers {said}")
        if where == "stream_error":
            return stream_error(message=f"upstream saw {said}")
        return text(f"your headers were {said}")

    return Scenario(name=f"echoing_{where}", echo=build)


def slow_text(answer: str = DEFAULT_TEXT * 4, event_delay: float = 0.25) -> Scenario:
    """A text answer with `event_delay` seconds between events (for disconnect tests)."""
    return text(answer, event_delay=event_delay)


def odd_chunks(
    answer: str = "Ünïcödé ✓ — split everywhere 🎉", sizes: tuple[int, ...] = (1, 7, 3, 50, 2, 13)
) -> Scenario:
    """A text answer whose SSE bytes are written in odd chunk sizes (splitting UTF-8 too)."""
    return text(answer, chunk_sizes=sizes)


# --------------------------------------------------------------------------- the server


class FakeAnthropic(FakeServer):
    """The fake upstream; use it as a context manager (`start` / `stop`)."""

    kind = "fake-anthropic"
    title = "fake Anthropic"

    def __init__(self, *, default: Scenario | None = None, count_tokens: bool = True) -> None:
        super().__init__(default=default)
        self.count_tokens_enabled = count_tokens
        self.count_tokens_value = 4242

    def default_scenario(self) -> Scenario:
        return text()

    def restore_defaults(self) -> None:
        super().restore_defaults()
        self.count_tokens_enabled = True
        self.count_tokens_value = 4242

    def message_requests(self) -> list[Recorded]:
        """The POST /v1/messages requests (any prefix), in arrival order."""
        return self.requests_where("POST", lambda r: r.route == "/v1/messages")

    def last_message_request(self) -> Recorded:
        complaint = "the fake upstream received no /v1/messages request"
        return self.last_of(self.message_requests(), complaint)

    async def handle(self, record: Recorded, receive: Any, send: Any) -> None:
        method, route = record.method, record.route
        if method == "HEAD":
            await respond(send, 200, b"", content_type="text/plain")
        elif method == "GET" and route.startswith("/v1/models"):
            await respond_json(send, 200, _models_body())
        elif method == "POST" and route == "/v1/messages/count_tokens":
            if not self.count_tokens_enabled:
                await respond_json(send, 404, error(404, "Not Found").json_body)
            else:
                await respond_json(send, 200, {"input_tokens": self.count_tokens_value})
        elif method == "POST" and route == "/v1/messages":
            scenario: Scenario = self.next_scenario()
            record.scenario = scenario.name
            await self.play(self._send_scenario(scenario, record, send), receive)
        else:
            await respond_json(send, 404, error(404, f"no route {method} {record.path}").json_body)

    async def _send_scenario(self, scenario: Scenario, record: Recorded, send: Any) -> None:
        if scenario.echo is not None:
            scenario = scenario.echo(record)
        body = await self.open_answer(scenario, record, send, scenario.message)
        if body is None:
            return
        model = str(body.get("model", "unknown-model"))
        if not body.get("stream"):
            assert scenario.message is not None
            message = dict(scenario.message, model=scenario.message.get("model") or model)
            headers = {"request-id": "req_fake_ok", **scenario.headers}
            await self.send_json_answer(send, scenario.status, message, headers)
            return
        steps: Sequence[Step] = scenario.stream_steps(model)
        if scenario.chunk_sizes:
            steps = rechunk(steps, scenario.chunk_sizes)
        await self.send_steps(
            send,
            steps,
            status=scenario.status,
            content_type="text/event-stream; charset=utf-8",
            headers={"cache-control": "no-cache", "request-id": "req_fake_ok", **scenario.headers},
            event_delay=scenario.event_delay,
        )


def _models_body() -> dict[str, Any]:
    models = [
        {
            "type": "model",
            "id": model_id,
            "display_name": model_id,
            "created_at": "2025-01-01T00:00:00Z",
        }
        for model_id in ("fake-model-1", "claude-fake-sonnet")
    ]
    return {
        "data": models,
        "has_more": False,
        "first_id": models[0]["id"],
        "last_id": models[-1]["id"],
    }
