"""ASGI plumbing shared by every layer: type aliases, the request context, body helpers.

The request context is one small object stored in the scope under ``"lynkr"``.
Middlewares talk to each other only through it: whoever needs the parsed body
calls `parsed_body()`, which reads and parses the body once, caches both the
raw bytes and the parsed object in the context, and hands later layers a
`receive` that replays the bytes, so an inner app that is not lynkr's still
sees an ordinary request.

The ASGI types are lynkr's own loose aliases (a scope and a message are
`MutableMapping[str, Any]`), not `asgiref.typing`'s TypedDicts. Tried under
mypy strict (asgiref 3.13, mypy 2.4): asgiref's scope, events and callables
together gave 108 errors in 11 files, its `Scope` alone 26 in 6, its events
alone 81 in 10, and the fixes are casts, not better types. The context lives
under a key no TypedDict declares (`scope["lynkr"]`); an inner scope is a
plain copy (`{**scope, "path": ...}`); the lifespan scope in the union has no
`path` or `headers` for a layer that does not re-check the type; and the
events' keys are all required, so every `http.response.start` lynkr sends
would need `trailers` and every body `more_body`, while the layers that edit
the messages passing through (`message["headers"] = ...`) would need a
receive and a send union narrowed apart at each step.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from lynkr.errors import (
    ClientError,
    LynkrError,
    NotFound,
    Overloaded,
    PermissionDenied,
    RequestTooLarge,
    anthropic_error_body,
    openai_error_body,
)

if TYPE_CHECKING:
    from lynkr.resilience.plan import FailoverPlan

__all__ = [
    "DEFAULT_BODY_LIMIT",
    "SSE_HEADERS",
    "ASGIApp",
    "AnswerCopy",
    "ClientDisconnected",
    "Message",
    "Receive",
    "RequestContext",
    "ResponseStatus",
    "Scope",
    "Send",
    "api_path",
    "body_or_answer",
    "current_body",
    "get_context",
    "header",
    "header_dict",
    "header_values",
    "loopback_read",
    "nested_too_deeply",
    "parsed_body",
    "read_body",
    "replay_receive",
    "response_form",
    "send_error",
    "send_json",
    "send_overloaded",
    "sse_error_frame",
    "without_headers",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Anthropic's own limit for /v1/messages and count_tokens.
DEFAULT_BODY_LIMIT = 32 * 1024 * 1024

_CONTEXT_KEY = "lynkr"


@dataclass(slots=True)
class RequestContext:
    """What the layers of one request know about it; created on first use."""

    request_id: str = field(default_factory=lambda: "req_lynkr_" + secrets.token_hex(12))
    started: float = field(default_factory=time.perf_counter)
    # The body exactly as the client sent it, and its parsed form (parsed once).
    raw_body: bytes | None = None
    body: dict[str, Any] | None = None
    # Set by a layer that changed `body`: the next hop must serialise it again
    # instead of forwarding `raw_body` untouched.
    body_changed: bool = False
    session_id: str | None = None
    # Who is calling: the name of the auth key presented (None without auth). What a
    # caller stored (sessions, cache entries) is theirs alone.
    caller: str | None = None
    # Routing's decision: the pool, and the rule that chose it (for x-lynkr-route).
    pool: str | None = None
    route_reason: str | None = None
    provider: str | None = None
    cache_key: str | None = None
    # The failover middleware's plan for this request (breakers, deadline, retries).
    failover: FailoverPlan | None = None
    # Set when the answer must not be cached (lynkr ran tools with effects for it).
    no_store: bool = False
    # Set by the memory layer: whose long-term memories this request sees and makes
    # (a `lynkr.memory.Scope`; the memory tools work on it).
    memory_scope: object | None = None
    timings: dict[str, float] = field(default_factory=dict)


_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def loopback_read(scope: Scope, api: str, prefix: str) -> None:
    """Refuse what lynkr's own read-only APIs (sessions, memories) do not answer: clients
    not on loopback (`PermissionDenied`) and methods other than GET and HEAD (`NotFound`)."""
    client = scope.get("client")
    if not client or client[0] not in _LOOPBACK:
        raise PermissionDenied(
            f"The {api} API answers only clients on loopback (127.0.0.1 or ::1)."
        )
    if scope.get("method") not in {"GET", "HEAD"}:
        raise NotFound(f"No endpoint {scope.get('method')} {prefix}; use GET.")


def api_path(path: str) -> str:
    """The API path without a client-side prefix: `/proxy/azure/v1/messages` → `/v1/messages`.

    Claude Code keeps any path prefix of ANTHROPIC_BASE_URL (docs/protocol.md A.2).
    """
    index = path.find("/v1/")
    return path[index:] if index > 0 else path


def get_context(scope: Scope) -> RequestContext:
    """The request's context, created and stored in the scope on first use."""
    context = scope.get(_CONTEXT_KEY)
    if context is None:
        context = RequestContext()
        scope[_CONTEXT_KEY] = context
    return context


# The request-header helpers compare names exactly, against lower case: ASGI servers send
# them lower-cased (uvicorn and granian always do; the spec says they should), and
# lower-casing each name would make every scan ~70 % slower.


def header(scope: Scope, name: bytes) -> str | None:
    """First value of a request header (name in lower case), decoded as latin-1."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def header_values(scope: Scope, name: bytes) -> list[str]:
    """Every value of a request header (name in lower case), in order, decoded as latin-1."""
    values: list[str] = []
    for key, value in scope.get("headers", ()):  # a comprehension: ~20 % slower on 3.11
        if key == name:
            values.append(value.decode("latin-1"))
    return values


def header_dict(scope: Scope) -> dict[str, str]:
    """The request headers by name, decoded as latin-1; of a repeated one, its last value."""
    return {
        key.decode("latin-1"): value.decode("latin-1") for key, value in scope.get("headers", ())
    }


async def read_body(scope: Scope, receive: Receive, *, limit: int = DEFAULT_BODY_LIMIT) -> bytes:
    """The whole request body, read once and kept in the context.

    Refuses a body over `limit` bytes as soon as it is known to be too large,
    from `content-length` before reading anything, otherwise while counting.
    """
    context = get_context(scope)
    if context.raw_body is not None:
        return context.raw_body
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    context.raw_body = b"".join(chunks)
    return context.raw_body


class ClientDisconnected(Exception):
    """The client went away before its request body arrived."""


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"Request body is larger than the limit of {limit} bytes. "
        "Send a smaller request (shorten the conversation or attach fewer files)."
    )


async def parsed_body(
    scope: Scope, receive: Receive, *, limit: int = DEFAULT_BODY_LIMIT
) -> dict[str, Any]:
    """The body parsed as a JSON object, parsed once per request and cached."""
    context = get_context(scope)
    if context.body is not None:
        return context.body
    raw = await read_body(scope, receive, limit=limit)
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ClientError(
            f"Request body is not valid JSON ({exc}). Send a JSON object with "
            "`content-type: application/json`."
        ) from None
    if not isinstance(parsed, dict):
        raise ClientError(
            f"Request body must be a JSON object, got {type(parsed).__name__}. "
            'Send e.g. {"model": ..., "max_tokens": ..., "messages": [...]}.'
        )
    try:
        # orjson reads 1024 levels of nesting but writes only 254: a body deeper than that
        # could not be written again by any layer (a cache key, a translation, a rewrite).
        # Trying once costs ~14 µs for a 78 KB body, far less than walking it in Python.
        orjson.dumps(parsed)
    except orjson.JSONEncodeError:
        raise nested_too_deeply() from None
    context.body = parsed
    return parsed


async def body_or_answer(
    scope: Scope, receive: Receive, send: Send, *, limit: int = DEFAULT_BODY_LIMIT
) -> dict[str, Any] | None:
    """`parsed_body`, or None once the request is answered: an Anthropic error sent for a
    body that is too large or not a JSON object, nothing for a client that left."""
    try:
        return await parsed_body(scope, receive, limit=limit)
    except ClientDisconnected:
        return None
    except LynkrError as error:
        await send_error(send, error, request_id=get_context(scope).request_id)
        return None


def nested_too_deeply() -> ClientError:
    """The error for a body lynkr cannot serialise again, or check, for its nesting."""
    return ClientError(
        "Request body is nested too deeply to check. "
        "Send JSON nested at most 254 levels deep (content blocks inside blocks count)."
    )


def replay_receive(scope: Scope, receive: Receive) -> Receive:
    """A `receive` that first hands out the body already read, then defers to `receive`.

    Later calls reach the server's own `receive`, so `http.disconnect` still
    arrives to whoever listens for it.
    """
    if getattr(receive, "_lynkr_replay", False):
        return receive  # an outer layer already replays the body: once is enough
    context = get_context(scope)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed and context.raw_body is not None:
            replayed = True
            return {"type": "http.request", "body": current_body(context), "more_body": False}
        return await receive()

    replay._lynkr_replay = True  # type: ignore[attr-defined]
    return replay


def current_body(context: RequestContext) -> bytes:
    """The bytes to pass on: the client's own unless a layer changed the parsed body."""
    if context.body_changed and context.body is not None:
        return orjson.dumps(context.body)
    return context.raw_body or b""


async def send_json(
    send: Send,
    status: int,
    payload: bytes,
    *,
    headers: Iterable[tuple[bytes, bytes]] = (),
    head_only: bool = False,
) -> None:
    """Send a whole JSON response (already serialised) in two messages."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head_only else payload})


async def send_error(send: Send, error: LynkrError, *, request_id: str | None = None) -> None:
    """Send `error` as an Anthropic error response with its status and extra headers."""
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    if request_id:
        extra.append((b"request-id", request_id.encode("latin-1")))
    body = anthropic_error_body(error.error_type, error.message, request_id)
    await send_json(send, error.status_code, body, headers=extra)


class AnswerCopy:
    """A copy of an answer's bytes as they go out, up to `limit` bytes, for a layer that
    reads the answer after it was sent (sessions, memory).

    Only a 200's body is kept. Past the limit the copy is dropped at once (an upstream's
    endless answer must not grow lynkr's memory); the client still gets every byte.
    `start` may change the `http.response.start` message (add a header) on its way out.
    """

    __slots__ = ("chunks", "complete", "content_type", "kept", "limit", "status", "too_large")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.status = 0
        self.content_type = ""
        self.chunks: list[bytes] = []
        self.kept = 0
        self.complete = False  # the last body message went out
        self.too_large = False

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def wrap(self, send: Send, start: Callable[[Message], Message] | None = None) -> Send:
        async def copying(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-type":
                        self.content_type = value.decode("latin-1")
                if start is not None:
                    message = start(message)
            elif message["type"] == "http.response.body" and self.status == 200:
                self._keep(message.get("body", b""))
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.complete = True

        return copying

    def _keep(self, chunk: bytes) -> None:
        if self.too_large:
            return
        self.kept += len(chunk)
        if self.kept > self.limit:
            self.too_large, self.chunks = True, []
            return
        self.chunks.append(chunk)


class ResponseStatus:
    """A `send` that remembers the response's status as it passes (0 until it starts).

    For layers that judge a request by how it was answered (the access log, the
    failover middleware's breaker): `watch = ResponseStatus(send)`, hand the app
    `watch.send`, read `watch.status` afterwards.
    """

    __slots__ = ("_downstream", "status")

    def __init__(self, send: Send) -> None:
        self._downstream = send
        self.status = 0

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._downstream(message)


def response_form(start: Message) -> str | None:
    """`"json"` or `"sse"` for a 200 `http.response.start` whose body lynkr can read as it
    passes (Anthropic JSON or an event stream, not compressed); None for anything else.

    Media types and encodings compare case-insensitively, and `identity` is no encoding.
    """
    if start.get("status") != 200:
        return None
    media = encoding = b""
    for name, value in start.get("headers", ()):
        lower = name.lower()
        if lower == b"content-type":
            media = value.split(b";")[0].strip().lower()
        elif lower == b"content-encoding":
            encoding = value.strip().lower()
    if encoding not in (b"", b"identity"):
        return None
    return {b"application/json": "json", b"text/event-stream": "sse"}.get(media)


def without_headers(
    headers: Iterable[tuple[bytes, bytes]], *names: bytes
) -> list[tuple[bytes, bytes]]:
    """`headers` minus those `names` (lower case), e.g. a `content-length` a layer changes."""
    return [(key, value) for key, value in headers if key.lower() not in names]


async def send_overloaded(
    scope: Scope, send: Send, message: str, *, headers: dict[str, str], openai: bool = False
) -> None:
    """Refuse for now, in the client's API: Anthropic's 529 `overloaded_error` (with the
    request id), or OpenAI's 503 on an OpenAI path; `headers` (retry-after…) on both."""
    if openai:
        encoded = [
            (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        ]
        await send_json(send, 503, openai_error_body("overloaded_error", message), headers=encoded)
        return
    error = Overloaded(message, headers=headers)
    await send_error(send, error, request_id=get_context(scope).request_id)


# The response headers of every Anthropic SSE stream lynkr sends.
SSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # An nginx in front would otherwise buffer the stream.
    (b"x-accel-buffering", b"no"),
)


def sse_error_frame(error_type: str, message: str) -> bytes:
    """An Anthropic `event: error` frame, for failures after the stream started."""
    data = orjson.dumps({"type": "error", "error": {"type": error_type, "message": message}})
    return b"event: error\ndata: " + data + b"\n\n"
