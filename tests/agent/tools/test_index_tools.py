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


async def test_edited_files_are_refreshed_without_a_sweep_and_a_late_sweep_sees_the_rest(
    tree: Path, context: Callable[..., ToolContext]
) -> None:
    import time

    from lynkr.repoindex import dirty

    registry = tool_registry(["index"])
    ask = lambda name, arguments: registry.execute(name, arguments, context())  # noqa: E731
    await ask("lynkr_index_symbols", {"query": "persist"})  # the first call sweeps
    (tree / "app" / "told.py").write_text("def told_about():\n    pass\n")
    (tree / "app" / "untold.py").write_text("def nobody_said():\n    pass\n")
    dirty.mark(tree, [str(tree / "app" / "told.py")])
    told = await ask("lynkr_index_symbols", {"query": "told_about"})
    assert "app/told.py:1:5" in str(told.content)
    untold = await ask("lynkr_index_symbols", {"query": "nobody_said"})
    assert str(untold.content) == "no definition matches that"  # no sweep: not seen yet
    dirty.swept(tree, at=time.monotonic() - dirty.SWEEP_EVERY - 1)  # the last sweep is old
    late = await ask("lynkr_index_symbols", {"query": "nobody_said"})
    assert "app/untold.py:1:5" in str(late.content)


def test_the_client_s_edits_are_read_from_the_last_assistant_message() -> None:
    from lynkr.agent.loop import client_edits

    edit = {
        "type": "tool_use",
        "id": "t1",
        "name": "Edit",
        "input": {"file_path": "/w/app.py", "old_string": "a", "new_string": "b"},
    }
    notebook = {
        "type": "tool_use",
        "id": "t2",
        "name": "NotebookEdit",
        "input": {"notebook_path": "/w/n.ipynb"},
    }
    read = {"type": "tool_use", "id": "t3", "name": "Read", "input": {"file_path": "/w/x.py"}}
    body = {"messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t0", "name": "Write",
                                           "input": {"file_path": "/w/old.py"}}]},
        {"role": "user", "content": "next"},
        {"role": "assistant", "content": [edit, notebook, read]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1"}]},
    ]}  # fmt: skip
    assert client_edits(body) == ["/w/app.py", "/w/n.ipynb"]
    assert client_edits({"messages": [{"role": "user", "content": "hi"}]}) == []
