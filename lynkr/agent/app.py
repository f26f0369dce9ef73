"""The terminal ASGI app: speaks the Anthropic Messages API and calls the chosen provider.

Endpoints (docs/protocol.md A.2, B.1, cases 42–43):

    HEAD/GET /                      pre-flight (Claude Code sends HEAD {base} on start)
    GET  /health                    liveness
    GET  /ready                     config loaded and providers open
    GET  /v1/models[/{id}]          the model ids from config, in a shape both Anthropic
                                    and OpenAI clients read
    POST /v1/messages               streaming and not, relayed as it arrives
    POST /v1/messages/count_tokens  the upstream's count, or a local estimate

Any path may carry a prefix (Claude Code keeps one from ANTHROPIC_BASE_URL,
A.2): `/proxy/azure/v1/messages` is served as `/v1/messages`.

A client disconnect cancels the upstream call, streaming or not. A failure
after the response started becomes an Anthropic `event: error` frame.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from lynkr.agent.loop import ToolLoop
from lynkr.agent.stream import UNEXPECTED, relay_stream
from lynkr.asgi import (
    SSE_HEADERS,
    ClientDisconnected,
    Message,
    Receive,
    RequestContext,
    Scope,
    Send,
    api_path,
    get_context,
    header,
    header_values,
    parsed_body,
    send_error,
    send_json,
)
from lynkr.errors import ClientError, LynkrError, NotFound
from lynkr.protocol import estimate_input_tokens
from lynkr.protocol.anthropic import anthropic_tool_choice
from lynkr.providers.base import MessagesRequest, ProviderResponse
from lynkr.providers.pool import ProviderPool

__all__ = ["AgentApp", "ModelInfo"]

_log = structlog.get_logger("lynkr.agent")

_CREATED_AT = datetime(2025, 1, 1, tzinfo=UTC)
_CREATED = _CREATED_AT.isoformat().replace("+00:00", "Z")
_CREATED_EPOCH = int(_CREATED_AT.timestamp())


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str
    display_name: str | None = None


class AgentApp:
    """Serves the Anthropic API surface over the configured providers and pools."""

    def __init__(
        self,
        *,
        pools: Mapping[str, ProviderPool],
        default_pool: str | None = None,
        models: Sequence[ModelInfo] = (),
        context_windows: Mapping[str, int] | None = None,
        ping_interval: float = 10.0,
        loop: ToolLoop | None = None,
        is_ready: Callable[[], bool] = lambda: True,
    ) -> None:
        if not pools:
            raise ValueError("the agent needs at least one pool of providers")
        if default_pool is None and len(pools) == 1:
            default_pool = next(iter(pools))
        if default_pool is not None and default_pool not in pools:
            raise ValueError(f"default_pool '{default_pool}' is not one of the pools")
        self.pools = pools
        self.default_pool = default_pool
        providers = {p.name: p for pool in pools.values() for p in pool.order}
        self.models = list(models) or [
            ModelInfo(p.model) for p in providers.values() if p.model is not None
        ]
        self.context_windows = dict(context_windows or {})
        self.ping_interval = ping_interval
        self.loop = loop
        self.is_ready = is_ready
        self._routes: dict[tuple[str, str], Callable[[Scope, Receive, Send], Awaitable[None]]] = {
            ("POST", "/v1/messages"): self.create_message,
            ("POST", "/v1/messages/count_tokens"): self.count_tokens,
            ("GET", "/v1/models"): self.list_models,
            ("GET", "/health"): self.health,
            ("GET", "/ready"): self.ready,
            ("GET", "/"): self.root,
            ("HEAD", "/"): self.root,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        handler = self._handler(scope["method"], scope["path"])
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await handler(scope, receive, tracked)
        except ClientDisconnected:
            return
        except LynkrError as error:
            if not started:
                await send_error(send, error, request_id=get_context(scope).request_id)
        except Exception:
            # A bug, not the client's fault: logged in full, answered in Anthropic's shape.
            _log.exception("request_failed", path=scope["path"])
            if not started:
                unexpected = LynkrError(UNEXPECTED)
                await send_error(send, unexpected, request_id=get_context(scope).request_id)

    def _handler(self, method: str, path: str) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        path = api_path(path.rstrip("/") or "/")
        method = "GET" if method == "HEAD" and path != "/" else method
        found = self._routes.get((method, path))
        if found is not None:
            return found
        if method == "GET" and path.startswith("/v1/models/"):
            return self.get_model
        return self.not_found

    # Messages -----------------------------------------------------------------

    async def create_message(self, scope: Scope, receive: Receive, send: Send) -> None:
        context = get_context(scope)
        body = await parsed_body(scope, receive)
        choice = body.get("tool_choice")
        if anthropic_tool_choice(choice) is not choice:  # OpenAI's spelling on this route
            body = context.body = {**body, "tool_choice": anthropic_tool_choice(choice)}
            context.body_changed = True
        pool = self._pool_for(context.pool)
        self._check_context_window(pool.first.name, body)
        request = _messages_request(scope, body, context.raw_body, context.body_changed)

        async def call() -> None:
            if self.loop is not None:
                await self.loop.run(
                    send,
                    request,
                    pool,
                    context.failover,
                    context.session_id,
                    on_tool_run=lambda: setattr(context, "no_store", True),
                    memory_scope=context.memory_scope,
                )
                return
            asked = time.perf_counter()
            async with pool.messages(request, context.failover) as (provider, response):
                context.provider = provider.name
                context.timings["upstream"] = time.perf_counter() - asked
                await _relay_response(scope, send, response, provider.name, self.ping_interval)

        await _cancel_on_disconnect(receive, call)

    async def count_tokens(self, scope: Scope, receive: Receive, send: Send) -> None:
        context = get_context(scope)
        body = await parsed_body(scope, receive)
        provider = self._pool_for(context.pool).first
        context.provider = provider.name
        request = _messages_request(scope, body, context.raw_body, context.body_changed)
        count = await provider.count_tokens(request)
        if count is None:
            count = estimate_input_tokens(body)
        await send_json(send, 200, orjson.dumps({"input_tokens": count}))

    def _check_context_window(self, provider: str, body: dict[str, Any]) -> None:
        """Refuse early, in the wording Claude Code compacts on (A.9), what cannot fit."""
        window = self.context_windows.get(provider)
        if window is None:
            return
        estimate = estimate_input_tokens(body)
        if estimate > window:
            raise ClientError(f"prompt is too long: {estimate} tokens > {window} maximum")

    def _pool_for(self, pool: str | None) -> ProviderPool:
        name = pool or self.default_pool
        if name is None:
            raise ClientError(
                "No pool was chosen for this request and lynkr.yaml sets no "
                "routing.default_pool. Set one, or send the x-lynkr-pool header."
            )
        if name not in self.pools:
            known = ", ".join(sorted(self.pools))
            raise ClientError(f"Unknown pool '{name}'. Configured pools: {known}.")
        return self.pools[name]

    # Models -------------------------------------------------------------------

    async def list_models(self, scope: Scope, receive: Receive, send: Send) -> None:
        data = [_model_object(model) for model in self.models]
        payload = {
            "object": "list",
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
        await send_json(send, 200, orjson.dumps(payload))

    async def get_model(self, scope: Scope, receive: Receive, send: Send) -> None:
        wanted = api_path(scope["path"]).removeprefix("/v1/models/")
        for model in self.models:
            if model.id == wanted:
                await send_json(send, 200, orjson.dumps(_model_object(model)))
                return
        raise NotFound(f"Model '{wanted}' is not configured. GET /v1/models lists the ids.")

    # Probes -------------------------------------------------------------------

    async def root(self, scope: Scope, receive: Receive, send: Send) -> None:
        payload = orjson.dumps({"name": "lynkr", "api": "anthropic-messages"})
        await send_json(send, 200, payload, head_only=scope["method"] == "HEAD")

    async def health(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, b'{"status":"ok"}')

    async def ready(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.is_ready():
            await send_json(send, 200, b'{"status":"ready"}')
        else:
            await send_json(send, 503, b'{"status":"starting"}')

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotFound(
            f"No endpoint {scope['method']} {scope['path']}. lynkr serves POST /v1/messages, "
            "POST /v1/messages/count_tokens, GET /v1/models, GET /health and GET /ready."
        )


def _messages_request(
    scope: Scope, body: dict[str, Any], raw: bytes | None, changed: bool
) -> MessagesRequest:
    return MessagesRequest(
        body=body,
        raw=None if changed else raw,
        betas=header_values(scope, b"anthropic-beta"),
        anthropic_version=header(scope, b"anthropic-version"),
    )


def _model_object(model: ModelInfo) -> dict[str, Any]:
    """A model in both APIs' shapes at once, so Anthropic and OpenAI clients can list models."""
    return {
        "type": "model",
        "id": model.id,
        "display_name": model.display_name or model.id,
        "created_at": _CREATED,
        "object": "model",
        "created": _CREATED_EPOCH,
        "owned_by": "lynkr",
    }


async def _relay_response(
    scope: Scope, send: Send, response: ProviderResponse, provider: str, ping_interval: float
) -> None:
    """Send the provider's answer as it arrives; after the start, errors become SSE frames."""
    context = get_context(scope)
    extra = [
        *response.headers,
        (b"x-lynkr-provider", provider.encode("latin-1")),
        *_timing_headers(context),
    ]
    if not any(name == b"request-id" for name, _ in extra):
        extra.append((b"request-id", context.request_id.encode("latin-1")))
    if not response.stream:
        body = b"".join([chunk async for chunk in response.chunks])
        await send_json(send, 200, body, headers=extra)
        return
    await send({"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *extra]})
    await relay_stream(send, response.chunks, ping_interval=ping_interval)


def _timing_headers(context: RequestContext) -> list[tuple[bytes, bytes]]:
    """lynkr's own cost so far: time since the request arrived minus the upstream's wait.

    For a stream this is the time to its first byte; for JSON, to the whole answer.
    """
    upstream = context.timings.get("upstream", 0.0)
    overhead = max(0.0, time.perf_counter() - context.started - upstream) * 1000
    timing = f"lynkr;dur={overhead:.2f}, upstream;dur={upstream * 1000:.2f}"
    return [
        (b"x-lynkr-overhead-ms", f"{overhead:.2f}".encode()),
        (b"server-timing", timing.encode()),
    ]


async def _cancel_on_disconnect(receive: Receive, work: Callable[[], Awaitable[None]]) -> None:
    """Run `work`, cancelling it if the client disconnects first (so the upstream call stops).

    Plain asyncio rather than an anyio task group: one watcher task and no cancel
    scopes cost ~4x less per request, and aiohttp ties lynkr to asyncio anyway.
    Only our own cancellation is swallowed: one from the server (a shutdown)
    still propagates, even when the client left at the same time.
    """
    task = asyncio.current_task()
    assert task is not None
    requested = False  # our cancel is pending or delivered, and not taken back yet

    async def watch() -> None:
        nonlocal requested
        while (await receive())["type"] != "http.disconnect":
            pass
        requested = True
        task.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    watcher.add_done_callback(_retrieve)
    try:
        await work()
    except asyncio.CancelledError:
        if not requested:
            raise  # the server is shutting down, or our caller was cancelled
        requested = False
        if task.uncancel() > 0:
            raise  # cancelled by someone else as well
        return  # the client left: nothing to answer
    except BaseException:
        if requested:  # `work` turned our cancellation into another error
            task.uncancel()
        raise
    finally:
        watcher.cancel()
    if requested:
        await _take_back_cancel(task)


async def _take_back_cancel(task: asyncio.Task[Any]) -> None:
    """Our cancel came after `work`'s last wait, or `work` swallowed it: take it back.

    In Python 3.11 `uncancel()` leaves a cancel that was never delivered pending,
    so it is let through at one harmless checkpoint first.
    """
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        if task.uncancel() > 0:
            raise
        return
    task.uncancel()


def _retrieve(watcher: asyncio.Task[None]) -> None:
    """Collect a failed watcher's exception (a broken `receive`) so it is never left unread."""
    if not watcher.cancelled() and watcher.exception() is not None:
        _log.warning("disconnect_watch_failed", error=repr(watcher.exception()))


async def _lifespan(receive: Receive, send: Send) -> None:
    """Answer lifespan events when the agent app is served alone (the stack owns them otherwise)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
