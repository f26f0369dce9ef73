"""Shared fixtures: the three shipped policies and a workspace with traps in it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lynkr.config.policy import load_policy_data
from lynkr.policy import Policy, ToolContext, Workspace

POLICIES = Path(__file__).resolve().parents[2] / "policies"
NAMES = ("default", "strict", "read-only")


def shipped(name: str) -> Policy:
    return Policy.from_data(load_policy_data(POLICIES / f"{name}.yaml"))


@pytest.fixture(scope="session")
def policies() -> dict[str, Policy]:
    return {name: shipped(name) for name in NAMES}


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """`base/root` is the workspace; `base/root-evil` its sibling; `base/home` is `~`.

    Inside: src/app.py, a symlink `etc` → /etc, `escape` → the sibling, `inner`
    → src (a symlink that stays inside), and a .env.
    """
    base = tmp_path_factory.mktemp("ws")
    root, evil, home = base / "root", base / "root-evil", base / "home"
    for directory in (root / "src", evil, home / ".ssh"):
        directory.mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n")
    (root / ".env").write_text("KEY=1\n")
    (evil / "secret").write_text("s\n")
    os.symlink("/etc", root / "etc")
    os.symlink(evil, root / "escape")
    os.symlink(root / "src", root / "inner")
    return Workspace(str(root), home=str(home))


@pytest.fixture(scope="session")
def context(workspace: Workspace) -> ToolContext:
    return ToolContext(workspace=workspace)
