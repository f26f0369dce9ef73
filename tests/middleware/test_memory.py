"""The memory layer mounted on its own: what reaches the app inside, what is learnt after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from lynkr.asgi import Receive, Scope, Send, get_context
from lynkr.memory import MemoryService
from lynkr.memory import Scope as MemoryScope
from lynkr.memory.sqlite import SQLiteMemoryStore
from lynkr.middleware.memory import MemoryMiddleware
from middleware.test_sessions import answer, call, stream_of

pytestmark = pytest.mark.anyio
WORKSPACE = "/home/dev/shop"


def request(prompt: str) -> dict[str, Any]:
    return {
        "model": "m",
        "max_tokens": 100,
        "stream": True,
        "system": f"<env>\n - Primary working directory: {WORKSPACE}\n</env>",
        "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
    }


class Inner:
    """The app behind the layer: keeps what it was sent, answers a stream."""

    def __init__(self, text: str) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.scopes: list[object] = []
        self.text = text

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.bodies.append(orjson.loads((await receive())["body"]))
        self.scopes.append(get_context(scope).memory_scope)
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        frames = stream_of(answer({"type": "text", "text": self.text}))
        await send({"type": "http.response.body", "body": frames})


async def test_the_layer_adds_memories_and_learns_from_the_answer(tmp_path: Path) -> None:
    service = MemoryService(SQLiteMemoryStore(tmp_path / "memory.sqlite3"), None)
    await service.start()
    try:
        await service.add(MemoryScope(WORKSPACE), "Deploys go out on Tuesdays")
        inner = Inner("I checked `Makefile`: the project uses make deploy for releases.")
        app = MemoryMiddleware(inner, service=service)
        sent = await call(app, request("when do deploys go out?"))
        start = sent[0]
        assert (b"x-lynkr-memories", b"1") in start["headers"]
        block = inner.bodies[0]["messages"][-1]["content"][-1]["text"]
        assert "- [fact] Deploys go out on Tuesdays" in block
        assert inner.scopes == [MemoryScope(WORKSPACE)]
        await service.drain()
        learnt = [m.content for m in await service.store.listing(MemoryScope(WORKSPACE), 10)]
        assert "I checked `Makefile`: the project uses make deploy for releases." in learnt
    finally:
        await service.close()


async def test_a_broken_store_never_fails_the_request(tmp_path: Path) -> None:
    service = MemoryService(SQLiteMemoryStore(tmp_path / "memory.sqlite3"), None)
    await service.start()
    await service.store.close()  # the store goes away under a running layer
    try:
        inner = Inner("fine")
        sent = await call(MemoryMiddleware(inner, service=service), request("deploys?"))
        assert sent[0]["status"] == 200
        assert inner.bodies[0] == request("deploys?")
    finally:
        await service.close()


async def test_other_paths_pass_untouched(tmp_path: Path) -> None:
    service = MemoryService(SQLiteMemoryStore(tmp_path / "memory.sqlite3"), None)
    await service.start()
    try:
        inner = Inner("fine")
        await call(
            MemoryMiddleware(inner, service=service), request("x"), "/v1/messages/count_tokens"
        )
        assert inner.scopes == [None]
    finally:
        await service.close()
