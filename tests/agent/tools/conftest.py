"""Fixtures for the server-side tools: a workspace, a data dir, a registry, a way to call a tool.

``workspace``   a real directory `tmp_path/ws` (resolved); outside it, `tmp_path/outside.txt`
                holds OUTSIDE_TEXT and `tmp_path/ws-evil/x.txt` is the sibling-prefix trap.
``tools``       `await tools(name, arguments, policy=None, **context_fields)` runs one call
                through a registry with every family enabled and returns the `ToolResult`
                (in a @pytest.mark.anyio test, bounded like every such test).
``context``     `context(policy=None, **fields)` builds the `ToolContext` `tools` uses.
``store``       the `SQLiteToolStore` in the data dir that every context shares.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from dulwich import porcelain
from dulwich.repo import Repo

from lynkr.agent.tools import (
    ToolContext,
    ToolRegistry,
    ToolResult,
    build_registry,
    scrubbed_environment,
)
from lynkr.stores.tools import DATABASE_NAME, SQLiteToolStore

OUTSIDE_TEXT = "OUTSIDE-THE-WORKSPACE"
CANARY_KEY = "sk-ant-canary-0123456789abcdefghijklmnop"
AUTHOR = "Lynkr Test <test@example.com>"
ToolCaller = Callable[..., Awaitable[ToolResult]]


def tool_options(**overrides: Any) -> dict[str, Any]:
    """A `tools:` section with every family on and two quick test profiles."""
    python = sys.executable
    options: dict[str, Any] = {
        "execution": "server",
        "enabled": ["files", "shell", "git", "tests", "tasks"],
        "shell": {"timeout_seconds": 10, "max_output_bytes": 4096},
        "git": {"author": AUTHOR},
        "tests": {
            "profiles": {
                "unit": {"command": f"{python} -c \"print('all good')\"", "timeout_seconds": 30},
                "broken": {
                    "command": f"{python} -c \"import sys; print('1 failed'); sys.exit(1)\"",
                },
                "slow": {"command": "sleep 30", "timeout_seconds": 0.5},
            }
        },
    }
    options.update(overrides)
    return options


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (tmp_path / "outside.txt").write_text(OUTSIDE_TEXT)
    (tmp_path / "ws-evil").mkdir()
    (tmp_path / "ws-evil" / "x.txt").write_text(OUTSIDE_TEXT)
    return root.resolve()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[SQLiteToolStore]:
    """The tools' state in `data_dir/tools.sqlite3`, closed after the test."""
    tool_store = SQLiteToolStore(data_dir / DATABASE_NAME)
    yield tool_store
    asyncio.run(tool_store.close())


@pytest.fixture
def registry() -> ToolRegistry:
    return build_registry(tool_options(), secrets=[CANARY_KEY])


@pytest.fixture
def context(workspace: Path, store: SQLiteToolStore) -> Callable[..., ToolContext]:
    def make(policy: object | None = None, **fields: Any) -> ToolContext:
        env = scrubbed_environment(os.environ, [CANARY_KEY])
        values: dict[str, Any] = {
            "workspace": workspace,
            "store": store,
            "policy": policy,
            "env": env,
            "session_id": "test-session",
        }
        values.update(fields)
        return ToolContext(**values)

    return make


@pytest.fixture
def tools(registry: ToolRegistry, context: Callable[..., ToolContext]) -> ToolCaller:
    async def call(
        name: str, arguments: dict[str, Any], policy: object | None = None, **fields: Any
    ) -> ToolResult:
        return await registry.execute(name, arguments, context(policy, **fields))

    return call


@pytest.fixture
def git_repo(workspace: Path, tmp_path: Path) -> Path:
    """The workspace as a dulwich repository with one commit and a bare `origin` remote."""
    identity = AUTHOR.encode()
    with closing(porcelain.init(str(workspace))) as repo:
        (workspace / "README.md").write_text("hello\n")
        porcelain.add(repo, paths=[str(workspace / "README.md")])
        porcelain.commit(
            repo, message=b"initial", author=identity, committer=identity, no_verify=True
        )
    remote = tmp_path / "remote.git"
    with closing(porcelain.init(str(remote), bare=True)):
        pass
    with closing(Repo(str(workspace))) as repo:
        porcelain.remote_add(repo, "origin", str(remote))
    return workspace
