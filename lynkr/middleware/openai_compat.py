"""OpenAI compatibility: OpenAI Chat Completions clients in front of any Anthropic Messages app.

`POST …/v1/chat/completions` is read and parsed once, translated to an
Anthropic request (`lynkr.protocol.reverse`), and handed to the inner app as
`POST …/v1/messages`, with the translated body both in the request context
and on `receive`. The inner app's answer is translated back while it is sent:
a JSON Message becomes a `chat.completion`, an SSE stream becomes
`chat.completion.chunk` lines event by event, and an Anthropic error (a 4xx/5xx
JSON body, or `event: error` mid-stream) becomes OpenAI's error shape with the
same status (docs/protocol.md B.10).

`GET …/v1/models` is the same path in both APIs. A request without an
`anthropic-version` header (Anthropic SDKs and Claude Code always send one,
docs/protocol.md A.3) is an OpenAI client's: it gets the inner app's list in
OpenAI's `{"object": "list"}` shape. Everything else passes through untouched,
credentials included, so an auth middleware may sit inside.
"""

from __future__ import annotations

from typing import Any

import orjson

from lynkr.asgi import (
    DEFAULT_BODY_LIMIT,
    ASGIApp,
    ClientDisconnected,
    Message,
    Receive,
    Scope,
    Send,
    get_context,
    header,
    nested_too_deeply,
    parsed_body,
    replay_receive,
    send_json,
    without_headers,
)
from lynkr.errors import LynkrError, error_type_for_status, openai_error_body
from lynkr.protocol.reverse import (
    AnthropicToOpenAIStream,
    anthropic_message_to_openai,
    anthropic_models_to_openai,
    openai_request_to_anthropic,
)
from lynkr.protocol.sse import SSEDecoder

__all__ = ["OpenAICompatMiddleware"]

_MESSAGES_PATH = "/v1/messages"
_ANTHROPIC_VERSION = b"2023-06-01"
# Anthropic's largest page: OpenAI's list has no paging, so ask for everything at once.
_MODELS_QUERY = b"limit=1000"


class OpenAICompatMiddleware:
    """Serves the OpenAI Chat Completions and Models APIs from an inner Anthropic Messages app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        chat_path: str = "/v1/chat/completions",
        models_path: str | None = "/v1/models",
        default_max_tokens: int = 4096,
        max_body_bytes: int = DEFAULT_BODY_LIMIT,
    ) -> None:
        for name, path in (("chat_path", chat_path), ("models_path", models_path)):
            if path is not None and not path.startswith("/"):
                raise ValueError(f"{name} must be a path starting with '/', got {path!r}")
        if default_max_tokens < 1:
            raise ValueError(
                f"default_max_tokens must be a positive integer, got {default_max_tokens!r} "
                "(it is sent as max_tokens when an OpenAI client sets none)"
            )
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be a positive integer, got {max_body_bytes!r}")
        self.app = app
        self.chat_path = chat_path
        self.models_path = models_path
        self.default_max_tokens = default_max_tokens
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method == "POST" and path.endswith(self.chat_path):
            await self._chat(scope, receive, send)
        elif method == "GET" and self._is_openai_models(scope):
            inner = _inner_scope(scope, path, query=_MODELS_QUERY)
            await self.app(inner, receive, _ModelsResponder(send).send)
        else:
            await self.app(scope, receive, send)

    def _is_openai_models(self, scope: Scope) -> bool:
        if self.models_path is None or header(scope, b"anthropic-version") is not None:
            return False
        path: str = scope["path"]
        # `…/v1/models` or `…/v1/models/{id}`
        return path.endswith(self.models_path) or self.models_path + "/" in path

    async def _chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            request = await parsed_body(scope, receive, limit=self.max_body_bytes)
            translated = openai_request_to_anthropic(
                request, default_max_tokens=self.default_max_tokens
            )
            raw = orjson.dumps(translated)
        except ClientDisconnected:
            return
        except orjson.JSONEncodeError:  # translating added a level or two past orjson's 254
            error = nested_too_deeply()
            await _send_openai_error(send, error.status_code, error.error_type, error.message)
            return
        except LynkrError as error:
            await _send_openai_error(send, error.status_code, error.error_type, error.message)
            return
        except (TypeError, AttributeError, ValueError, KeyError) as exc:
            # A field of an unexpected type deep in the request: the client's mistake.
            message = (
                f"The request does not have the shape of an OpenAI Chat Completions request "
                f"({type(exc).__name__}: {exc}). Check the types of messages and their parts."
            )
            await _send_openai_error(send, 400, "invalid_request_error", message)
            return
        context = get_context(scope)
        # `raw` is exactly the translated body: later layers may forward it as is.
        context.body, context.body_changed, context.raw_body = translated, False, raw
        path = scope["path"].removesuffix(self.chat_path) + _MESSAGES_PATH
        inner = _inner_scope(scope, path, query=b"", content_length=len(raw))
        options = request.get("stream_options")
        responder = _ChatResponder(
            send,
            model=str(request.get("model") or ""),
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        )
        await self.app(inner, replay_receive(inner, receive), responder.send)


def _inner_scope(
    scope: Scope, path: str, *, query: bytes, content_length: int | None = None
) -> Scope:
    """A copy of `scope` for the inner Anthropic call; the request context is shared.

    Adds `anthropic-version` when absent (the Messages API requires it); with
    a body, sets `content-type` and `content-length` to the translated body's.
    """
    headers = list(scope.get("headers", ()))
    if header(scope, b"anthropic-version") is None:
        headers.append((b"anthropic-version", _ANTHROPIC_VERSION))
    if content_length is not None:
        headers = without_headers(headers, b"content-length", b"content-type")
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(content_length).encode()),
        ]
    return {
        **scope,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers,
    }


async def _send_openai_error(
    send: Send,
    status: int,
    error_type: str,
    message: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send_json(send, status, openai_error_body(error_type, message), headers=headers or [])


class _Responder:
    """Wraps `send` for one response: holds `http.response.start`, then buffers or streams.

    A JSON answer (or any error status) is gathered whole, it being one
    document, and sent translated with a new `content-length`. Subclasses say
    how a finished JSON body is translated.
    """

    def __init__(self, send: Send) -> None:
        self._send = send
        self._start: Message | None = None
        self._body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            return
        if message["type"] != "http.response.body":
            await self._send(message)
            return
        self._body += message.get("body", b"")
        if not message.get("more_body", False):
            await self._send_whole()

    async def _send_whole(self) -> None:
        assert self._start is not None, "the inner app sent a body before http.response.start"
        status = self._start["status"]
        # What described the body being replaced goes.
        headers = without_headers(
            self._start.get("headers", ()), b"content-length", b"content-type"
        )
        try:
            document = orjson.loads(self._body) if self._body else None
        except orjson.JSONDecodeError:
            document = None
        if status < 400 and isinstance(document, dict):
            payload = orjson.dumps(self._translate(document))
            await send_json(self._send, status, payload, headers=headers)
            return
        if status < 400:  # a success that is not a JSON object: the inner app broke the API
            status, document = 502, {"error": {"message": "The answer was not a JSON object."}}
        error_type, message = _error_of(document, status, bytes(self._body))
        await _send_openai_error(self._send, status, error_type, message, headers)

    def _translate(self, document: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


def _error_of(document: Any, status: int, raw: bytes) -> tuple[str, str]:
    """`(error type, message)` from an Anthropic error body, or from the status and raw text."""
    error = document.get("error") if isinstance(document, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error.get("type") or error_type_for_status(status)), error["message"]
    return error_type_for_status(status), raw.decode("utf-8", "replace")[:500] or f"HTTP {status}"


class _ModelsResponder(_Responder):
    def _translate(self, document: dict[str, Any]) -> dict[str, Any]:
        return anthropic_models_to_openai(document)


class _ChatResponder(_Responder):
    """One chat completion's response: JSON translated whole, SSE translated event by event."""

    def __init__(self, send: Send, *, model: str, include_usage: bool) -> None:
        super().__init__(send)
        self._model = model
        self._stream: AnthropicToOpenAIStream | None = None
        self._decoder = SSEDecoder()
        self._include_usage = include_usage

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and _is_sse(message):
            self._stream = AnthropicToOpenAIStream(
                model=self._model, include_usage=self._include_usage
            )
            await self._send(
                {
                    **message,
                    "headers": without_headers(message.get("headers", ()), b"content-length"),
                }
            )
            return
        if self._stream is None or message["type"] != "http.response.body":
            await super().send(message)
            return
        more = message.get("more_body", False)
        out = self._translate_chunk(message.get("body", b""), final=not more)
        if out or not more:
            await self._send({"type": "http.response.body", "body": out, "more_body": more})

    def _translate_chunk(self, chunk: bytes, *, final: bool) -> bytes:
        assert self._stream is not None
        events = self._decoder.feed(chunk)
        if final:
            events += self._decoder.flush()
        out = b"".join(self._stream.feed(*_parsed(e.event, e.data)) for e in events)
        return out + self._stream.finish() if final else out

    def _translate(self, document: dict[str, Any]) -> dict[str, Any]:
        return anthropic_message_to_openai(document, model=self._model)


def _is_sse(start: Message) -> bool:
    if start["status"] >= 400:
        return False
    for key, value in start.get("headers", ()):
        if key.lower() == b"content-type":
            return bytes(value).lower().startswith(b"text/event-stream")
    return False


def _parsed(event: str | None, data: bytes) -> tuple[str, dict[str, Any]]:
    """An SSE event's name (its `event:` line, else its data's `type`) and its JSON data."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        return "error", {"error": {"type": "api_error", "message": "Malformed stream event."}}
    return event or str(payload.get("type") or ""), payload
