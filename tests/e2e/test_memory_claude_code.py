"""Long-term memory with the real Claude Code CLI through `lynkr serve`.

What a user tells one `claude -p` session in a project directory reaches the upstream in a
later session of the same directory — appended after the request's last cache breakpoint —
never in another directory's session, and `lynkr memory forget` takes it away.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REPO, LynkrServer
from fakes.anthropic_upstream import FakeAnthropic, text

from e2e.test_claude_code import claude_bin, describe, run_claude

__all__ = ["claude_bin"]
pytestmark = pytest.mark.e2e


def prompt_blocks(record: Any) -> list[dict[str, Any]]:
    """The blocks of the last user message (Claude Code may follow it with system ones)."""
    prompt = [m for m in record.body["messages"] if m["role"] == "user"][-1]
    content = prompt["content"]
    return content if isinstance(content, list) else [{"type": "text", "text": content}]


def memories(server: LynkrServer, workspace: str, query: str) -> list[dict[str, Any]]:
    params = {"workspace": workspace, "q": query}
    return list(httpx.get(f"{server.url}/v1/lynkr/memories", params=params).json()["data"])


def test_a_fact_told_in_one_session_reaches_the_next_one_in_the_same_project(
    claude_bin: Path,
    fake: FakeAnthropic,
    lynkr_server: Callable[..., LynkrServer],
    tmp_path: Path,
) -> None:
    server = lynkr_server("memory-cc", extra={"memory": {"enabled": True}})
    project = tmp_path / "project"
    project.mkdir()
    workspace = str((project / "work").resolve())
    fake.default = text("Noted: port 5433.")
    done, _ = run_claude(claude_bin, server.url, project,
                         "Remember that the staging database listens on port 5433.")  # fmt: skip
    assert done.returncode == 0, describe(done, fake)
    deadline = time.monotonic() + 10
    while not (found := memories(server, workspace, "staging database port")):
        assert time.monotonic() < deadline, (workspace, server.stderr_text())
        time.sleep(0.1)
    assert "5433" in found[0]["content"]

    fake.reset()
    fake.default = text("It listens on 5433.")
    done, _ = run_claude(claude_bin, server.url, project,
                         "Which port does the pre-production postgres use?")  # fmt: skip
    assert done.returncode == 0, describe(done, fake)
    asked = [r for r in fake.message_requests() if "postgres" in str(prompt_blocks(r))]
    assert asked, describe(done, fake)
    blocks = prompt_blocks(asked[-1])
    assert "lynkr-memory" in blocks[-1]["text"] and "5433" in blocks[-1]["text"]
    # Claude Code put its breakpoint on its own last block; the memory comes after it.
    marked = [i for i, block in enumerate(blocks) if "cache_control" in block]
    assert marked and marked[-1] < len(blocks) - 1, blocks

    other = tmp_path / "other"
    other.mkdir()
    fake.reset()
    fake.default = text("No idea.")
    done, _ = run_claude(claude_bin, server.url, other,
                         "Which port does the pre-production postgres use?")  # fmt: skip
    assert done.returncode == 0, describe(done, fake)
    assert not any("lynkr-memory" in str(r.body) for r in fake.message_requests())

    forget = subprocess.run(
        [sys.executable, "-m", "lynkr", "memory", "forget", "staging database port",
         "--workspace", workspace, "--yes", "--config", str(server.config_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert forget.returncode == 0 and "deleted 1" in forget.stdout, forget.stderr
    fake.reset()
    fake.default = text("No idea.")
    done, _ = run_claude(claude_bin, server.url, project,
                         "Which port does the pre-production postgres use?")  # fmt: skip
    assert done.returncode == 0, describe(done, fake)
    assert not any("lynkr-memory" in str(r.body) for r in fake.message_requests())
