"""The index family through the registry, on the per-language fixture tree."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lynkr.agent.tools import ToolContext, tool_registry
from lynkr.policy import Policy
from tests.repoindex.fixtures import FIXTURES

pytestmark = pytest.mark.anyio


@pytest.fixture
def tree(workspace: Path) -> Path:
    for path, source in FIXTURES.values():
        (workspace / path).parent.mkdir(parents=True, exist_ok=True)
        (workspace / path).write_bytes(source)
    return workspace


async def test_symbols_refs_definition_outline_rebuild(
    tree: Path, context: Callable[..., ToolContext]
) -> None:
    registry = tool_registry(["index"])
    ask = lambda name, arguments: registry.execute(name, arguments, context())  # noqa: E731
    found = await ask("lynkr_index_symbols", {"query": "persist"})
    assert str(found.content) == "app/models.py:12:5 function def persist(obj):"
    refs = await ask("lynkr_index_refs", {"name": "persist"})
    assert str(refs.content) == "app/models.py:9:16 call persist"
    # `persist` called on line 9 of app/models.py → its definition on line 12
    definition = await ask("lynkr_index_definition", {"path": "app/models.py", "line": 9,
                                                      "column": 18})  # fmt: skip
    assert str(definition.content).startswith("app/models.py:12:5 function def persist")
    outline = await ask("lynkr_index_outline", {"path": "src/shape.cpp"})
    assert [line.split()[0] for line in str(outline.content).splitlines()] == [
        "src/shape.cpp:3:11", "src/shape.cpp:5:7", "src/shape.cpp:7:12", "src/shape.cpp:10:15"
    ]  # fmt: skip
    mapped = await ask("lynkr_index_map", {"tokens": 200, "focus": ["app/models.py"]})
    assert "app/models.py:" in str(mapped.content) and "class User(Model):" in str(mapped.content)
    (tree / "app/models.py").write_text("def renamed():\n    pass\n")
    rebuilt = await ask("lynkr_index_rebuild", {})
    assert "1 parsed" in str(rebuilt.content) and f"{len(FIXTURES)} files" in str(rebuilt.content)
    gone = await ask("lynkr_index_symbols", {"query": "persist"})
    assert str(gone.content) == "no definition matches that"
    nowhere = await ask("lynkr_index_definition", {"path": "app/models.py", "line": 40,
                                                   "column": 1})  # fmt: skip
    assert nowhere.is_error and "fewer than 40 lines" in str(nowhere.content)
    outside = await ask("lynkr_index_outline", {"path": "../elsewhere.py"})
    assert outside.is_error


async def test_the_policy_sees_index_tools(tree: Path, context: Callable[..., ToolContext]) -> None:
    registry = tool_registry(["index"])
    deny = Policy.from_data({"tools": {"deny": ["index.rebuild"]}})
    refused = await registry.execute("lynkr_index_rebuild", {}, context(deny))
    assert refused.is_error and str(refused.content).startswith("refused by policy rule")
