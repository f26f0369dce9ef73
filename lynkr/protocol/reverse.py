"""The reverse direction: OpenAI Chat Completions clients in front of an Anthropic Messages API.

The `openai_compat` middleware uses these at the client edge:
an OpenAI request becomes an Anthropic one, and the Anthropic answer, whole
or streamed, goes back in the shapes docs/protocol.md B.2 describes. The rules
are B.3 and B.4 read backwards; where a rule has no inverse the docstring
says what is done instead.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from lynkr.errors import ClientError, openai_error_body

__all__ = [
    "AnthropicToOpenAIStream",
    "anthropic_message_to_openai",
    "anthropic_models_to_openai",
    "openai_request_to_anthropic",
]

_DATA_URL = re.compile(r"data:([^;,]+);base64,(.*)", re.DOTALL)
_TOOL_CHOICE = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}
# B.4's finish_reason table, inverted; `pause_turn` has no OpenAI name, `stop` is closest.
_FINISH_REASON = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


# Request ----------------------------------------------------------------------------------


def openai_request_to_anthropic(
    body: dict[str, Any], *, default_max_tokens: int = 4096
) -> dict[str, Any]:
    """An OpenAI Chat Completions request (B.2) as an Anthropic Messages request (B.1).

    `max_completion_tokens`, else `max_tokens`, else `default_max_tokens`
    (Anthropic requires one). `temperature` is clamped to Anthropic's 0–1.
    `n` other than 1 is refused; `seed`, penalties, `logit_bias`, `logprobs`
    and `reasoning_effort` have no Anthropic field and are dropped. Raises
    `ClientError` naming the JSON path of anything that cannot be translated.
    """
    if body.get("n", 1) != 1:
        raise ClientError(f"n: only 1 choice is supported, got {body['n']!r}. Drop `n`.")
    system, messages = _messages(body.get("messages"))
    out: dict[str, Any] = {
        "model": body.get("model"),
        "max_tokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or default_max_tokens,
        "messages": messages,
    }
    if system:
        out["system"] = system
    _sampling(body, out)
    _tools(body, out)
    _response_format(body.get("response_format"), out)
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    if body.get("stream") is True:
        out["stream"] = True
    return out


def _sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    if isinstance(body.get("temperature"), int | float):
        out["temperature"] = min(float(body["temperature"]), 1.0)
    if "top_p" in body and body["top_p"] is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = stop


def _messages(messages: Any) -> tuple[str, list[dict[str, Any]]]:
    """System and developer texts (joined with a blank line, wherever they stood) and the turns.

    Anthropic has one top-level `system`, so a system message in mid
    conversation joins it too. Tool messages become user `tool_result`
    blocks; consecutive messages of one role merge, so the results of one
    assistant turn share a user message, followed by any user text (B.1: every
    tool_result first). An assistant message with nothing in it is skipped
    (the API rejects empty content).
    """
    if not isinstance(messages, list) or not messages:
        raise ClientError("messages: required, a non-empty list of {role, content} messages")
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise ClientError(f"{where}: expected an object with role and content")
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_plain_text(message.get("content"), where))
            continue
        converter = _CONVERTERS.get(str(role))
        if converter is None:
            raise ClientError(
                f"{where}.role: {role!r} is not supported; use system, developer, user, "
                "assistant or tool"
            )
        turn = converter(message, where)
        if turn["content"]:
            _append(out, turn)
    return "\n\n".join(text for text in system if text), out


def _append(out: list[dict[str, Any]], turn: dict[str, Any]) -> None:
    if out and out[-1]["role"] == turn["role"]:
        out[-1]["content"] = _as_blocks(out[-1]["content"]) + _as_blocks(turn["content"])
    else:
        out.append(turn)


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return content
    return [{"type": "text", "text": content}] if content else []


def _user(message: dict[str, Any], where: str) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, str):
        return {"role": "user", "content": content}
    if not isinstance(content, list):
        raise ClientError(f"{where}.content: expected a string or a list of content parts")
    blocks = [_user_part(part, f"{where}.content[{i}]") for i, part in enumerate(content)]
    return {"role": "user", "content": [block for block in blocks if block]}


def _user_part(part: Any, where: str) -> dict[str, Any] | None:
    """One user content part (B.2 "Messages") as an Anthropic block; empty text gives None."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        text = part.get("text")
        return {"type": "text", "text": text} if text else None
    if kind == "image_url":
        url = (part.get("image_url") or {}).get("url")
        return {"type": "image", "source": _source(url, f"{where}.image_url.url")}
    if kind == "file":
        data = (part.get("file") or {}).get("file_data")
        if not isinstance(data, str):
            raise ClientError(f"{where}.file: only inline `file_data` is supported, not file_id")
        return {"type": "document", "source": _source(data, f"{where}.file.file_data")}
    raise ClientError(
        f"{where}.type: content part {kind!r} is not supported; send text, image_url or file"
    )


def _source(url: Any, where: str) -> dict[str, Any]:
    """A `data:` URL becomes a base64 source, an http(s) URL a url source (B.3's image row)."""
    if isinstance(url, str):
        match = _DATA_URL.fullmatch(url)
        if match:
            return {"type": "base64", "media_type": match[1], "data": match[2]}
        if url.startswith(("https://", "http://")):
            return {"type": "url", "url": url}
    shown = url[:40] if isinstance(url, str) else url
    raise ClientError(f"{where}: expected a data:<mime>;base64,… or http(s) URL, got {shown!r}")


def _assistant(message: dict[str, Any], where: str) -> dict[str, Any]:
    """Text parts and `refusal` become text blocks, `tool_calls` tool_use blocks (B.3 inverted)."""
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        blocks = _as_blocks(content)
    elif isinstance(content, list):
        for part in content:
            text = part.get("text") or part.get("refusal") if isinstance(part, dict) else None
            blocks += _as_blocks(text or "")
    calls = message.get("tool_calls") or []
    for i, call in enumerate(calls):
        blocks.append(_tool_use(call, f"{where}.tool_calls[{i}]"))
    return {"role": "assistant", "content": blocks}


def _tool_use(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ClientError(f"{where}.function.name: required")
    return {
        "type": "tool_use",
        "id": call.get("id") or "toolu_" + secrets.token_hex(12),
        "name": function["name"],
        "input": _tool_input(function.get("arguments")),
    }


def _tool_input(arguments: Any) -> dict[str, Any]:
    """Parsed `arguments`; "" or null → {}; anything else that is not a JSON object is kept raw.

    The raw form is the one Claude Code replays for invalid tool JSON (A.6 #8),
    which B.3 turns back into the same `arguments` string.
    """
    if not arguments:
        return {}
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        parsed = None
    if isinstance(parsed, dict):
        return parsed
    raw = str(arguments)
    return {"__unparsedToolInput": {"raw": raw, "len": len(raw)}}


def _tool(message: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise ClientError(f"{where}.tool_call_id: required, the id of the call this answers")
    result = {
        "type": "tool_result",
        "tool_use_id": call_id,
        "content": _plain_text(message.get("content"), where),
    }
    return {"role": "user", "content": [result]}


_CONVERTERS: dict[str, Callable[[dict[str, Any], str], dict[str, Any]]] = {
    "user": _user,
    "assistant": _assistant,
    "tool": _tool,
}


def _plain_text(content: Any, where: str) -> str:
    """A string, or text parts joined with "\\n" (B.3's "user text blocks only" row)."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and p.get("text"))
    raise ClientError(f"{where}.content: expected a string or a list of text parts")


def _tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    """`tools`, `tool_choice` and `parallel_tool_calls` (B.3's tool rows, inverted).

    Without tools the choice is dropped: Anthropic refuses a choice with no tools.
    """
    tools = body.get("tools")
    if not tools:
        return
    out["tools"] = [_tool_definition(tool, f"tools[{i}]") for i, tool in enumerate(tools)]
    choice = _tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False and choice.get("type") != "none":
        choice = {**choice, "disable_parallel_tool_use": True}
    if choice != {"type": "auto"}:
        out["tool_choice"] = choice


def _tool_definition(tool: Any, where: str) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type", "function") != "function":
        raise ClientError(f"{where}: only {{type: 'function', function: {{name, parameters}}}}")
    definition: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        definition["description"] = function["description"]
    definition["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return definition


def _tool_choice(choice: Any) -> dict[str, Any]:
    if choice is None:
        return {"type": "auto"}
    if isinstance(choice, str) and choice in _TOOL_CHOICE:
        return dict(_TOOL_CHOICE[choice])
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(name, str):
        raise ClientError(
            f"tool_choice: expected auto, required, none or "
            f'{{"type": "function", "function": {{"name": …}}}}, got {choice!r}'
        )
    return {"type": "tool", "name": name}


def _response_format(response_format: Any, out: dict[str, Any]) -> None:
    """`json_schema` → `output_config.format` (B.3's row, inverted); `json_object` has no twin."""
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if schema is not None:
            out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}


# Response ---------------------------------------------------------------------------------


def anthropic_message_to_openai(
    message: dict[str, Any], *, model: str, created: int | None = None
) -> dict[str, Any]:
    """An Anthropic Message (B.1) as a `chat.completion` (B.2).

    Text joins into `content` (null when none), `tool_use` becomes
    `tool_calls` with compact JSON arguments, thinking becomes
    `reasoning_content`. `model` is the name the client asked for (B.4 keeps
    it stable); `created` defaults to now. A message that called tools
    finishes with `tool_calls` whatever its stop reason (A.7 #5).
    """
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "thinking":
            thinking.append(block.get("thinking") or "")
        elif kind == "tool_use":
            calls.append(_tool_call(block))
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if thinking:
        reply["reasoning_content"] = "".join(thinking)
    if calls:
        reply["tool_calls"] = calls
    reply["refusal"] = None
    finish = "tool_calls" if calls else _finish_reason(message.get("stop_reason"))
    return {
        "id": _completion_id(message.get("id")),
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [{"index": 0, "message": reply, "finish_reason": finish, "logprobs": None}],
        "usage": _usage(message.get("usage") or {}),
    }


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": block.get("id"),
        "type": "function",
        "function": {"name": block.get("name"), "arguments": _arguments(block.get("input"))},
    }


def _arguments(tool_input: Any) -> str:
    """Compact JSON of the input; Claude Code's unparsed form goes back as its raw string."""
    if isinstance(tool_input, dict) and set(tool_input) == {"__unparsedToolInput"}:
        raw = tool_input["__unparsedToolInput"].get("raw")
        if isinstance(raw, str):
            return raw
    return orjson.dumps(tool_input if tool_input is not None else {}).decode()


def _finish_reason(stop_reason: Any) -> str:
    return _FINISH_REASON.get(stop_reason, "stop") if stop_reason else "stop"


def _completion_id(message_id: Any) -> str:
    if isinstance(message_id, str) and message_id:
        return "chatcmpl-" + message_id.removeprefix("msg_")
    return "chatcmpl-" + secrets.token_hex(12)


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    """B.1: `input_tokens` excludes cache reads and writes; OpenAI's prompt count includes both."""
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = (usage.get("input_tokens") or 0) + cached
    prompt += usage.get("cache_creation_input_tokens") or 0
    completion = usage.get("output_tokens") or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def anthropic_models_to_openai(
    listing: dict[str, Any], *, owned_by: str = "lynkr"
) -> dict[str, Any]:
    """An Anthropic `GET /v1/models` page (B.1), or one model object, in OpenAI's list shape."""
    if "data" not in listing:
        return _model(listing, owned_by)
    return {"object": "list", "data": [_model(m, owned_by) for m in listing.get("data") or []]}


def _model(model: dict[str, Any], owned_by: str) -> dict[str, Any]:
    return {
        "id": model.get("id"),
        "object": "model",
        "created": _epoch(model.get("created_at")),
        "owned_by": owned_by,
    }


def _epoch(created_at: Any) -> int:
    """RFC 3339 → Unix seconds; 0 when absent or unreadable."""
    try:
        return int(datetime.fromisoformat(str(created_at)).timestamp())
    except ValueError:
        return 0


# Stream -----------------------------------------------------------------------------------


class AnthropicToOpenAIStream:
    """Anthropic stream events (B.1 grammar) → `chat.completion.chunk` SSE lines (B.2).

    Feed each decoded event with `feed(name, data)`; send what it returns;
    call `finish()` when the Anthropic stream ends. The first chunk carries
    `delta.role`; a tool_use block opens `tool_calls[{index, id, type,
    function:{name, arguments:""}}]` and each `input_json_delta` adds an
    argument fragment at the same index; `message_stop` sends the chunk with
    `finish_reason`, the usage chunk (`choices: []`) when `include_usage`,
    and `[DONE]`. An Anthropic `error` event, or a stream that ends before
    `message_stop`, becomes a chunk with a top-level `error` (B.2, OpenRouter's
    mid-stream form) and `[DONE]`.
    """

    __slots__ = (
        "_created",
        "_id",
        "_include_usage",
        "_model",
        "_stop_reason",
        "_tools",
        "_usage",
        "done",
    )

    def __init__(self, *, model: str, include_usage: bool, created: int | None = None) -> None:
        self._model = model
        self._include_usage = include_usage
        self._created = int(time.time()) if created is None else created
        self._id = _completion_id(None)
        self._tools: dict[int, int] = {}  # Anthropic block index → OpenAI tool_calls index
        self._usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        self.done = False  # `[DONE]` was sent

    def feed(self, event: str, data: dict[str, Any]) -> bytes:
        """One Anthropic event (name and parsed data) → the SSE bytes to send now (maybe none)."""
        if self.done:
            return b""
        handler = _HANDLERS.get(event)
        return handler(self, data) if handler else b""

    def finish(self) -> bytes:
        """End of the Anthropic stream: nothing if it ended properly, else an error chunk."""
        if self.done:
            return b""
        return self._error("server_error", "The stream ended before the message was complete.")

    def _message_start(self, data: dict[str, Any]) -> bytes:
        message = data.get("message") or {}
        if message.get("id"):
            self._id = _completion_id(message["id"])
        self._usage.update(message.get("usage") or {})
        return self._chunk({"role": "assistant", "content": ""})

    def _ping(self, data: dict[str, Any]) -> bytes:
        return b": ping\n\n"

    def _block_start(self, data: dict[str, Any]) -> bytes:
        block = data.get("content_block") or {}
        if block.get("type") != "tool_use":
            return b""
        index = self._tools[data.get("index", 0)] = len(self._tools)
        call = {
            "index": index,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return self._chunk({"tool_calls": [call]})

    def _block_delta(self, data: dict[str, Any]) -> bytes:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return self._chunk({"content": delta["text"]})
        if kind == "thinking_delta" and delta.get("thinking"):
            return self._chunk({"reasoning_content": delta["thinking"]})
        tool = self._tools.get(data.get("index", -1))
        if kind == "input_json_delta" and delta.get("partial_json") and tool is not None:
            fragment = {"index": tool, "function": {"arguments": delta["partial_json"]}}
            return self._chunk({"tool_calls": [fragment]})
        return b""

    def _message_delta(self, data: dict[str, Any]) -> bytes:
        self._stop_reason = (data.get("delta") or {}).get("stop_reason") or self._stop_reason
        self._usage.update(data.get("usage") or {})
        return b""

    def _message_stop(self, data: dict[str, Any]) -> bytes:
        finish = "tool_calls" if self._tools else _finish_reason(self._stop_reason)
        out = self._chunk({}, finish_reason=finish)
        if self._include_usage:
            out += self._frame({**self._head(), "choices": [], "usage": _usage(self._usage)})
        return out + self._done()

    def _error_event(self, data: dict[str, Any]) -> bytes:
        error = data.get("error") or {}
        return self._error(error.get("type") or "api_error", error.get("message") or "")

    def _error(self, error_type: str, message: str) -> bytes:
        return b"data: " + openai_error_body(error_type, message) + b"\n\n" + self._done()

    def _done(self) -> bytes:
        self.done = True
        return b"data: [DONE]\n\n"

    def _head(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }

    def _chunk(self, delta: dict[str, Any], *, finish_reason: str | None = None) -> bytes:
        chunk = {
            **self._head(),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if self._include_usage:
            chunk["usage"] = None  # B.2: with include_usage, other chunks carry null
        return self._frame(chunk)

    @staticmethod
    def _frame(chunk: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


_HANDLERS: dict[str, Callable[[AnthropicToOpenAIStream, dict[str, Any]], bytes]] = {
    "message_start": AnthropicToOpenAIStream._message_start,
    "ping": AnthropicToOpenAIStream._ping,
    "content_block_start": AnthropicToOpenAIStream._block_start,
    "content_block_delta": AnthropicToOpenAIStream._block_delta,
    "message_delta": AnthropicToOpenAIStream._message_delta,
    "message_stop": AnthropicToOpenAIStream._message_stop,
    "error": AnthropicToOpenAIStream._error_event,
}
