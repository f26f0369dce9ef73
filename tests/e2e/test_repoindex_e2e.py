"""The repo index through `lynkr serve` in server mode: the original lynkr's own example —
"Rebuild the index." with an OpenAI-style `tool_choice` naming `workspace_index_rebuild` —
works as written, and the model's index lookups answer from the workspace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LynkrServer
from fakes.anthropic_upstream import FakeAnthropic, text, tool_use

from tests.repoindex.fixtures import FIXTURES

pytestmark = pytest.mark.e2e


def call(name: str, arguments: dict[str, Any], tool_id: str) -> Any:
    return tool_use(preamble="", name=name, tool_input=arguments, tool_id=tool_id)


@pytest.fixture
def server(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer], tmp_path_factory: Any
) -> LynkrServer:
    root: Path = tmp_path_factory.mktemp("indexed-workspace")
    for path, source in FIXTURES.values():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(source)
    tools = {"execution": "server", "workspace": {"root": str(root)}, "enabled": ["index"]}
    return lynkr_server("repoindex", extra={"tools": tools})


def test_the_seed_s_rebuild_example_as_written(server: LynkrServer, fake: FakeAnthropic) -> None:
    fake.script(call("lynkr_index_rebuild", {}, "toolu_rebuild"), text("The index is rebuilt."))
    answer = httpx.post(
        f"{server.url}/v1/messages",
        json={
            "model": "claude-x",
            "max_tokens": 500,
            "messages": [{"role": "user", "content": "Rebuild the index."}],
            "tool_choice": {"type": "function", "function": {"name": "workspace_index_rebuild"}},
        },
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    first, second = fake.message_requests()[-2:]
    assert first.body["tool_choice"] == {"type": "tool", "name": "lynkr_index_rebuild"}
    assert "tool_choice" not in second.body  # forced once, not once a step
    result = second.body["messages"][-1]["content"][0]
    assert "index up to date: 9 files" in str(result["content"]), result
    assert "The index is rebuilt." in answer.text


def test_the_model_finds_a_definition_and_its_callers(
    server: LynkrServer, fake: FakeAnthropic
) -> None:
    fake.script(
        call("lynkr_index_symbols", {"query": "persist"}, "toolu_1"),
        call("lynkr_index_refs", {"name": "persist"}, "toolu_2"),
        text("persist is defined in app/models.py."),
    )
    answer = httpx.post(
        f"{server.url}/v1/messages",
        json={"model": "claude-x", "max_tokens": 500,
              "messages": [{"role": "user", "content": "where is persist defined?"}]},
        timeout=60,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    results = [
        str(block["content"])
        for record in fake.message_requests()[-2:]
        for block in record.body["messages"][-1]["content"]
        if isinstance(block, dict) and block.get("type") == "tool_result"
    ]
    assert "app/models.py:12:5 function def persist(obj):" in results[0]
    assert "app/models.py:9:16 call persist" in results[-1]
