"""The cache example runs as shipped: a repeat is a hit in either form, and survives a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lynkr.cache import StreamRecorder

from ._load import load_example

BODY = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


def test_the_example_serves_repeats_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the example keeps cache.sqlite3 in the working directory
    example = load_example("cache_starlette")
    with TestClient(example.app) as client:
        first = client.post("/v1/messages", json={**BODY, "stream": True})
        assert first.headers["x-lynkr-cache"] == "miss"
        recorder = StreamRecorder(limit=1 << 20)
        recorder.feed(first.content)
        streamed = recorder.result()
        assert streamed is not None
        hit = client.post("/v1/messages", json=BODY)
        assert hit.headers["x-lynkr-cache"] == "hit"
        assert hit.json()["content"] == streamed["content"]
        assert hit.json()["usage"]["cache_read_input_tokens"] == 12
        bypass = client.post("/v1/messages", json=BODY, headers={"cache-control": "no-store"})
        assert bypass.headers["x-lynkr-cache"] == "bypass"
    assert next(example.calls) == 3  # two calls reached the model

    restarted = load_example("cache_starlette")
    with TestClient(restarted.app) as client:
        assert client.post("/v1/messages", json=BODY).headers["x-lynkr-cache"] == "hit"
    assert (tmp_path / "cache.sqlite3").is_file()
