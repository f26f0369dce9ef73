"""OpenAI Chat Completions stream → Anthropic SSE stream (PROTOCOL.md B.5).

`OpenAIStreamTranslator` is B.5's state machine, sans I/O: the adapter feeds
it the parsed JSON of each upstream `data:` line and sends the bytes it
returns. Every frame it returns is complete and carries its `event:` line,
whose name equals the JSON `type` (B.1 "Streaming grammar", A.9: frames
without `event:` make Claude Code fall back to non-streaming).

Blocks are emitted strictly one after another, index 0, 1, 2… (A.7 #6).
Tool calls use the rule B.5 #5 describes: the first call streams live; a
call that starts while another is still open waits, buffered, until the open
one is finished — its arguments already form a complete JSON value (a call
streamed sequentially), or the choice finished (interleaved fragments,
case 32) — and is then replayed fragment by fragment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from lynkr.protocol.openai_response import (
    anthropic_usage,
    content_part,
    error_message,
    new_id,
    stop_reason,
)
from lynkr.protocol.sse import encode_event

__all__ = ["OpenAIStreamTranslator"]

Json = dict[str, Any]

_THINKING = "thinking"
_TEXT = "text"


def frame(payload: Json) -> bytes:
    """One SSE frame whose event name is the payload's `type` (B.1: they are always equal)."""
    return encode_event(payload["type"], orjson.dumps(payload))


@dataclass(slots=True)
class _Call:
    """One upstream tool call: its Anthropic block's id and name, and its argument fragments.

    `state` is "waiting" (not yet opened), "live" (the open block) or "done".
    `pending` holds the fragments not yet sent; `arguments` all of them.
    """

    id: str
    upstream_id: str | None
    name: str = ""
    pending: list[str] = field(default_factory=list)
    arguments: str = ""
    state: str = "waiting"


class OpenAIStreamTranslator:
    """Per-response state machine (B.5): `start()`, then `feed()` each chunk, then `finish()`.

    `model` is the client's model name, echoed. `input_tokens` is an estimate
    for `message_start` and for the final usage when the upstream sends none
    (case 35). `requested_max_tokens` and `context_full_on_length`: see
    `openai_response.stop_reason`. After `completed` (message_stop sent) or
    `errored` (an `error` frame sent) every method returns `b""`.
    """

    __slots__ = (
        "_calls",
        "_context_full_on_length",
        "_finish",
        "_finished",
        "_id",
        "_index",
        "_input_tokens",
        "_latest",
        "_model",
        "_open",
        "_out",
        "_refused",
        "_requested_max_tokens",
        "_signature",
        "_started",
        "_usage",
        "completed",
        "errored",
    )

    def __init__(
        self,
        *,
        model: str,
        input_tokens: int = 0,
        message_id: str | None = None,
        context_full_on_length: bool = False,
        requested_max_tokens: int | None = None,
    ) -> None:
        self._model = model
        self._input_tokens = input_tokens
        self._id = message_id or new_id("msg_")
        self._context_full_on_length = context_full_on_length
        self._requested_max_tokens = requested_max_tokens
        self._out: list[bytes] = []
        self._started = False
        self._index = 0  # the next block's index (B.5 #2 `idx`)
        self._open: str | _Call | None = None  # B.5 #2 `open`: thinking, text or a tool call
        self._signature = ""  # a reasoning part's signature, sent when its thinking block closes
        self._calls: list[_Call] = []  # every tool call, in the order first seen
        self._latest: dict[int, _Call] = {}  # the latest call seen at each upstream index
        self._finish: Any = None
        self._finished = False  # a finish_reason arrived
        self._usage: Json | None = None
        self._refused = False
        self.completed = False
        self.errored = False

    # --- the adapter's calls ----------------------------------------------------------------

    def start(self) -> bytes:
        """`message_start` and one `ping` (B.5 #1), to send before the first upstream chunk."""
        self._begin()
        return self._take()

    def ping(self) -> bytes:
        """A `ping` frame, to send every 10–15 s while the upstream is silent (B.5 #10, case 39)."""
        if self.completed or self.errored:
            return b""
        self._begin()
        self._emit({"type": "ping"})
        return self._take()

    def feed(self, chunk: Json) -> bytes:
        """Translate one upstream chunk; return zero or more complete frames.

        A chunk with a top-level `error` (OpenRouter mid-stream), or a
        `finish_reason: "error"`, returns an `error` frame and sets `errored`
        (B.5 #9, case 36). Usage is recorded from any chunk carrying it
        (B.5 #7); chunks with `choices: []` add nothing else (B.5 #11).
        """
        if self.completed or self.errored:
            return b""
        self._begin()
        if chunk.get("error") is not None:
            return self._fail(error_message(chunk["error"]), "api_error")
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # lynkr never asks for n > 1
            if isinstance(choice.get("delta"), dict):
                self._delta(choice["delta"])
            if choice.get("finish_reason") == "error":
                return self._fail("the provider reported an error while generating the answer")
            if choice.get("finish_reason") is not None:
                self._on_finish(choice["finish_reason"])
        return self._take()

    def finish(self, *, done: bool) -> bytes:
        """End of the upstream stream (B.5 #8, #9; B.4 row "missing or null at the end").

        `done`: the upstream sent `[DONE]`. The answer ends normally when it
        did or when a finish_reason arrived: open blocks close, then
        `message_delta` with the stop reason and the full usage, and
        `message_stop`. A stream that dropped before either gets an `error`
        frame instead, never a fabricated `end_turn` (case 37).
        """
        if self.completed or self.errored:
            return b""
        self._begin()
        if not done and not self._finished:
            return self._fail("the provider closed the stream before the answer was complete")
        self._settle()
        usage = self._final_usage()
        reason = (
            "refusal"
            if self._refused
            else stop_reason(
                self._finish,
                tool_calls=bool(self._calls),
                output_tokens=usage["output_tokens"] if self._usage is not None else None,
                context_full_on_length=self._context_full_on_length,
                requested_max_tokens=self._requested_max_tokens,
            )
        )
        delta = {"stop_reason": reason, "stop_sequence": None}
        self._emit({"type": "message_delta", "delta": delta, "usage": usage})
        self._emit({"type": "message_stop"})
        self.completed = True
        return self._take()

    def fail(self, message: str, error_type: str = "api_error") -> bytes:
        """An `error` frame ending the stream (B.5 #9), for upstream failures the adapter sees."""
        if self.completed or self.errored:
            return b""
        self._begin()
        return self._fail(message, error_type)

    # --- frames -----------------------------------------------------------------------------

    def _emit(self, payload: Json) -> None:
        self._out.append(frame(payload))

    def _take(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _begin(self) -> None:
        """`message_start` with empty content and the estimated usage, then one `ping` (B.5 #1)."""
        if self._started:
            return
        self._started = True
        message: Json = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._estimated_usage(),
        }
        self._emit({"type": "message_start", "message": message})
        self._emit({"type": "ping"})

    def _fail(self, message: str, error_type: str = "api_error") -> bytes:
        """B.5 #9: close nothing further; an `error` frame ends the stream."""
        self._emit({"type": "error", "error": {"type": error_type, "message": message}})
        self.errored = True
        return self._take()

    def _estimated_usage(self) -> Json:
        return {
            "input_tokens": self._input_tokens,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }

    def _final_usage(self) -> Json:
        """B.5 #8: the upstream's usage mapped (B.4), else the estimate (case 35)."""
        return anthropic_usage(self._usage) if self._usage is not None else self._estimated_usage()

    # --- blocks -----------------------------------------------------------------------------

    def _open_block(self, block: Json) -> None:
        self._emit({"type": "content_block_start", "index": self._index, "content_block": block})
        self._index += 1

    def _delta_of_open(self, delta: Json) -> None:
        self._emit({"type": "content_block_delta", "index": self._index - 1, "delta": delta})

    def _close(self) -> None:
        """Close the open block; a thinking block first gets its signature, if one came."""
        if self._open is None:
            return
        if self._open == _THINKING and self._signature:
            self._delta_of_open({"type": "signature_delta", "signature": self._signature})
            self._signature = ""
        if isinstance(self._open, _Call):
            self._open.state = "done"
        self._emit({"type": "content_block_stop", "index": self._index - 1})
        self._open = None

    def _delta(self, delta: Json) -> None:
        """One choice delta, in B.4's block order: reasoning, content, refusal, tool calls.

        `delta.role` is ignored (B.5 #11). Spec silent: when a server sends
        both `reasoning_content` and `reasoning`, only the first is used (they
        carry the same text).
        """
        for key in ("reasoning_content", "reasoning"):
            if isinstance(delta.get(key), str) and delta[key]:
                self._thinking(delta[key])
                break
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text(content)
        elif isinstance(content, list):
            for part in content:
                self._part(part)
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            self._refused = True
            self._text(refusal)
        tool_calls = delta.get("tool_calls")
        for item in tool_calls if isinstance(tool_calls, list) else ():
            if isinstance(item, dict):
                self._tool_delta(item)

    def _thinking(self, text: str) -> None:
        """B.5 #3: open a thinking block unless one is open, then send `thinking_delta`."""
        if self._open != _THINKING:
            self._close()
            self._open_block({"type": "thinking", "thinking": "", "signature": ""})
            self._open = _THINKING
        if text:
            self._delta_of_open({"type": "thinking_delta", "thinking": text})

    def _text(self, text: str) -> None:
        """B.5 #4: open a text block unless one is open, then send `text_delta` (never for "")."""
        if self._open != _TEXT:
            self._close()
            self._open_block({"type": "text", "text": ""})
            self._open = _TEXT
        self._delta_of_open({"type": "text_delta", "text": text})

    def _part(self, part: Any) -> None:
        """A Databricks-style content part: text, or reasoning with a summary and a signature."""
        block = content_part(part)
        if block is None:
            return
        if block["type"] == "text":
            self._text(block["text"])
            return
        self._thinking(block["thinking"])
        if block["signature"]:
            self._signature = block["signature"]

    # --- tool calls -------------------------------------------------------------------------

    def _tool_delta(self, item: Json) -> None:
        """B.5 #5: record one `delta.tool_calls[]` item, then stream what can be streamed.

        Spec silent: fragments for a call whose block was already closed (a
        text delta came between) are dropped; `arguments` sent as an object
        rather than a JSON string is serialised.
        """
        call = self._call_for(item)
        function = item.get("function")
        function = function if isinstance(function, dict) else {}
        name = function.get("name")
        if isinstance(name, str) and name and not call.name:
            call.name = name
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        if isinstance(arguments, str) and arguments and call.state != "done":
            call.pending.append(arguments)
            call.arguments += arguments
        self._advance()

    def _call_for(self, item: Json) -> _Call:
        """The call an item belongs to: the key is (index, id) (B.5 #5, cases 32, 33).

        An item without an id (later fragments) belongs to the latest call at
        its index; a new id at an old index starts a new call (Ollama reuses
        index 0). A missing or empty id gets a generated `toolu_…` (B.4).
        Spec silent: an id arriving for a call that started without one is
        taken as the same call.
        """
        index = item.get("index")
        index = index if isinstance(index, int) else 0
        raw_id = item.get("id")
        upstream_id = raw_id if isinstance(raw_id, str) and raw_id else None
        latest = self._latest.get(index)
        if latest is not None and None in (upstream_id, latest.upstream_id):
            return latest
        if latest is not None and upstream_id == latest.upstream_id:
            return latest
        call = _Call(id=upstream_id or new_id("toolu_"), upstream_id=upstream_id)
        self._calls.append(call)
        self._latest[index] = call
        return call

    def _advance(self) -> None:
        """Send the live call's fragments; open the next waiting call once nothing blocks it.

        A waiting call opens when no call is live, or when the live call's
        arguments are complete JSON (it can take no more fragments), and once
        its name has arrived (B.5 #5 "buffer until it does").
        """
        while True:
            if isinstance(self._open, _Call):
                self._send_pending(self._open)
                if not _is_complete_json(self._open.arguments):
                    return
            waiting = self._first_waiting()
            if waiting is None or not waiting.name:
                return
            self._start_call(waiting)

    def _first_waiting(self) -> _Call | None:
        return next((call for call in self._calls if call.state == "waiting"), None)

    def _start_call(self, call: _Call) -> None:
        self._close()
        self._open_block({"type": "tool_use", "id": call.id, "name": call.name, "input": {}})
        call.state = "live"
        self._open = call

    def _send_pending(self, call: _Call) -> None:
        """Each fragment as one `input_json_delta`, unchanged (B.5 #5)."""
        for fragment in call.pending:
            self._delta_of_open({"type": "input_json_delta", "partial_json": fragment})
        call.pending.clear()

    def _on_finish(self, reason: Any) -> None:
        """B.5 #6: close the open block and remember the reason; usage may still come."""
        self._finish = reason
        self._finished = True
        self._settle()

    def _settle(self) -> None:
        """Close the open block, then replay every waiting call whole, one after another.

        Spec silent: a call whose name never arrived is sent with name "",
        so the client reports the bad call instead of losing it.
        """
        self._close()
        while (call := self._first_waiting()) is not None:
            self._start_call(call)
            self._send_pending(call)
            self._close()


def _is_complete_json(text: str) -> bool:
    """Whether a call's arguments so far are a whole JSON value (so the call is over)."""
    if not text.rstrip().endswith(("}", "]")):
        return False
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True
