"""`GET /v1/lynkr/sessions[?limit=N]` and `GET /v1/lynkr/sessions/{id}[?content=full]`.

Not on the hot path, so the paths are Starlette's router's job (path
parameters, query strings decoded the standard way, `+` included). Answers
and errors are Anthropic-shaped like every other lynkr endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from lynkr.asgi import Receive, Scope, Send, api_path, get_context, loopback_read, send_error
from lynkr.errors import NotFound, PermissionDenied
from lynkr.sessions.identity import owned_id
from lynkr.sessions.store import SessionStore

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Router

__all__ = ["SessionsEndpoint"]

_DEFAULT_LIMIT = 50
_MAX_LIMIT = 1000


class SessionsEndpoint:
    """Lists sessions and shows one, read from a `SessionStore`.

    Loopback clients only: others get a 403 `permission_error`; an unknown id
    is a 404 `not_found_error`. A caller (the `auth` key's name) sees only its
    own sessions; another caller's id is as unknown as one never used. Mount it for
    any path under `/v1/lynkr/sessions` (a client path prefix is allowed).
    """

    PREFIX = "/v1/lynkr/sessions"

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self._router: Router | None = None  # built on first use: `lynkr validate` needs none

    @property
    def router(self) -> Router:
        if self._router is None:
            from starlette.routing import Route, Router

            self._router = Router(
                routes=[
                    Route(self.PREFIX, self.list_sessions),
                    Route(self.PREFIX + "/{session_id:path}", self.show_session),
                ],
                redirect_slashes=False,
            )
        return self._router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            loopback_read(scope, "sessions", self.PREFIX)
            path = api_path(scope["path"]).rstrip("/")
            await self.router({**scope, "path": path, "root_path": ""}, receive, send)
        except (NotFound, PermissionDenied) as error:
            await send_error(send, error, request_id=get_context(scope).request_id)

    async def list_sessions(self, request: Request) -> Response:
        given = request.query_params.get("limit", "")
        limit = int(given) if given.isascii() and given.isdigit() else _DEFAULT_LIMIT
        owner = get_context(request.scope).caller
        sessions = await self.store.list(min(limit, _MAX_LIMIT), owner=owner)
        return _json({"object": "list", "data": sessions})

    async def show_session(self, request: Request) -> Response:
        session_id = request.path_params["session_id"]
        full = request.query_params.get("content") == "full"
        owner = get_context(request.scope).caller
        found = await self.store.get(owned_id(owner, session_id), full=full)
        if found is None:
            raise NotFound(f"No session '{session_id}'. GET {self.PREFIX} lists the known ones.")
        return _json(found)


def _json(payload: object) -> Response:
    from starlette.responses import Response

    return Response(orjson.dumps(payload), media_type="application/json")
