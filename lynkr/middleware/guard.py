"""The front door: who may address lynkr (Host), from which web page (Origin), with what body.

A gateway on loopback is still reachable from every web page its user opens.
Two ways in, both closed here, before any other layer runs:

* **DNS rebinding.** A page on `evil.example` re-points its own name at
  127.0.0.1 and reads lynkr's answers as same-origin (no `Origin` header on
  a GET). The browser still sends `Host: evil.example`; only allowed names
  pass. Allowed without configuration: `localhost` and `*.localhost` (RFC 6761:
  never resolved by DNS), every IP literal (rebinding needs a name the
  attacker's DNS controls; a page that addresses an IP directly is
  cross-origin and cannot read the answer), and the names in
  `allowed_hosts` (`lynkr serve` adds its bind address). `"*"` allows any
  Host, for a reverse proxy that checks it. A request without `Host`
  (HTTP/1.0) is not from a browser and passes.
* **Cross-site requests.** A page may POST a "simple" request — `text/plain`,
  a form — to any address without a CORS preflight. A request carrying an
  `Origin` not in `allowed_origins` is refused (Claude Code and the SDKs send
  none), and a POST, PUT or PATCH whose body is not `application/json` is
  refused too, so no simple request reaches a handler. An allowed origin gets
  CORS answers: the preflight (`OPTIONS`) is answered here, and responses
  carry `access-control-allow-origin`.

* **Stalled bodies.** A request whose body has not arrived whole
  `body_timeout_seconds` after its head gets 408, wherever a layer is waiting
  for it: a client that sends a head and then trickles (or nothing) cannot
  keep a shedding slot, a worker or memory. Once the body is in, `receive`
  passes through untouched (a streaming answer waits on it for the client's
  disconnect).

Refusals are in the client's API shape: Anthropic's (403 `permission_error`,
400 `invalid_request_error` for the media type) or OpenAI's on OpenAI paths,
each saying which setting allows the request. Lifespan and other scope types
pass straight through.

On the hot path this is one pass over the request headers and a dict lookup
for the Host (benchmarks/guard.py measures it).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence

from lynkr.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    api_path,
    get_context,
    send_error,
    send_json,
)
from lynkr.errors import (
    ClientError,
    LynkrError,
    PermissionDenied,
    RequestTimeout,
    openai_error_body,
)

__all__ = ["GuardMiddleware", "host_name"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# Most distinct Host values whose verdict is remembered: one or two in real use; a flood of
# invented names is judged each time instead of growing the table.
_HOST_MEMORY = 256
_PREFLIGHT_MAX_AGE = b"600"


class GuardMiddleware:
    """Refuses requests from names, origins or media types a browser attack would use."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_hosts: Sequence[str] = (),
        allowed_origins: Sequence[str] = (),
        openai_paths: Sequence[str] = ("/v1/chat/completions",),
        body_timeout_seconds: float = 60.0,
    ) -> None:
        if body_timeout_seconds <= 0:
            raise ValueError("body_timeout_seconds must be above 0 (e.g. 60)")
        self.app = app
        self.body_timeout = body_timeout_seconds
        names = {_normal(name) for name in allowed_hosts if name}
        self.any_host = "*" in names
        self._suffixes = tuple("." + n[2:] for n in names if n.startswith("*.") and len(n) > 2)
        self._names = frozenset(n for n in names if not n.startswith("*"))
        origins = {origin.strip().rstrip("/").lower() for origin in allowed_origins if origin}
        for origin in origins:
            if origin != "*" and "://" not in origin:
                raise ValueError(
                    f"allowed_origins: {origin!r} is not an origin; write scheme://host[:port], "
                    "e.g. http://localhost:3000"
                )
        self.any_origin = "*" in origins
        self._origins = frozenset(origin.encode("latin-1") for origin in origins)
        self.openai_paths = frozenset(openai_paths)
        self._verdicts: dict[bytes, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = origin = media = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = value
            elif key == b"origin":
                origin = value
            elif key == b"content-type":
                media = value
        if host is not None and not self._host_allowed(host):
            await self._refuse(scope, send, self._host_error(host))
            return
        method = scope["method"]
        if method in _BODY_METHODS and not _is_json(media):
            await self._refuse(scope, send, _media_error(media))
            return
        if origin is not None:
            if not self._origin_allowed(origin):
                await self._refuse(scope, send, _origin_error(origin))
                return
            if method == "OPTIONS":
                await _preflight(scope, send, origin)
                return
            send = _with_cors(send, origin)
        await self._timed(scope, receive, send)

    async def _timed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The inner app with a deadline on its body; 408 if an app other than lynkr's
        let the deadline's error through before answering."""
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _body_deadline(receive, self.body_timeout), watched)
        except RequestTimeout as error:
            if started:
                raise
            await self._refuse(scope, send, error)

    def _host_allowed(self, host: bytes) -> bool:
        verdict = self._verdicts.get(host)
        if verdict is None:
            verdict = self._judge_host(host)
            if len(self._verdicts) < _HOST_MEMORY:
                self._verdicts[host] = verdict
        return verdict

    def _judge_host(self, host: bytes) -> bool:
        if self.any_host:
            return True
        name = host_name(host.decode("latin-1"))
        if name in self._names or name == "localhost" or name.endswith(".localhost"):
            return True
        if name.endswith(self._suffixes) and self._suffixes:
            return True
        try:
            ipaddress.ip_address(name.strip("[]"))
        except ValueError:
            return False
        return True

    def _origin_allowed(self, origin: bytes) -> bool:
        return self.any_origin or origin.rstrip(b"/").lower() in self._origins

    def _host_error(self, host: bytes) -> PermissionDenied:
        name = host_name(host.decode("latin-1"))
        return PermissionDenied(
            f"lynkr does not answer requests addressed to host '{name[:100]}' (a web page "
            "could reach lynkr through a name it controls). If you address lynkr by this "
            f"name, add it to server.allowed_hosts in lynkr.yaml "
            f"(e.g. allowed_hosts: [{name[:100]}])."
        )

    async def _refuse(self, scope: Scope, send: Send, error: LynkrError) -> None:
        if api_path(scope["path"]) in self.openai_paths:
            await send_json(
                send, error.status_code, openai_error_body(error.error_type, error.message)
            )
            return
        await send_error(send, error, request_id=get_context(scope).request_id)


def _body_deadline(receive: Receive, seconds: float) -> Receive:
    """`receive` that gives up on the body `seconds` after the request began."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    complete = False

    async def timed() -> Message:
        nonlocal complete
        if complete:
            return await receive()
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise RequestTimeout(
                f"The request body did not arrive within {seconds:g} seconds of its "
                "headers. Send the whole body promptly (or raise "
                "server.limits.body_timeout_seconds in lynkr.yaml)."
            ) from None
        complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return timed


def host_name(host: str) -> str:
    """The name part of a `Host` value, lower case, without port or trailing dot."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8080
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _normal(name: str) -> str:
    return host_name(name) if name.strip() != "*" else "*"


def _is_json(media: bytes | None) -> bool:
    if media is None:
        return False
    kind = media.partition(b";")[0].strip().lower()
    return kind == b"application/json"


def _media_error(media: bytes | None) -> ClientError:
    given = media.decode("latin-1").partition(";")[0].strip()[:100] if media else "none"
    return ClientError(
        f"Request body must be JSON sent with `content-type: application/json` "
        f"(got content-type {given}). Set that header, e.g. curl -H 'content-type: "
        "application/json'."
    )


def _origin_error(origin: bytes) -> PermissionDenied:
    shown = origin.decode("latin-1")[:100]
    return PermissionDenied(
        f"lynkr refuses requests from web pages (Origin {shown}): a page could use your "
        "gateway and its keys. If this page is yours, add its origin to "
        f"server.allowed_origins in lynkr.yaml (e.g. allowed_origins: ['{shown}'])."
    )


async def _preflight(scope: Scope, send: Send, origin: bytes) -> None:
    """The CORS preflight answer for an allowed origin: the methods and headers it asks for."""
    asked = b"content-type"
    for key, value in scope["headers"]:
        if key == b"access-control-request-headers":
            asked = value
    headers = [
        (b"access-control-allow-origin", origin),
        (b"access-control-allow-methods", b"GET, POST, HEAD, OPTIONS"),
        (b"access-control-allow-headers", asked),
        (b"access-control-max-age", _PREFLIGHT_MAX_AGE),
        (b"vary", b"origin"),
    ]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _with_cors(send: Send, origin: bytes) -> Send:
    async def cors(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [
                *message.get("headers", ()),
                (b"access-control-allow-origin", origin),
                (b"vary", b"origin"),
            ]
        await send(message)

    return cors
