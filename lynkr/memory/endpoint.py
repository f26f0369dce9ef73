"""`GET /v1/lynkr/memories?workspace=DIR[&q=QUERY][&limit=N]`: a workspace's memories.

With `q`, the memories a request with that prompt would get, ranked, each with
its score; without, the newest first. Loopback clients only (like the sessions
API; behind `auth` when the routes have it), the caller's own memories under
`memory.scope: key`. Answers and errors are Anthropic-shaped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from lynkr.asgi import Receive, Scope, Send, api_path, get_context, loopback_read, send_error
from lynkr.errors import ClientError, NotFound, PermissionDenied
from lynkr.memory.model import DEFAULT_WORKSPACE, Hit, Memory
from lynkr.memory.service import MemoryService
from lynkr.memory.workspace import normalise_workspace

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Router

__all__ = ["MemoriesEndpoint", "hit_payload", "memory_payload"]

_DEFAULT_LIMIT = 20
_MAX_LIMIT = 200


def memory_payload(memory: Memory) -> dict[str, object]:
    data = memory.as_dict()
    return {key: data[key] for key in (
        "id", "content", "type", "workspace", "importance", "surprise", "created", "updated",
        "last_accessed", "access_count", "session_id", "superseded_by",
    )}  # fmt: skip


def hit_payload(hit: Hit) -> dict[str, object]:
    payload = memory_payload(hit.memory)
    payload["score"] = round(hit.score, 4)
    payload["relevance"] = round(hit.relevance, 4)
    return payload


class MemoriesEndpoint:
    PREFIX = "/v1/lynkr/memories"

    def __init__(self, service: MemoryService) -> None:
        self.service = service
        self._router: Router | None = None

    @property
    def router(self) -> Router:
        if self._router is None:
            from starlette.routing import Route, Router

            self._router = Router(
                routes=[Route(self.PREFIX, self.memories)], redirect_slashes=False
            )
        return self._router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            loopback_read(scope, "memories", self.PREFIX)
            path = api_path(scope["path"]).rstrip("/")
            await self.router({**scope, "path": path, "root_path": ""}, receive, send)
        except (NotFound, PermissionDenied, ClientError) as error:
            await send_error(send, error, request_id=get_context(scope).request_id)

    async def memories(self, request: Request) -> Response:
        from starlette.responses import Response

        if self.service.disabled:
            raise NotFound(f"Memory is disabled in this process: {self.service.problem}")
        query = request.query_params
        workspace = normalise_workspace(query.get("workspace") or DEFAULT_WORKSPACE)
        given = query.get("limit", "")
        limit = (
            int(given) if given.isascii() and given.isdigit() and int(given) > 0 else _DEFAULT_LIMIT
        )
        limit = min(limit, _MAX_LIMIT)
        scope = self.service.scope_for(workspace, get_context(request.scope).caller)
        if query.get("q"):
            hits = await self.service.retrieve(scope, query["q"], limit)
            data = [hit_payload(hit) for hit in hits]
        else:
            data = [memory_payload(m) for m in await self.service.store.listing(scope, limit)]
        body = {"object": "list", "workspace": workspace, "data": data}
        return Response(orjson.dumps(body), media_type="application/json")
