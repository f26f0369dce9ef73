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

import asyncio
import collections
import contextlib
import copy
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn

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


@dataclass(frozen=True, slots=True)
class Sleep:
    """Pause the response for `seconds` (the client's disconnect is still noticed)."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes sent as they are (malformed frames, comments...)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Cut:
    """Close the connection now, without ending the chunked body."""


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
            deltas = [{"type": "text_delta", "text": piece} for piece in _pieces(block["text"])]
        elif kind == "tool_use":
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            raw = json.dumps(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": ""}]
            deltas += [{"type": "input_json_delta", "partial_json": p} for p in _pieces(raw, 9)]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            deltas = [
                {"type": "thinking_delta", "thinking": piece}
                for piece in _pieces(block["thinking"])
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


def _pieces(text: str, size: int = 6) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


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


def slow_text(answer: str = DEFAULT_TEXT * 4, event_delay: float = 0.25) -> Scenario:
    """A text answer with `event_delay` seconds between events (for disconnect tests)."""
    return text(answer, event_delay=event_delay)


def odd_chunks(
    answer: str = "Ünïcödé ✓ — split everywhere 🎉", sizes: tuple[int, ...] = (1, 7, 3, 50, 2, 13)
) -> Scenario:
    """A text answer whose SSE bytes are written in odd chunk sizes (splitting UTF-8 too)."""
    return text(answer, chunk_sizes=sizes)


# --------------------------------------------------------------------------- recording


@dataclass(slots=True)
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    raw_headers: list[tuple[str, str]]
    raw_body: bytes
    body: Any  # parsed JSON, or None
    scenario: str | None = None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def route(self) -> str:
        """The path without its provider prefix: /v1/messages, /v1/messages/count_tokens..."""
        index = self.path.find("/v1/")
        return self.path[index:] if index >= 0 else self.path


# --------------------------------------------------------------------------- the server


class FakeAnthropic:
    """The fake upstream; use it as a context manager (`start` / `stop`)."""

    def __init__(self, *, default: Scenario | None = None, count_tokens: bool = True) -> None:
        self.default = default or text()
        self.count_tokens_enabled = count_tokens
        self.count_tokens_value = 4242
        self.requests: list[Recorded] = []
        self.url = ""
        self.port = 0
        self._queue: collections.deque[Scenario] = collections.deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._disconnects = 0
        self._completed = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ test API

    def script(self, *scenarios: Scenario) -> None:
        """Queue answers for the next /v1/messages requests (then `default` again)."""
        with self._lock:
            self._queue.extend(scenarios)

    def reset(self) -> None:
        """Forget queued scenarios, recorded requests and counters; restore defaults."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self._disconnects = 0
            self._completed = 0
            self.default = text()
            self.count_tokens_enabled = True
            self.count_tokens_value = 4242

    @property
    def pending(self) -> int:
        """Scenarios still queued."""
        with self._lock:
            return len(self._queue)

    @property
    def disconnects(self) -> int:
        """Responses the client abandoned before their end."""
        with self._lock:
            return self._disconnects

    @property
    def completed(self) -> int:
        """/v1/messages responses sent to their end (error responses included)."""
        with self._lock:
            return self._completed

    def wait_for_disconnects(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Block until at least `count` disconnects were seen; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._disconnects >= count, timeout)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: len(self.requests) >= count, timeout)

    def message_requests(self) -> list[Recorded]:
        """The POST /v1/messages requests (any prefix), in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.route == "/v1/messages"]

    def last_message_request(self) -> Recorded:
        found = self.message_requests()
        assert found, f"the fake upstream received no /v1/messages request: {self.requests!r}"
        return found[-1]

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> FakeAnthropic:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self,
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="critical",
            access_log=False,
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)

        def run() -> None:
            assert self._server is not None
            try:
                self._server.run(sockets=[sock])
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name=f"fake-anthropic-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Anthropic upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is None or self._thread is None:
            return
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if self._stopping is None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
        raw_body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw_body += message.get("body", b"")
            if not message.get("more_body"):
                break
        record = self._record(scope, bytes(raw_body))
        method, route = record.method, record.route

        if method == "HEAD":
            await _respond(send, 200, b"", content_type="text/plain")
        elif method == "GET" and route.startswith("/v1/models"):
            await _respond_json(send, 200, _models_body())
        elif method == "POST" and route == "/v1/messages/count_tokens":
            if not self.count_tokens_enabled:
                await _respond_json(send, 404, error(404, "Not Found").json_body)
            else:
                await _respond_json(send, 200, {"input_tokens": self.count_tokens_value})
        elif method == "POST" and route == "/v1/messages":
            scenario = self._next_scenario()
            record.scenario = scenario.name
            await self._play(scenario, record, receive, send)
        else:
            await _respond_json(send, 404, error(404, f"no route {method} {record.path}").json_body)

    def _record(self, scope: Mapping[str, Any], raw_body: bytes) -> Recorded:
        raw_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        headers: dict[str, str] = {}
        for name, value in raw_headers:
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            body = None
        record = Recorded(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            raw_headers=raw_headers,
            raw_body=raw_body,
            body=body,
        )
        with self._changed:
            self.requests.append(record)
            self._changed.notify_all()
        return record

    def _next_scenario(self) -> Scenario:
        with self._lock:
            chosen = self._queue.popleft() if self._queue else self.default
        return copy.deepcopy(chosen)

    def _count(self, *, disconnect: bool) -> None:
        with self._changed:
            if disconnect:
                self._disconnects += 1
            else:
                self._completed += 1
            self._changed.notify_all()

    async def _play(self, scenario: Scenario, record: Recorded, receive: Any, send: Any) -> None:
        """Send `scenario`, racing it against the client's disconnect."""
        gone = asyncio.Event()

        async def watch() -> None:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()

        watcher = asyncio.create_task(watch())
        player = asyncio.create_task(self._send_scenario(scenario, record, send))
        assert self._stopping is not None
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            waiter = asyncio.create_task(gone.wait())
            done, _ = await asyncio.wait(
                {player, waiter, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            if player in done:
                player.result()  # re-raises a Cut, which makes uvicorn close the connection
            elif waiter in done:
                self._count(disconnect=True)
        finally:
            for task in (watcher, player, stopping):
                task.cancel()
            await asyncio.gather(watcher, player, stopping, return_exceptions=True)

    async def _send_scenario(self, scenario: Scenario, record: Recorded, send: Any) -> None:
        if scenario.headers_delay:
            await asyncio.sleep(scenario.headers_delay)
        body = record.body if isinstance(record.body, dict) else {}
        model = str(body.get("model", "unknown-model"))
        if scenario.json_body is not None or (scenario.message is None and scenario.steps is None):
            payload = json.dumps(scenario.json_body).encode()
            self._count(disconnect=False)
            await _respond(send, scenario.status, payload, "application/json", scenario.headers)
            return
        if not body.get("stream"):
            assert scenario.message is not None
            message = dict(scenario.message, model=scenario.message.get("model") or model)
            self._count(disconnect=False)
            await _respond(
                send,
                scenario.status,
                json.dumps(message).encode(),
                "application/json",
                {"request-id": "req_fake_ok", **scenario.headers},
            )
            return
        headers = {"cache-control": "no-cache", "request-id": "req_fake_ok", **scenario.headers}
        await send(
            {
                "type": "http.response.start",
                "status": scenario.status,
                "headers": _header_list("text/event-stream; charset=utf-8", headers),
            }
        )
        steps = scenario.stream_steps(model)
        if scenario.chunk_sizes:
            steps = _rechunk(steps, scenario.chunk_sizes)
        for position, step in enumerate(steps):
            if position and scenario.event_delay:
                await asyncio.sleep(scenario.event_delay)
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, Cut):
                raise _CutConnection  # uvicorn closes the transport mid-body
            else:
                data = step.encode() if isinstance(step, Event) else step.data
                await send({"type": "http.response.body", "body": data, "more_body": True})
        # Counted before the last send, so a client that saw the end sees the count too.
        self._count(disconnect=False)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _CutConnection(Exception):
    """Raised by the app to make uvicorn drop the connection in the middle of a body."""


def _rechunk(steps: Sequence[Step], sizes: tuple[int, ...]) -> list[Step]:
    """The same bytes as `steps`, regrouped into chunks of `sizes` (cycled) with tiny pauses."""
    data = b"".join(
        s.encode() if isinstance(s, Event) else s.data for s in steps if isinstance(s, Event | Raw)
    )
    out: list[Step] = []
    position, turn = 0, 0
    while position < len(data):
        size = sizes[turn % len(sizes)]
        out.append(Raw(data[position : position + size]))
        out.append(Sleep(0.002))
        position += size
        turn += 1
    return out


def _header_list(content_type: str, headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    result = [(b"content-type", content_type.encode())]
    result += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return result


async def _respond(
    send: Any,
    status: int,
    body: bytes,
    content_type: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    all_headers = _header_list(content_type, headers or {})
    all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _respond_json(send: Any, status: int, body: Any) -> None:
    await _respond(send, status, json.dumps(body).encode(), "application/json")


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
