"""A bug in lynkr still answers in Anthropic's shape, before or after the stream started."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.testclient import TestClient

from lynkr.agent.app import AgentApp
from lynkr.providers.base import MessagesRequest, ProviderResponse
from lynkr.providers.pool import ProviderPool


class Broken:
    name = "broken"
    model = "m"

    def __init__(self, *, after_start: bool) -> None:
        self.after_start = after_start

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def count_tokens(self, request: MessagesRequest) -> int | None:
        return None

    @asynccontextmanager
    async def messages(self, request: MessagesRequest) -> AsyncIterator[ProviderResponse]:
        if not self.after_start:
            raise KeyError("a bug before any byte")

        async def chunks() -> AsyncIterator[bytes]:
            yield b'event: message_start\ndata: {"type":"message_start","message":{}}\n\n'
            raise KeyError("a bug mid-stream")

        yield ProviderResponse(True, chunks())


BODY: dict[str, Any] = {
    "model": "m",
    "max_tokens": 5,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}


def client(after_start: bool) -> TestClient:
    pool = ProviderPool("main", [Broken(after_start=after_start)])
    return TestClient(AgentApp(pools={"main": pool}), raise_server_exceptions=False)


def test_a_bug_before_the_answer_is_an_anthropic_500() -> None:
    response = client(after_start=False).post("/v1/messages", json=BODY)
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "api_error" and "unexpectedly" in error["message"]
    assert "a bug" not in response.text  # no internals to the client


def test_a_bug_mid_stream_ends_with_an_error_frame() -> None:
    response = client(after_start=True).post("/v1/messages", json=BODY)
    assert response.status_code == 200
    frames = response.text.strip().split("\n\n")
    assert frames[0].startswith("event: message_start")
    assert frames[-1].startswith("event: error")
    assert '"api_error"' in frames[-1] and "a bug" not in response.text
