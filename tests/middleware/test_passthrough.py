"""The middlewares not active yet change nothing: same status, headers and bytes."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from lynkr.middleware import load_middleware


@pytest.mark.parametrize("name", ["policy"])
def test_passes_everything_through(echo: Any, name: str) -> None:
    cls = load_middleware(name)
    assert cls.active is False
    raw = b'{"model": "m", "messages": []}'
    direct = TestClient(echo).post("/v1/messages", content=raw)
    wrapped = TestClient(cls(echo)).post("/v1/messages", content=raw)
    assert wrapped.status_code == direct.status_code
    assert wrapped.content == direct.content
    assert wrapped.headers == direct.headers


def test_unknown_name_is_a_fixable_error() -> None:
    with pytest.raises(ValueError, match="known: auth, cache"):
        load_middleware("cahce")
