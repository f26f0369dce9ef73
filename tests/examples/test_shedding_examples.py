"""The shedding examples run as shipped: admitted requests work, a full limiter sheds."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from lynkr.middleware.shedding import SheddingMiddleware
from lynkr.resilience import Slot

from ._load import load_example


def shedding_of(app: Any) -> SheddingMiddleware:
    """The SheddingMiddleware instance inside a Starlette app's built middleware stack."""
    layer = app.middleware_stack
    while not isinstance(layer, SheddingMiddleware):
        layer = layer.app
    return layer


def occupy(client: TestClient, shedding: SheddingMiddleware) -> list[Slot]:
    """Take every slot, as long-running requests would (on the app's own loop)."""

    async def take() -> list[Slot]:
        slots = [await shedding.limiter.acquire() for _ in range(shedding.counters.max_concurrent)]
        return [slot for slot in slots if slot is not None]

    assert client.portal is not None  # inside `with TestClient(app)`
    return client.portal.call(take)


@pytest.mark.parametrize("name", ["shedding_starlette", "shedding_fastapi"])
def test_example_serves_and_sheds(name: str) -> None:
    app = load_example(name).app
    with TestClient(app) as client:
        response = client.post("/v1/messages", json={"model": "m"})
        assert response.status_code == 200
        assert response.json()["echo"] == {"model": "m"}
        shedding = shedding_of(app)
        assert shedding.counters.snapshot()["released"] == 1

        slots = occupy(client, shedding)
        shed = client.post("/v1/messages", json={"model": "m"})
        assert shed.status_code == 529
        assert shed.json()["error"]["type"] == "overloaded_error"
        assert int(shed.headers["retry-after"]) >= 1
        assert client.get("/health").json() == {"status": "ok"}  # exempt

        for slot in slots:
            slot.release()
        assert client.post("/v1/messages", json={"model": "m"}).status_code == 200


def test_fastapi_example_sheds_openai_routes_with_503() -> None:
    app = load_example("shedding_fastapi").app
    with TestClient(app) as client:
        assert client.post("/v1/chat/completions", json={}).status_code == 200
        slots = occupy(client, shedding_of(app))
        response = client.post("/v1/chat/completions", json={})
        assert response.status_code == 503
        assert response.json()["error"]["type"] == "server_error"
        for slot in slots:
            slot.release()
