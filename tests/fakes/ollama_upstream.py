"""A fake Ollama native API (`/api/chat`, NDJSON): a real HTTP server on loopback.

Usage::

    with FakeOllama() as fake:
        fake.script(tool_calls(ollama_call("Bash", {"command": "ls"})), text("done"))
        ...                                    # point lynkr's ollama provider at fake.url
        fake.last_chat_request().body["options"]["num_predict"]

A *scenario* is plain data (`Scenario`): an HTTP status, headers, and either a reply
(content, thinking, whole tool calls with **object** arguments, done_reason, counts),
exact NDJSON `steps` (`Line`, `Raw`, `Sleep`, `Cut`) or a JSON body (errors,
``{"error": "..."}``). A reply is streamed as ``application/x-ndjson`` lines (thinking
pieces, content pieces, one line with every tool call, then the ``done: true`` line)
unless the request says ``"stream": false`` (Ollama streams by default), in which case
it is one JSON object. Like real Ollama, ``done_reason`` stays ``"stop"`` even when tools
were called (B.6).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fakes._server import Cut, FakeServer, Raw, Recorded, Sleep, pieces, respond, respond_json

__all__ = [
    "Cut",
    "FakeOllama",
    "Line",
    "Raw",
    "Scenario",
    "Sleep",
    "context_error",
    "cut_stream",
    "error",
    "ollama_call",
    "slow_text",
    "stream_error",
    "text",
    "thinking",
    "tool_calls",
]

DEFAULT_TEXT = "Hello from the fake Ollama upstream."


@dataclass(frozen=True, slots=True)
class Line:
    """One NDJSON line."""

    data: Mapping[str, Any]

    def encode(self) -> bytes:
        return json.dumps(self.data).encode() + b"\n"


Step = Line | Raw | Sleep | Cut


@dataclass(slots=True)
class Scenario:
    """How the fake answers one `/api/chat` request.

    * `reply`: ``content``, ``thinking``, ``tool_calls`` (``[{"id", "function": {"index",
      "name", "arguments": {...}}}]``), ``done_reason``, ``prompt_eval_count``,
      ``eval_count``.
    * `steps`: exact NDJSON steps for a streaming request (overrides `reply`).
    * `json_body`: a whole JSON answer (errors) whatever the request asked.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    reply: dict[str, Any] | None = None
    steps: list[Step] | None = None
    json_body: Any = None
    event_delay: float = 0.0
    headers_delay: float = 0.0
    name: str = "scenario"

    def stream_steps(self, model: str) -> list[Step]:
        if self.steps is not None:
            return list(self.steps)
        assert self.reply is not None, "a reply scenario needs `reply` or `steps`"
        return line_steps(self.reply, model)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def _final(reply: Mapping[str, Any], model: str) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": _now(),
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": reply.get("done_reason", "stop"),
        "total_duration": 123456789,
        "load_duration": 1234567,
        "prompt_eval_count": reply.get("prompt_eval_count", 30),
        "prompt_eval_duration": 2345678,
        "eval_count": reply.get("eval_count", 5),
        "eval_duration": 3456789,
    }


def line_steps(reply: Mapping[str, Any], model: str) -> list[Step]:
    """The NDJSON lines Ollama streams for `reply` (B.6, case 47)."""

    def line(**message: Any) -> Line:
        return Line(
            {
                "model": model,
                "created_at": _now(),
                "message": {"role": "assistant", "content": "", **message},
                "done": False,
            }
        )

    steps: list[Step] = []
    if reply.get("thinking"):
        steps += [line(thinking=piece) for piece in pieces(reply["thinking"])]
    if reply.get("content"):
        steps += [line(content=piece) for piece in pieces(reply["content"])]
    if reply.get("tool_calls"):
        steps.append(line(tool_calls=[dict(c) for c in reply["tool_calls"]]))
    steps.append(Line(_final(reply, model)))
    return steps


def whole_body(reply: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The non-streaming answer: one object with the whole message and the counts."""
    body = _final(reply, model)
    message: dict[str, Any] = {"role": "assistant", "content": reply.get("content") or ""}
    if reply.get("thinking"):
        message["thinking"] = reply["thinking"]
    if reply.get("tool_calls"):
        message["tool_calls"] = [dict(c) for c in reply["tool_calls"]]
    body["message"] = message
    return body


def reply_scenario(
    *,
    content: str | None = None,
    thinking: str | None = None,
    calls: tuple[Mapping[str, Any], ...] = (),
    done_reason: str = "stop",
    prompt_eval_count: int = 30,
    eval_count: int = 5,
    name: str = "reply",
    **options: Any,
) -> Scenario:
    reply = {
        "content": content,
        "thinking": thinking,
        "tool_calls": [dict(c) for c in calls],
        "done_reason": done_reason,
        "prompt_eval_count": prompt_eval_count,
        "eval_count": eval_count,
    }
    return Scenario(reply=reply, name=name, **options)


def text(answer: str = DEFAULT_TEXT, **options: Any) -> Scenario:
    options.setdefault("name", "text")
    return reply_scenario(content=answer, **options)


def thinking(
    thought: str = "Let me think about it.", answer: str = DEFAULT_TEXT, **options: Any
) -> Scenario:
    options.setdefault("name", "thinking")
    return reply_scenario(content=answer, thinking=thought, **options)


def ollama_call(
    name: str, arguments: Mapping[str, Any], call_id: str, index: int = 0
) -> dict[str, Any]:
    """One whole tool call, arguments as an object (B.6)."""
    return {
        "id": call_id,
        "function": {"index": index, "name": name, "arguments": dict(arguments)},
    }


def tool_calls(*calls: Mapping[str, Any], preamble: str | None = None, **options: Any) -> Scenario:
    """Whole tool calls in one line; ``done_reason`` stays ``"stop"`` like real Ollama."""
    options.setdefault("name", "tool_calls")
    return reply_scenario(content=preamble, calls=calls, **options)


def error(status: int, message: str | None = None, **options: Any) -> Scenario:
    """An HTTP error with Ollama's body ``{"error": "<text>"}``."""
    body = {"error": message or f"fake Ollama {status}"}
    return Scenario(status=status, json_body=body, name=f"error_{status}", **options)


def context_error(message: str = "the input length exceeds the context length") -> Scenario:
    return error(400, message)


def stream_error(answer: str = "Partial answer", message: str = "model runner crashed") -> Scenario:
    """A few content lines, then ``{"error": "..."}`` after the 200 (B.6)."""
    scenario = text(answer, name="stream_error")
    steps = [s for s in scenario.stream_steps("fake") if not _is_done(s)]
    steps.append(Line({"error": message}))
    scenario.steps = steps
    return scenario


def cut_stream(answer: str = "This answer will be cut off", after_pieces: int = 2) -> Scenario:
    """Closes the connection after a few content lines, without the ``done`` line."""
    scenario = text(answer, name="cut_stream")
    scenario.steps = [*scenario.stream_steps("fake")[:after_pieces], Sleep(0.05), Cut()]
    return scenario


def slow_text(answer: str = DEFAULT_TEXT * 4, event_delay: float = 0.25) -> Scenario:
    return text(answer, event_delay=event_delay, name="slow_text")


def _is_done(step: Step) -> bool:
    return isinstance(step, Line) and step.data.get("done") is True


class FakeOllama(FakeServer):
    """The fake Ollama server; use it as a context manager."""

    kind = "fake-ollama"

    def default_scenario(self) -> Scenario:
        return text()

    def chat_requests(self) -> list[Recorded]:
        return self.requests_where("POST", lambda r: r.path == "/api/chat")

    def last_chat_request(self) -> Recorded:
        complaint = "the fake Ollama received no /api/chat request"
        return self.last_of(self.chat_requests(), complaint)

    async def handle(self, record: Recorded, receive: Any, send: Any) -> None:
        method, path = record.method, record.path
        if method == "HEAD" or (method == "GET" and path == "/"):
            body = b"" if method == "HEAD" else b"Ollama is running"
            await respond(send, 200, body, "text/plain; charset=utf-8")
        elif method == "GET" and path == "/api/tags":
            models = {"models": [{"name": "fake-llama:latest", "model": "fake-llama:latest"}]}
            await respond_json(send, 200, models)
        elif method == "POST" and path == "/api/chat":
            scenario: Scenario = self.next_scenario()
            record.scenario = scenario.name
            await self.play(self._send_scenario(scenario, record, send), receive)
        else:
            await respond(send, 404, b"404 page not found", "text/plain")

    async def _send_scenario(self, scenario: Scenario, record: Recorded, send: Any) -> None:
        body = await self.open_answer(scenario, record, send, scenario.reply)
        if body is None:
            return
        model = str(body.get("model") or "fake-llama")
        if body.get("stream", True) is False:
            assert scenario.reply is not None
            await self.send_json_answer(
                send, scenario.status, whole_body(scenario.reply, model), scenario.headers
            )
            return
        await self.send_steps(
            send,
            scenario.stream_steps(model),
            status=scenario.status,
            content_type="application/x-ndjson",
            headers=scenario.headers,
            event_delay=scenario.event_delay,
        )
