"""A fake OpenAI Chat Completions upstream: a real HTTP server on loopback, scripted per request.

Usage::

    with FakeOpenAI() as fake:                 # uvicorn in a background thread, free port
        fake.script(tool_calls(call("Bash", {"command": "ls"})), text("done"))
        ...                                    # point lynkr at f"{fake.url}/v1"
        fake.last_chat_request().body["messages"]

A *scenario* is plain data (`Scenario`): an HTTP status, headers, and either a completion
(`reply`: content, reasoning, tool calls, finish_reason, usage), exact SSE `steps`
(`Chunk`, `Comment`, `Done`, `Raw`, `Sleep`, `Cut`) or a JSON body (errors). A reply
scenario answers a streaming request with ``data: {chunk}`` lines ending with
``data: [DONE]`` (B.2) and a non-streaming one with the equivalent ``chat.completion``
object, so one scenario serves both. `flavour` adds a provider's quirks: ``azure``
(a first chunk with empty ``choices`` and ``prompt_filter_results``,
``content_filter_results`` per choice), ``openrouter`` (``: OPENROUTER PROCESSING``
comment lines), ``llamacpp`` (a ``timings`` object).

The server answers ``POST`` on any path ending with ``/chat/completions`` (so the Azure,
Databricks and OpenRouter URL shapes all work), ``GET …/models`` and ``HEAD`` anywhere.
It records every request (path, query, headers, parsed body) and every client that went
away before its response ended (`wait_for_disconnects`).

The server machinery (`FakeServer`, also exported as `LoopbackFake`) lives in
`fakes._server`, shared with the Anthropic and Ollama fakes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fakes._server import Cut, FakeServer, Raw, Recorded, Sleep, respond, respond_json
from fakes._server import pieces as _pieces

__all__ = [
    "Chunk",
    "Comment",
    "Cut",
    "Done",
    "FakeOpenAI",
    "LoopbackFake",
    "Raw",
    "Recorded",
    "Scenario",
    "Sleep",
    "call",
    "context_length_exceeded",
    "cut_stream",
    "error",
    "llamacpp_context_full",
    "openrouter_error",
    "reasoning",
    "reply_scenario",
    "stream_error",
    "text",
    "tool_calls",
]

DEFAULT_TEXT = "Hello from the fake OpenAI upstream."

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "conflict_error",
    422: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "server_error",
    503: "server_error",
}
ERROR_CODES = {
    401: "invalid_api_key",
    404: "model_not_found",
    429: "rate_limit_exceeded",
}


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True, slots=True)
class Chunk:
    """One SSE line ``data: <json>`` (no ``event:`` line, as OpenAI sends)."""

    data: Mapping[str, Any]

    def encode(self) -> bytes:
        return f"data: {json.dumps(self.data)}\n\n".encode()


@dataclass(frozen=True, slots=True)
class Comment:
    """An SSE comment line (``: OPENROUTER PROCESSING``)."""

    text: str = "OPENROUTER PROCESSING"

    def encode(self) -> bytes:
        return f": {self.text}\n\n".encode()


@dataclass(frozen=True, slots=True)
class Done:
    """The closing ``data: [DONE]`` line."""

    def encode(self) -> bytes:
        return b"data: [DONE]\n\n"


Step = Chunk | Comment | Done | Raw | Sleep | Cut


# --------------------------------------------------------------------------- scenarios


@dataclass(slots=True)
class Scenario:
    """How the fake answers one request.

    * `reply`: what the model says — ``content`` (str or None), ``reasoning`` (str),
      ``reasoning_field`` (``reasoning_content`` or ``reasoning``), ``tool_calls``
      (``[{"id", "name", "arguments": <JSON string>}]``), ``finish_reason`` and ``usage``
      (``prompt_tokens``, ``completion_tokens``, ``cached_tokens``, ``reasoning_tokens``).
      Sent as a ``chat.completion`` object to non-streaming requests and as chunks to
      streaming ones, unless `steps` is given.
    * `steps`: the exact SSE steps for a streaming request (overrides `reply`); a ``Chunk``
      with ``"usage": "auto"`` gets the reply usage.
    * `json_body`: the body for a non-SSE answer (errors), sent whatever the request asked.
    * `flavour`: ``openai``, ``azure``, ``openrouter`` or ``llamacpp`` quirks.
    * `interleave`: stream the argument pieces of parallel tool calls alternately.
    * `event_delay`: seconds between SSE steps; `headers_delay`: before the response.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    reply: dict[str, Any] | None = None
    steps: list[Step] | None = None
    json_body: Any = None
    flavour: str = "openai"
    interleave: bool = False
    event_delay: float = 0.0
    headers_delay: float = 0.0
    name: str = "scenario"

    def stream_steps(self, model: str, include_usage: bool) -> list[Step]:
        if self.steps is not None:
            return list(self.steps)
        assert self.reply is not None, "a reply scenario needs `reply` or `steps`"
        return chunk_steps(self, model, include_usage)


def _usage(reply: Mapping[str, Any]) -> dict[str, Any]:
    given = reply.get("usage") or {}
    prompt = int(given.get("prompt_tokens", 30))
    completion = int(given.get("completion_tokens", 10))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": int(given.get("cached_tokens", 0))},
        "completion_tokens_details": {"reasoning_tokens": int(given.get("reasoning_tokens", 0))},
    }


def _completion_id() -> str:
    return "chatcmpl-fake" + format(time.time_ns() % 10**12, "012d")


_TIMINGS = {
    "cache_n": 0,
    "prompt_n": 30,
    "prompt_ms": 12.5,
    "predicted_n": 10,
    "predicted_ms": 40.0,
}


def completion_body(scenario: Scenario, model: str) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object for a reply scenario."""
    reply = scenario.reply or {}
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.get("content"),
        "refusal": None,
    }
    if reply.get("reasoning"):
        message[reply.get("reasoning_field", "reasoning_content")] = reply["reasoning"]
    calls = reply.get("tool_calls") or []
    if calls:
        message["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in calls
        ]
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": reply.get("finish_reason", "stop"),
    }
    body: dict[str, Any] = {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": _usage(reply),
        "system_fingerprint": "fp_fake",
    }
    if scenario.flavour == "azure":
        body["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": {}}]
        choice["content_filter_results"] = _FILTER_OK
    elif scenario.flavour == "llamacpp":
        body["timings"] = dict(_TIMINGS)
    return body


_FILTER_OK = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}


def chunk_steps(scenario: Scenario, model: str, include_usage: bool) -> list[Step]:
    """The SSE steps a real server streams for a reply scenario (B.2 plus quirks)."""
    reply = scenario.reply or {}
    ident, created = _completion_id(), int(time.time())
    flavour = scenario.flavour

    def chunk(delta: Mapping[str, Any], finish: str | None = None) -> Chunk:
        choice: dict[str, Any] = {
            "index": 0,
            "delta": dict(delta),
            "logprobs": None,
            "finish_reason": finish,
        }
        if flavour == "azure":
            choice["content_filter_results"] = _FILTER_OK if "content" in delta else {}
        data: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [choice],
        }
        if include_usage:
            data["usage"] = None
        if finish is not None and flavour == "llamacpp":
            data["timings"] = dict(_TIMINGS)
        return Chunk(data)

    steps: list[Step] = []
    if flavour == "openrouter":
        steps += [Comment(), Comment()]
    if flavour == "azure":
        steps.append(
            Chunk(
                {
                    "id": "",
                    "object": "",
                    "created": 0,
                    "model": "",
                    "choices": [],
                    "prompt_filter_results": [
                        {"prompt_index": 0, "content_filter_results": _FILTER_OK}
                    ],
                }
            )
        )
    steps.append(chunk({"role": "assistant", "content": ""}))
    if reply.get("reasoning"):
        field_name = reply.get("reasoning_field", "reasoning_content")
        for piece in _pieces(reply["reasoning"]):
            steps.append(chunk({field_name: piece, "content": None}))
        if flavour == "openrouter":
            steps.append(Comment())
    if reply.get("content"):
        for piece in _pieces(reply["content"]):
            steps.append(chunk({"content": piece}))
    calls = reply.get("tool_calls") or []
    heads = [
        {
            "index": k,
            "id": c["id"],
            "type": "function",
            "function": {"name": c["name"], "arguments": ""},
        }
        for k, c in enumerate(calls)
    ]
    pieces = [
        [{"index": k, "function": {"arguments": p}} for p in _pieces(c["arguments"], 7)]
        for k, c in enumerate(calls)
    ]
    if scenario.interleave and len(calls) > 1:
        # Every call opens first, then the argument pieces alternate between indexes.
        steps += [chunk({"tool_calls": [head]}) for head in heads]
        longest = max(len(p) for p in pieces)
        for position in range(longest):
            for per_call in pieces:
                if position < len(per_call):
                    steps.append(chunk({"tool_calls": [per_call[position]]}))
    else:
        for head, per_call in zip(heads, pieces, strict=True):
            steps.append(chunk({"tool_calls": [head]}))
            steps += [chunk({"tool_calls": [piece]}) for piece in per_call]
    steps.append(chunk({}, reply.get("finish_reason", "stop")))
    if include_usage:
        steps.append(
            Chunk(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [],
                    "usage": _usage(reply),
                }
            )
        )
    steps.append(Done())
    return steps


def reply_scenario(
    *,
    content: str | None = None,
    reasoning: str | None = None,
    reasoning_field: str = "reasoning_content",
    calls: Sequence[Mapping[str, Any]] = (),
    finish_reason: str | None = None,
    usage: Mapping[str, Any] | None = None,
    name: str = "reply",
    **options: Any,
) -> Scenario:
    reply: dict[str, Any] = {
        "content": content,
        "reasoning": reasoning,
        "reasoning_field": reasoning_field,
        "tool_calls": [dict(c) for c in calls],
        "finish_reason": finish_reason or ("tool_calls" if calls else "stop"),
        "usage": dict(usage or {}),
    }
    return Scenario(reply=reply, name=name, **options)


# The common scenarios.


def text(answer: str = DEFAULT_TEXT, **options: Any) -> Scenario:
    """A plain text answer, finish_reason stop."""
    options.setdefault("name", "text")
    return reply_scenario(content=answer, **options)


def call(name: str, arguments: Mapping[str, Any] | str, call_id: str) -> dict[str, Any]:
    """One tool call of a `tool_calls` scenario (arguments as a dict or a raw JSON string)."""
    raw = arguments if isinstance(arguments, str) else json.dumps(dict(arguments))
    return {"id": call_id, "name": name, "arguments": raw}


def tool_calls(
    *calls: Mapping[str, Any],
    preamble: str | None = None,
    finish_reason: str = "tool_calls",
    **options: Any,
) -> Scenario:
    """Tool calls (streamed as fragments: head with id/name and ``""``, then pieces)."""
    options.setdefault("name", "tool_calls")
    return reply_scenario(content=preamble, calls=calls, finish_reason=finish_reason, **options)


def reasoning(
    thought: str = "Let me think about it.",
    answer: str = DEFAULT_TEXT,
    field_name: str = "reasoning_content",
    **options: Any,
) -> Scenario:
    """Reasoning (``reasoning_content``, or OpenRouter's ``reasoning``), then text."""
    options.setdefault("name", "reasoning")
    return reply_scenario(content=answer, reasoning=thought, reasoning_field=field_name, **options)


def error(
    status: int,
    message: str | None = None,
    *,
    error_type: str | None = None,
    code: str | int | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Scenario:
    """An HTTP error with an OpenAI body ``{"error": {message, type, param, code}}``."""
    kind = error_type or ERROR_TYPES.get(status, "server_error")
    all_headers = {"x-request-id": f"req_fake_{status}"}
    if status == 429:
        all_headers["retry-after"] = "7"
    all_headers.update(headers or {})
    body = {
        "error": {
            "message": message or f"fake OpenAI upstream {status} {kind}",
            "type": kind,
            "param": param,
            "code": code if code is not None else ERROR_CODES.get(status),
            **dict(extra or {}),
        }
    }
    return Scenario(status=status, headers=all_headers, json_body=body, name=f"error_{status}")


def context_length_exceeded(
    limit: int = 128000, prompt: int = 120000, completion: int = 30000
) -> Scenario:
    """OpenAI's 400 ``context_length_exceeded`` with its usual wording (case 41)."""
    message = (
        f"This model's maximum context length is {limit} tokens. However, you requested "
        f"{prompt + completion} tokens ({prompt} in the messages, {completion} in the "
        "completion). Please reduce the length of the messages or completion."
    )
    return error(400, message, code="context_length_exceeded", param="messages")


def openrouter_error(status: int, message: str | None = None) -> Scenario:
    """OpenRouter's error body: ``{"error": {"code": <int>, "message", "metadata"}}``."""
    body = {
        "error": {
            "code": status,
            "message": message or f"fake OpenRouter {status}",
            "metadata": {"provider_name": "FakeProvider"},
        }
    }
    return Scenario(status=status, json_body=body, name=f"openrouter_error_{status}")


def stream_error(
    answer: str = "Partial answer",
    message: str = "Provider returned error",
    code: int = 502,
    **options: Any,
) -> Scenario:
    """A few text chunks, then OpenRouter's mid-stream error chunk (top-level ``error``,
    ``finish_reason: "error"``), then ``[DONE]``; non-streaming requests get the text."""
    options.setdefault("name", "stream_error")
    scenario = text(answer, **options)
    steps: list[Step] = []
    for step in scenario.stream_steps("fake", include_usage=False):
        if (
            isinstance(step, Chunk)
            and step.data["choices"]
            and step.data["choices"][0].get("finish_reason")
        ):
            break
        steps.append(step)
    steps.append(
        Chunk(
            {
                "id": "gen-fake-error",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": "fake",
                "provider": "FakeProvider",
                "error": {"code": code, "message": message},
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": ""},
                        "finish_reason": "error",
                        "native_finish_reason": "error",
                    }
                ],
            }
        )
    )
    steps.append(Done())
    scenario.steps = steps
    return scenario


def cut_stream(answer: str = "This answer will be cut off", after_pieces: int = 2) -> Scenario:
    """A stream that closes the connection after a few text chunks: no finish, no [DONE]."""
    scenario = text(answer, name="cut_stream")
    steps: list[Step] = []
    pieces = 0
    for step in scenario.stream_steps("fake", include_usage=False):
        steps.append(step)
        if isinstance(step, Chunk) and step.data["choices"][0]["delta"].get("content"):
            pieces += 1
            if pieces >= after_pieces:
                break
    steps += [Sleep(0.05), Cut()]
    scenario.steps = steps
    return scenario


def llamacpp_context_full(answer: str = "The context filled up and") -> Scenario:
    """llama.cpp cutting an answer short because the context is full: ``finish_reason:
    "length"`` with ``timings`` (B.7)."""
    return text(answer, finish_reason="length", flavour="llamacpp", name="llamacpp_length")


def slow_text(answer: str = DEFAULT_TEXT * 4, event_delay: float = 0.25) -> Scenario:
    """A text answer with `event_delay` seconds between chunks (for disconnect tests)."""
    return text(answer, event_delay=event_delay, name="slow_text")


# --------------------------------------------------------------------------- the server


LoopbackFake = FakeServer  # the name the Ollama fake and older code use


class FakeOpenAI(LoopbackFake):
    """The fake OpenAI-compatible upstream; use it as a context manager."""

    kind = "fake-openai"

    def default_scenario(self) -> Scenario:
        return text()

    def chat_requests(self) -> list[Recorded]:
        """The POST …/chat/completions requests (any prefix), in arrival order."""
        return self.requests_where("POST", lambda r: r.path.endswith("/chat/completions"))

    def last_chat_request(self) -> Recorded:
        complaint = "the fake OpenAI upstream received no chat request"
        return self.last_of(self.chat_requests(), complaint)

    async def handle(self, record: Recorded, receive: Any, send: Any) -> None:
        method, path = record.method, record.path
        if method == "HEAD":
            await respond(send, 200, b"", "text/plain")
        elif method == "GET" and path.rstrip("/").endswith("/models"):
            models = [
                {"id": m, "object": "model", "created": 1735689600, "owned_by": "fake"}
                for m in ("gpt-fake-1", "gpt-fake-mini")
            ]
            await respond_json(send, 200, {"object": "list", "data": models})
        elif method == "POST" and path.endswith("/chat/completions"):
            scenario: Scenario = self.next_scenario()
            record.scenario = scenario.name
            await self.play(self._send_scenario(scenario, record, send), receive)
        else:
            body = error(404, f"no route {method} {path}", code="not_found").json_body
            await respond_json(send, 404, body)

    async def _send_scenario(self, scenario: Scenario, record: Recorded, send: Any) -> None:
        body = await self.open_answer(scenario, record, send, scenario.reply)
        if body is None:
            return
        model = str(body.get("model") or "fake-deployment")
        if not body.get("stream"):
            headers = {"x-request-id": "req_fake_ok", **scenario.headers}
            await self.send_json_answer(
                send, scenario.status, completion_body(scenario, model), headers
            )
            return
        options = body.get("stream_options") or {}
        include_usage = bool(options.get("include_usage"))
        steps = scenario.stream_steps(model, include_usage)
        await self.send_steps(
            send,
            steps,
            status=scenario.status,
            content_type="text/event-stream; charset=utf-8",
            headers={
                "cache-control": "no-cache",
                "x-request-id": "req_fake_ok",
                **scenario.headers,
            },
            event_delay=scenario.event_delay,
        )
