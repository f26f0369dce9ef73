"""The memory family through the registry: the request's scope, the policy, the answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from lynkr.agent.tools import ToolContext, tool_registry
from lynkr.memory import MemoryService, Scope
from lynkr.memory.sqlite import SQLiteMemoryStore
from lynkr.policy import Policy

pytestmark = pytest.mark.anyio
SHOP = Scope("/home/dev/shop")


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[MemoryService]:
    started = MemoryService(SQLiteMemoryStore(tmp_path / "memory.sqlite3"), None)
    await started.start(background=False)
    yield started
    await started.close()


async def test_add_search_forget_stats_on_the_request_s_scope(
    service: MemoryService, context: Callable[..., ToolContext]
) -> None:
    registry = tool_registry(["memory"])
    mine = context(memory=service, memory_scope=SHOP)
    other = context(memory=service, memory_scope=Scope("/home/dev/other"))
    added = await registry.execute(
        "lynkr_memory_add", {"content": "Deploys go out on Tuesdays", "type": "decision"}, mine
    )
    assert not added.is_error and "stored memory #1" in str(added.content)
    found = await registry.execute("lynkr_memory_search", {"query": "when do deploys go out"}, mine)
    assert "[decision] Deploys go out on Tuesdays" in str(found.content)
    elsewhere = await registry.execute("lynkr_memory_search", {"query": "deploys"}, other)
    assert str(elsewhere.content) == "no memory matches that"
    listed = await registry.execute("lynkr_memory_forget", {"query": "deploys"}, mine)
    assert "would delete 1" in str(listed.content)
    assert "1 active" in str((await registry.execute("lynkr_memory_stats", {}, mine)).content)
    stranger = await registry.execute("lynkr_memory_forget", {"id": 1, "confirm": True}, other)
    assert "nothing deleted" in str(stranger.content)
    gone = await registry.execute("lynkr_memory_forget", {"id": 1, "confirm": True}, mine)
    assert "deleted 1" in str(gone.content)
    bad = await registry.execute("lynkr_memory_add", {"content": "x", "type": "opinion"}, mine)
    assert bad.is_error and "type" in str(bad.content)


async def test_the_policy_judges_memory_tools_and_no_scope_is_an_error(
    service: MemoryService, context: Callable[..., ToolContext]
) -> None:
    registry = tool_registry(["memory"])
    deny = Policy.from_data({"tools": {"deny": ["memory.forget"]}})
    refused = await registry.execute(
        "lynkr_memory_forget", {"query": "x"}, context(deny, memory=service, memory_scope=SHOP)
    )
    assert refused.is_error and str(refused.content).startswith("refused by policy rule")
    unscoped = await registry.execute("lynkr_memory_stats", {}, context())
    assert unscoped.is_error and "memory.enabled" in str(unscoped.content)
