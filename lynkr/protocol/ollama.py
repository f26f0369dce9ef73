"""Anthropic Messages ⇄ Ollama's native `/api/chat` (docs/protocol.md B.6, cases 46–47).

The request side follows B.3's message rules with B.6's differences: tool
arguments are JSON objects, images are raw base64 strings in `images`, tool
results are `{role: "tool", content, tool_name, tool_call_id}`, and the
output limit and context size live in `options` (`num_predict`, `num_ctx`).
The answer side maps one whole response, or a stream of NDJSON objects, to
Anthropic's Message and SSE grammar (B.1), with B.4's stop-reason rules.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import orjson

from lynkr.errors import UpstreamError
from lynkr.protocol.anthropic import UpstreamRewrite, prepare_request
from lynkr.protocol.openai_stream import DELTA_END, delta_head, frame, message_start, stop_frame

__all__ = [
    "OllamaOptions",
    "OllamaStreamTranslator",
    "ollama_to_anthropic_message",
    "to_ollama_request",
]

# B.3's billing-header, empty-text and role:"system" rules, applied on the Anthropic side.
_B3_CLEANUP = UpstreamRewrite(
    model=None, betas=(), mid_conversation_system="convert", drop_context_management="drop"
)
_IMAGE_OMITTED = "[image omitted: this model does not accept images]"
_URL_IMAGE = "[image omitted: Ollama needs inline base64 images, got a URL]"
_PDF_OMITTED = "[PDF document omitted: not supported by upstream]"
_THINKING: Final = "thinking"
_TEXT: Final = "text"
_SAMPLING = (("temperature", "temperature"), ("top_p", "top_p"), ("top_k", "top_k"))


@dataclass(frozen=True, slots=True)
class OllamaOptions:
    """How requests are written for one Ollama model.

    `max_output_tokens` caps `options.num_predict` (B.3: clamp to a per-model
    cap). `num_ctx` raises Ollama's small default context (B.6). `think`:
    None follows the request's `thinking` (enabled or adaptive → true,
    disabled → false, absent → not sent); a bool or level is sent as is.
    `supports_images` False replaces images with a text placeholder.
    """

    model: str
    max_output_tokens: int | None = None
    num_ctx: int | None = None
    think: bool | str | None = None
    supports_images: bool = True
    keep_alive: str | None = None


# Request ----------------------------------------------------------------------------------


def to_ollama_request(body: dict[str, Any], options: OllamaOptions) -> dict[str, Any]:
    """An Anthropic Messages request as an `/api/chat` body, `stream` set explicitly (case 46)."""
    work = orjson.loads(orjson.dumps({k: body[k] for k in ("system", "messages") if k in body}))
    prepare_request(work, _B3_CLEANUP)
    out: dict[str, Any] = {
        "model": options.model,
        "messages": _messages(work, options),
        "stream": body.get("stream") is True,
    }
    tools = _tools(body)
    if tools:
        out["tools"] = tools
    schema = ((body.get("output_config") or {}).get("format") or {}).get("schema")
    if schema is not None:
        out["format"] = schema
    think = _think(body.get("thinking"), options.think)
    if think is not None:
        out["think"] = think
    if options.keep_alive is not None:
        out["keep_alive"] = options.keep_alive
    out["options"] = _sampling_options(body, options)
    return out


def _sampling_options(body: dict[str, Any], options: OllamaOptions) -> dict[str, Any]:
    """`options`: num_predict (clamped max_tokens), num_ctx, sampling and stops (B.3, B.6)."""
    result: dict[str, Any] = {}
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and options.max_output_tokens is not None:
        max_tokens = min(max_tokens, options.max_output_tokens)
    if max_tokens is not None:
        result["num_predict"] = max_tokens
    if options.num_ctx is not None:
        result["num_ctx"] = options.num_ctx
    for source, target in _SAMPLING:
        if body.get(source) is not None:
            result[target] = body[source]
    if body.get("stop_sequences"):
        result["stop"] = list(body["stop_sequences"])
    return result


def _think(thinking: Any, configured: bool | str | None) -> bool | str | None:
    if configured is not None:
        return configured
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind in ("enabled", "adaptive"):
        return True
    return False if kind == "disabled" else None


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Client tools in OpenAI's function format; server tools dropped (B.3).

    Ollama has no `tool_choice`; `{type: "none"}` can only be honoured by
    sending no tools, so that is what it does.
    """
    if (body.get("tool_choice") or {}).get("type") == "none":
        return []
    return [
        {
            "type": "function",
            "function": {
                "name": tool.get("name"),
                "description": tool.get("description") or "",
                "parameters": {
                    k: v for k, v in (tool.get("input_schema") or {}).items() if k != "$schema"
                },
            },
        }
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and tool.get("type") in (None, "custom")
    ]


def _messages(work: dict[str, Any], options: OllamaOptions) -> list[dict[str, Any]]:
    """The system prompt first, then each turn; consecutive user or assistant turns merge (B.3)."""
    out: list[dict[str, Any]] = []
    system = _system_text(work.get("system"))
    if system:
        out.append({"role": "system", "content": system})
    tool_names: dict[str, str] = {}
    calls: list[str] = []  # ids of the previous assistant turn's tool calls, in order
    for message in work.get("messages") or []:
        if message.get("role") == "assistant":
            _append(out, _assistant(_blocks(message.get("content")), tool_names))
            calls = [call["id"] for call in out[-1].get("tool_calls", [])]
            continue
        for turn in _user(_blocks(message.get("content")), calls, tool_names, options):
            _append(out, turn)
        calls = []
    return out


def _system_text(system: Any) -> str:
    """A string, or text blocks joined with a blank line (B.3's system rows)."""
    if isinstance(system, str):
        return system
    return "\n\n".join(_texts(system if isinstance(system, list) else []))


def _texts(blocks: list[Any]) -> list[str]:
    return [b["text"] for b in blocks if isinstance(b, dict) and b.get("type") == "text"]


def _blocks(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content if isinstance(content, list) else []


def _append(out: list[dict[str, Any]], turn: dict[str, Any]) -> None:
    """Merge into the previous message when the role repeats (tool messages never merge)."""
    last = out[-1] if out else None
    if last is None or last["role"] != turn["role"] or turn["role"] == "tool":
        out.append(turn)
        return
    joiner = "" if turn["role"] == "assistant" else "\n"
    last["content"] = joiner.join(t for t in (last["content"], turn["content"]) if t)
    for key in ("images", "tool_calls", "thinking"):
        if key in turn:
            last[key] = last.get(key, "" if key == "thinking" else []) + turn[key]


def _assistant(blocks: list[Any], tool_names: dict[str, str]) -> dict[str, Any]:
    """Text joined with "" (empty skipped), thinking kept for Ollama's templates, tool calls
    with OBJECT arguments (B.6); redacted thinking has nothing to show and is dropped."""
    turn: dict[str, Any] = {"role": "assistant", "content": "".join(_texts(blocks))}
    thinking = "".join(b.get("thinking") or "" for b in blocks if b.get("type") == "thinking")
    if thinking:
        turn["thinking"] = thinking
    calls = [_tool_call(b) for b in blocks if b.get("type") == "tool_use"]
    if calls:
        turn["tool_calls"] = calls
        tool_names.update((call["id"], call["function"]["name"]) for call in calls)
    return turn


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    arguments = block.get("input")
    # A.6 #8: the raw text of invalid tool JSON has no object form; send none.
    if not isinstance(arguments, dict) or "__unparsedToolInput" in arguments:
        arguments = {}
    return {"id": block.get("id"), "function": {"name": block.get("name"), "arguments": arguments}}


def _user(
    blocks: list[Any], calls: list[str], tool_names: dict[str, str], options: OllamaOptions
) -> list[dict[str, Any]]:
    """Tool messages in call order (A.6 #5), then tool-result images, then the user's own part."""
    results = [b for b in blocks if b.get("type") == "tool_result"]
    order = {call_id: index for index, call_id in enumerate(calls)}
    results.sort(key=lambda b: order.get(b.get("tool_use_id"), len(order)))
    turns: list[dict[str, Any]] = []
    result_images: list[str] = []
    for result in results:
        text, images = _result_content(result, options)
        call_id = result.get("tool_use_id")
        turns.append(
            {
                "role": "tool",
                "content": text,
                "tool_name": tool_names.get(call_id, ""),
                "tool_call_id": call_id,
            }
        )
        result_images += images
    if result_images:
        turns.append(_user_turn(["Images from tool results:"], result_images))
    texts, images = _content([b for b in blocks if b.get("type") != "tool_result"], options)
    if texts or images:
        turns.append(_user_turn(texts, images))
    return turns


def _user_turn(texts: list[str], images: list[str]) -> dict[str, Any]:
    turn: dict[str, Any] = {"role": "user", "content": "\n".join(texts)}
    if images:
        turn["images"] = images
    return turn


def _result_content(result: dict[str, Any], options: OllamaOptions) -> tuple[str, list[str]]:
    """B.3's tool_result rows: text joined with "\\n", `[image]` where an image stood,
    `Error: ` before a failed call's output."""
    content = result.get("content")
    texts, images = _content(_blocks(content), options, marker="[image]")
    text = "\n".join(texts)
    return ("Error: " + text if result.get("is_error") else text), images


def _content(
    blocks: list[Any], options: OllamaOptions, *, marker: str | None = None
) -> tuple[list[str], list[str]]:
    """Texts and raw base64 images (B.6: no `data:` prefix) of user or tool-result blocks."""
    texts: list[str] = []
    images: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            texts.append(block["text"])
        elif kind == "image":
            image = _image(block.get("source") or {}, options)
            if image.startswith("["):
                texts.append(image)
            else:
                images.append(image)
                if marker:
                    texts.append(marker)
        elif kind == "document":
            texts.append(_document(block.get("source") or {}))
    return texts, images


def _image(source: dict[str, Any], options: OllamaOptions) -> str:
    """The raw base64 data, or a placeholder text (starting with "[") when it cannot be sent."""
    if not options.supports_images:
        return _IMAGE_OMITTED
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        return str(source["data"])
    return _URL_IMAGE


def _document(source: dict[str, Any]) -> str:
    """Text documents become their text; anything else B.3's placeholder."""
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return str(source["data"])
    if source.get("type") == "content":
        return "\n".join(_texts(source.get("content") or []))
    return _PDF_OMITTED


# Answer -----------------------------------------------------------------------------------


def ollama_to_anthropic_message(response: dict[str, Any], *, model: str) -> dict[str, Any]:
    """One non-streaming `/api/chat` answer as an Anthropic Message (B.4 rules, B.6 usage).

    `model` is the name the client asked for. A body that is `{"error": …}`
    raises `UpstreamError`.
    """
    if "error" in response:
        raise UpstreamError(f"Ollama: {response['error']}")
    message = response.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("thinking"):
        content.append({"type": "thinking", "thinking": message["thinking"], "signature": ""})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    calls = message.get("tool_calls") or []
    for call in calls:
        function = call.get("function") or {}
        tool_input = _parsed_arguments(function.get("arguments"))
        content.append({**_tool_use_start(call), "input": tool_input})
    return {
        "id": _message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop_reason(response.get("done_reason"), tool_calls=bool(calls)),
        "stop_sequence": None,
        "usage": _usage(response, fallback_input=0),
    }


def _tool_use_start(call: dict[str, Any]) -> dict[str, Any]:
    """B.4: keep the upstream's id, or generate `toolu_…` when it is missing or empty."""
    function = call.get("function") or {}
    return {
        "type": "tool_use",
        "id": call.get("id") or "toolu_" + secrets.token_hex(12),
        "name": function.get("name") or "",
        "input": {},
    }


def _parsed_arguments(arguments: Any) -> dict[str, Any]:
    """B.6 sends an object; a JSON string is accepted too; anything else → {} (B.4)."""
    if isinstance(arguments, str):
        try:
            arguments = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            return {}
    return arguments if isinstance(arguments, dict) else {}


def _stop_reason(done_reason: Any, *, tool_calls: bool) -> str:
    """B.4/B.6: `stop` stays `stop` even after tool calls, so tool calls decide first."""
    if tool_calls:
        return "tool_use"
    return "max_tokens" if done_reason == "length" else "end_turn"


def _usage(response: dict[str, Any], *, fallback_input: int) -> dict[str, int]:
    """B.6: input = prompt_eval_count, output = eval_count; Ollama reports no cache use."""
    return {
        "input_tokens": int(response.get("prompt_eval_count") or fallback_input),
        "output_tokens": int(response.get("eval_count") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def _message_id() -> str:
    return "msg_" + secrets.token_hex(12)


class OllamaStreamTranslator:
    """Ollama NDJSON objects → Anthropic SSE bytes (B.5's state machine, B.6's stream, case 47).

    `start()` once, `feed()` each parsed line, then `finish(done=…)`: done
    True after the `done: true` line ends the message; False means the
    connection dropped, which becomes an `error` event, never a fabricated
    end. `message.thinking` pieces go to a thinking block, `content` pieces to
    a text block (never an empty one), and each whole tool call to its own
    tool_use block with one `input_json_delta`. Blocks are strictly
    sequential. After an error nothing more is sent.
    """

    __slots__ = (
        "_delta_head",
        "_done_line",
        "_index",
        "_input_tokens",
        "_message_id",
        "_model",
        "_open",
        "_tool_calls",
        "completed",
        "errored",
    )

    def __init__(self, *, model: str, input_tokens: int = 0, message_id: str | None = None) -> None:
        self._model = model
        self._input_tokens = input_tokens
        self._message_id = message_id or _message_id()
        self._open: str | None = None  # _THINKING or _TEXT: the open block's kind
        self._index = 0  # the next block's index
        self._delta_head = b""  # the open block's delta frames up to the JSON value
        self._tool_calls = False
        self._done_line: dict[str, Any] | None = None
        self.completed = False  # message_stop was sent
        self.errored = False  # an error event was sent

    def start(self) -> bytes:
        """`message_start` (usage: the estimate given, output 0) and one `ping` (B.5 #1)."""
        usage = {"input_tokens": self._input_tokens, "output_tokens": 0}
        start = message_start(self._message_id, self._model, usage)
        return frame(start) + frame({"type": "ping"})

    def feed(self, line: dict[str, Any]) -> bytes:
        """One parsed NDJSON object → the SSE frames it produces (maybe none)."""
        if self.completed or self.errored:
            return b""
        if "error" in line:
            return self.fail(str(line["error"]))
        message = line.get("message") or {}
        out = b""
        thinking = message.get("thinking")
        if thinking:
            out += self._delta(_THINKING, thinking)
        content = message.get("content")
        if content:
            out += self._delta(_TEXT, content)
        for call in message.get("tool_calls") or []:
            out += self._tool_use(call)
        if line.get("done") is True:
            out += self._close()
            self._done_line = line
        return out

    def feed_all(self, lines: Iterable[dict[str, Any]]) -> bytes:
        """`feed()` each line in turn, stopping after an error; return all their frames."""
        out = []
        for line in lines:
            if self.completed or self.errored:
                break
            out.append(self.feed(line))
        return b"".join(out)

    def finish(self, *, done: bool) -> bytes:
        """End of the upstream stream: `message_delta` + `message_stop`, or an error (B.5 #8–9)."""
        if self.completed or self.errored:
            return b""
        if not done:
            return self.fail("Ollama closed the stream before the answer was complete.")
        line = self._done_line or {}
        stop = _stop_reason(line.get("done_reason"), tool_calls=self._tool_calls)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": _usage(line, fallback_input=self._input_tokens),
        }
        self.completed = True
        return self._close() + frame(delta) + frame({"type": "message_stop"})

    def fail(self, message: str, error_type: str = "api_error") -> bytes:
        """An `error` event; the open block stays as it is and the stream ends (B.5 #9)."""
        if self.completed or self.errored:
            return b""
        self.errored = True
        return frame({"type": "error", "error": {"type": error_type, "message": message}})

    def _delta(self, kind: str, value: Any) -> bytes:
        """A thinking or text delta of `value`, opening a block of `kind` first if needed."""
        out = b""
        if self._open is not kind:
            empty = {"type": "text", "text": ""}
            if kind is _THINKING:
                empty = {"type": "thinking", "thinking": "", "signature": ""}
            out = self._close() + self._block_start(empty, kind)
            self._open = kind
        return out + self._delta_head + orjson.dumps(value) + DELTA_END

    def _tool_use(self, call: dict[str, Any]) -> bytes:
        """A whole tool call (B.6): start, one `input_json_delta` of compact JSON, stop."""
        self._tool_calls = True
        arguments = _parsed_arguments((call.get("function") or {}).get("arguments"))
        partial = orjson.dumps(arguments).decode()
        out = self._close() + self._block_start(_tool_use_start(call), "tool")
        out += self._delta_head + orjson.dumps(partial) + DELTA_END
        return out + stop_frame(self._index - 1)

    def _block_start(self, block: dict[str, Any], kind: str) -> bytes:
        start = frame({"type": "content_block_start", "index": self._index, "content_block": block})
        self._delta_head = delta_head(self._index, kind)
        self._index += 1
        return start

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return stop_frame(self._index - 1)
