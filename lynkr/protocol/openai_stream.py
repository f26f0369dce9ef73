"""OpenAI Chat Completions stream → Anthropic SSE stream (docs/protocol.md B.5).

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

This runs once per upstream token, so the frames sent for every token — the
deltas and the block stops — are written from byte templates (the same bytes
`frame()` makes of the same payload, checked in tests/protocol), and the usual
chunk (one choice whose delta carries only `content`) takes a short path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from lynkr.protocol.openai_response import (
    anthropic_usage,
    content_part,
    error_message,
    new_id,
    stop_reason,
)
from lynkr.protocol.sse import delta_frame_prefix, encode_event

__all__ = ["OpenAIStreamTranslator"]

Json = dict[str, Any]

_THINKING: Final = "thinking"
_TEXT: Final = "text"
_TOOL: Final = "tool"

# The frames sent per token, as byte templates: `delta_head(index, kind) + JSON + DELTA_END`
# and `stop_frame(index)` are `frame()` of the same payloads, byte for byte.
_DELTA_KIND = {_TEXT: "text_delta", _THINKING: "thinking_delta", _TOOL: "input_json_delta"}
DELTA_END = b"}}\n\n"
_STOP_HEAD = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
_STOP_END = b"}\n\n"
# Delta keys that change nothing but `content` can carry (B.5 #11: `role` is ignored).
_ONLY_CONTENT = frozenset({"content", "role"})
_dumps = orjson.dumps


def message_start(message_id: str, model: str, usage: Json) -> Json:
    """The `message_start` event of a translated stream: empty content, no stop yet."""
    message: Json = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return {"type": "message_start", "message": message}


def frame(payload: Json) -> bytes:
    """One SSE frame whose event name is the payload's `type` (B.1: they are always equal)."""
    return encode_event(payload["type"], orjson.dumps(payload))


def delta_head(index: int, kind: str) -> bytes:
    """The `content_block_delta` frame of block `index` up to its value (`kind`: text,
    thinking or tool); the value's JSON and `DELTA_END` complete it."""
    return delta_frame_prefix(index, _DELTA_KIND[kind])


def stop_frame(index: int) -> bytes:
    """The `content_block_stop` frame of block `index`."""
    return _STOP_HEAD + str(index).encode() + _STOP_END


@dataclass(slots=True, eq=False)
class _Call:
    """One upstream tool call: its Anthropic block's id and name, and its argument fragments.

    `state` is "waiting" (not yet opened), "live" (the open block) or "done".
    `pending` holds the fragments not yet sent; `arguments` all of them, and
    `last` the last character of their concatenation that is not whitespace.
    """

    id: str
    upstream_id: str | None
    name: str = ""
    pending: list[str] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    last: str = ""
    state: str = "waiting"

    def complete(self) -> bool:
        """Whether the arguments so far are a whole JSON value (so the call is over)."""
        if self.last not in ("}", "]"):
            return False
        try:
            orjson.loads("".join(self.arguments))
        except orjson.JSONDecodeError:
            return False
        return True


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
        "_delta_head",
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
        "_waiting",
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
        self._delta_head = b""  # the open block's delta frames up to the JSON string
        self._signature = ""  # a reasoning part's signature, sent when its thinking block closes
        self._calls: list[_Call] = []  # every tool call, in the order first seen
        self._waiting: list[_Call] = []  # the calls not opened yet, in the order first seen
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
        self._feed(chunk)
        return self._take()

    def feed_all(self, chunks: Iterable[Json]) -> bytes:
        """`feed()` each chunk in turn, stopping after an error; return all their frames."""
        for chunk in chunks:
            if self.completed or self.errored:
                break
            self._feed(chunk)
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
            self._fail("the provider closed the stream before the answer was complete")
            return self._take()
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
        self._fail(message, error_type)
        return self._take()

    # --- one chunk --------------------------------------------------------------------------

    def _feed(self, chunk: Json) -> None:
        if not self._started:
            self._begin()
        if chunk.get("error") is not None:
            self._fail(error_message(chunk["error"]), "api_error")
            return
        usage = chunk.get("usage")
        if usage is not None and isinstance(usage, dict):
            self._usage = usage
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return
        for choice in choices:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue  # lynkr never asks for n > 1
            delta = choice.get("delta")
            if isinstance(delta, dict):
                content = delta.get("content")
                if (
                    self._open is _TEXT
                    and content
                    and type(content) is str
                    and (len(delta) == 1 or delta.keys() <= _ONLY_CONTENT)
                ):
                    # The usual chunk: one more text_delta in the open text block (B.5 #4).
                    self._out.append(self._delta_head + _dumps(content) + DELTA_END)
                else:
                    self._delta(delta)
            reason = choice.get("finish_reason")
            if reason is not None:
                if reason == "error":
                    self._fail("the provider reported an error while generating the answer")
                    return
                self._on_finish(reason)

    # --- frames -----------------------------------------------------------------------------

    def _emit(self, payload: Json) -> None:
        self._out.append(frame(payload))

    def _take(self) -> bytes:
        out, self._out = self._out, []
        return b"".join(out)

    def _begin(self) -> None:
        """`message_start` with empty content and the estimated usage, then one `ping` (B.5 #1)."""
        if self._started:
            return
        self._started = True
        self._emit(message_start(self._id, self._model, self._estimated_usage()))
        self._emit({"type": "ping"})

    def _fail(self, message: str, error_type: str = "api_error") -> None:
        """B.5 #9: close nothing further; an `error` frame ends the stream."""
        self._emit({"type": "error", "error": {"type": error_type, "message": message}})
        self.errored = True

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

    def _open_block(self, block: Json, kind: str) -> None:
        """Send `content_block_start` for `block`; its deltas will be of `kind`."""
        self._emit({"type": "content_block_start", "index": self._index, "content_block": block})
        self._delta_head = delta_head(self._index, kind)
        self._index += 1

    def _send_delta(self, value: str) -> None:
        """The open block's next delta: its text, thinking or partial JSON is `value`."""
        self._out.append(self._delta_head + _dumps(value) + DELTA_END)

    def _close(self) -> None:
        """Close the open block; a thinking block first gets its signature, if one came."""
        if self._open is None:
            return
        if self._open is _THINKING and self._signature:
            delta = {"type": "signature_delta", "signature": self._signature}
            self._emit({"type": "content_block_delta", "index": self._index - 1, "delta": delta})
            self._signature = ""
        if isinstance(self._open, _Call):
            self._open.state = "done"
        self._out.append(stop_frame(self._index - 1))
        self._open = None

    def _delta(self, delta: Json) -> None:
        """One choice delta, in B.4's block order: reasoning, content, refusal, tool calls.

        `delta.role` is ignored (B.5 #11). Spec silent: when a server sends
        both `reasoning_content` and `reasoning`, only the first is used (they
        carry the same text).
        """
        if len(delta) == 1 and "tool_calls" in delta:
            tool_calls = delta["tool_calls"]  # a tool call's next fragment: nothing else to do
        else:
            self._texts(delta)
            tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for item in tool_calls:
                if isinstance(item, dict):
                    self._tool_delta(item)

    def _texts(self, delta: Json) -> None:
        """The delta's reasoning, content and refusal, in that order."""
        reasoning = delta.get("reasoning_content")
        if not (isinstance(reasoning, str) and reasoning):
            reasoning = delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self._thinking(reasoning)
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

    def _thinking(self, text: str) -> None:
        """B.5 #3: open a thinking block unless one is open, then send `thinking_delta`."""
        if self._open is not _THINKING:
            self._close()
            self._open_block({"type": "thinking", "thinking": "", "signature": ""}, _THINKING)
            self._open = _THINKING
        if text:
            self._send_delta(text)

    def _text(self, text: str) -> None:
        """B.5 #4: open a text block unless one is open, then send `text_delta` (never for "")."""
        if self._open is not _TEXT:
            self._close()
            self._open_block({"type": "text", "text": ""}, _TEXT)
            self._open = _TEXT
        self._send_delta(text)

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
        arguments = None
        if isinstance(function, dict):
            name = function.get("name")
            if name and not call.name and isinstance(name, str):
                call.name = name
            arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        if isinstance(arguments, str) and arguments and call.state != "done":
            call.arguments.append(arguments)
            if stripped := arguments.rstrip():
                call.last = stripped[-1]
            if call is self._open and not self._waiting:
                self._send_delta(arguments)  # the live call, nothing queued: stream it on
                return
            call.pending.append(arguments)
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
        if not isinstance(index, int):
            index = 0
        raw_id = item.get("id")
        upstream_id = raw_id if isinstance(raw_id, str) and raw_id else None
        latest = self._latest.get(index)
        if latest is not None and (
            upstream_id is None or latest.upstream_id is None or upstream_id == latest.upstream_id
        ):
            return latest
        call = _Call(id=upstream_id or new_id("toolu_"), upstream_id=upstream_id)
        self._calls.append(call)
        self._waiting.append(call)
        self._latest[index] = call
        return call

    def _advance(self) -> None:
        """Send the live call's fragments; open the next waiting call once nothing blocks it.

        A waiting call opens when no call is live, or when the live call's
        arguments are complete JSON (it can take no more fragments), and once
        its name has arrived (B.5 #5 "buffer until it does").
        """
        while True:
            live = self._open if isinstance(self._open, _Call) else None
            if live is not None:
                self._send_pending(live)
            if not self._waiting or not self._waiting[0].name:
                return
            if live is not None and not live.complete():
                return
            self._start_call(self._waiting[0])

    def _start_call(self, call: _Call) -> None:
        self._close()
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        self._open_block(block, _TOOL)
        self._waiting.remove(call)
        call.state = "live"
        self._open = call

    def _send_pending(self, call: _Call) -> None:
        """Each fragment as one `input_json_delta`, unchanged (B.5 #5)."""
        for fragment in call.pending:
            self._send_delta(fragment)
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
        while self._waiting:
            call = self._waiting[0]
            self._start_call(call)
            self._send_pending(call)
            self._close()
