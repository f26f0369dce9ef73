"""lynkr running tools itself: server mode for a plain HTTP client, hybrid mode with Claude Code.

With `tools.execution: server`, a plain POST to /v1/messages can ask "run the tests and
commit if they pass" against a fake upstream that scripts the model, and it happens in a
temp repository; with the default config nothing on the host can be touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from dulwich import porcelain
from dulwich.repo import Repo
from fakes.anthropic_upstream import FakeAnthropic, message_scenario, text, tool_use

from e2e.test_claude_code import claude_bin, describe, run_claude

pytestmark = pytest.mark.e2e

__all__ = ["claude_bin"]


def repository(root: Path) -> Path:
    """A git repository (dulwich) with one committed file and a passing test command."""
    root.mkdir(parents=True)
    porcelain.init(str(root))
    (root / "app.py").write_text("VALUE = 1\n")
    porcelain.add(str(root), paths=[str(root / "app.py")])
    porcelain.commit(str(root), message=b"first", author=b"T <t@x>", committer=b"T <t@x>")
    return root


def server_config(root: Path, mode: str) -> dict[str, Any]:
    return {
        "tools": {
            "execution": mode,
            "workspace": {"root": str(root)},
            "enabled": ["files", "git", "tests"],
            "tests": {"profiles": {"unit": {"command": "python -c 'print(\"3 passed\")'"}}},
            "git": {"author": "lynkr <lynkr@example.invalid>"},
        }
    }


def call(name: str, arguments: dict[str, Any], tool_id: str) -> Any:
    return tool_use(preamble=f"Calling {name}.", name=name, tool_input=arguments, tool_id=tool_id)


def ask(url: str, *, stream: bool) -> httpx.Response:
    body = {
        "model": "claude-x",
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "run the tests and commit if they pass"}],
    }
    if stream:
        body["stream"] = True
    with httpx.Client(timeout=30, trust_env=False) as client:
        return client.post(f"{url}/v1/messages", json=body)


def script_the_task(fake: FakeAnthropic) -> None:
    fake.script(
        call("lynkr_tests_run", {"profile": "unit"}, "toolu_1"),
        call("lynkr_file_edit", {"file_path": "app.py", "old_string": "VALUE = 1",
                                 "new_string": "VALUE = 2"}, "toolu_2"),
        call("lynkr_git_stage", {"all": True}, "toolu_3"),
        call("lynkr_git_commit", {"message": "Bump VALUE after green tests"}, "toolu_4"),
        text("Tests passed; the change is committed."),
    )  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_server_mode_runs_the_tests_and_commits(
    lynkr_server: Callable[..., Any], fake: FakeAnthropic, tmp_path: Path, stream: bool
) -> None:
    root = repository(tmp_path / "repo")
    server = lynkr_server(f"server-mode-{stream}", extra=server_config(root, "server"))
    script_the_task(fake)
    response = ask(server.url, stream=stream)
    assert response.status_code == 200, response.text
    message = parse_sse(response.text) if stream else response.json()

    assert message["stop_reason"] == "end_turn"
    assert all(block["type"] == "text" for block in message["content"])  # no lynkr tool_use
    said = "\n".join(block["text"] for block in message["content"])
    assert "[lynkr ran lynkr_tests_run" in said and "3 passed" in said
    assert said.endswith("Tests passed; the change is committed.")
    assert message["usage"]["output_tokens"] == 50  # five steps of 10 tokens, summed

    # It really happened in the repository.
    assert (root / "app.py").read_text() == "VALUE = 2\n"
    head = Repo(str(root))[Repo(str(root)).head()]
    assert head.message == b"Bump VALUE after green tests\n" or head.message.startswith(b"Bump")
    # The model got every result, and only lynkr's tools were offered.
    requests = fake.message_requests()
    assert len(requests) == 5
    offered = {tool["name"] for tool in requests[0].body["tools"]}
    assert offered and all(name.startswith("lynkr_") for name in offered)
    results = [m for m in requests[4].body["messages"] if m["role"] == "user"][1:]
    ids = [block["tool_use_id"] for m in results for block in m["content"]]
    assert ids == ["toolu_1", "toolu_2", "toolu_3", "toolu_4"]
    assert not any(block.get("is_error") for m in results for block in m["content"])


def test_limits_end_the_turn_with_pause_turn(
    lynkr_server: Callable[..., Any], fake: FakeAnthropic, tmp_path: Path
) -> None:
    root = repository(tmp_path / "repo")
    config = server_config(root, "server")
    config["tools"]["limits"] = {"max_steps": 2}
    server = lynkr_server("server-mode-limits", extra=config)
    fake.default = call("lynkr_git_status", {}, "toolu_again")
    message = ask(server.url, stream=False).json()
    assert message["stop_reason"] == "pause_turn"
    assert "max_steps (2) reached" in message["content"][-1]["text"]
    assert len(fake.message_requests()) == 2


def test_policy_denials_come_back_as_tool_errors(
    lynkr_server: Callable[..., Any], fake: FakeAnthropic, tmp_path: Path
) -> None:
    root = repository(tmp_path / "repo")
    server = lynkr_server("server-mode-escape", extra=server_config(root, "server"))
    fake.script(
        call("lynkr_file_read", {"file_path": "../../../../etc/passwd"}, "toolu_x"),
        text("I could not read it."),
    )
    message = ask(server.url, stream=False).json()
    assert message["stop_reason"] == "end_turn"
    result = fake.message_requests()[1].body["messages"][-1]["content"][0]
    assert result["is_error"] is True
    assert "files.workspace_only" in json.dumps(result["content"])
    assert "root:" not in json.dumps(message)  # /etc/passwd never reached the client


def test_default_config_runs_no_tool(
    lynkr_server: Callable[..., Any], fake: FakeAnthropic, tmp_path: Path
) -> None:
    server = lynkr_server("client-mode-default")
    fake.script(call("lynkr_shell", {"command": "touch /tmp/lynkr-pwned"}, "toolu_c"))
    message = ask(server.url, stream=False).json()
    # The call goes back to the client untouched; lynkr ran nothing and offered nothing.
    assert message["stop_reason"] == "tool_use"
    assert message["content"][-1]["name"] == "lynkr_shell"
    assert "tools" not in fake.message_requests()[0].body
    assert not Path("/tmp/lynkr-pwned").exists()


def test_claude_code_in_hybrid_mode_sees_lynkr_tools_and_runs_its_own(
    claude_bin: Path,
    lynkr_server: Callable[..., Any],
    fake: FakeAnthropic,
    tmp_path: Path,
) -> None:
    root = repository(tmp_path / "repo")
    server = lynkr_server("hybrid-mode", extra=server_config(root, "hybrid"))
    fake.script(
        call("lynkr_git_status", {}, "toolu_status"),
        tool_use("echo LYNKR_CLIENT_BASH", tool_id="toolu_bash"),
        text("Status seen and Bash ran. Done."),
    )
    fake.default = text("unexpected extra request")
    done, result = run_claude(
        claude_bin, server.url, tmp_path, "check git then echo", "--allowedTools", "Bash"
    )
    assert done.returncode == 0, describe(done, fake)
    assert "Done." in result.get("result", ""), describe(done, fake)
    first, internal, from_cc = fake.message_requests()[:3]
    names = {tool["name"] for tool in first.body["tools"]}
    assert {"Bash", "lynkr_git_status"} <= names  # Claude Code's tools and lynkr's
    # lynkr ran its own tool and continued upstream with the result...
    assert internal.body["messages"][-1]["content"][0]["tool_use_id"] == "toolu_status"
    # ...then Claude Code ran Bash on its side and sent the result back.
    returned = json.dumps(from_cc.body["messages"][-1])
    assert "toolu_bash" in returned and "LYNKR_CLIENT_BASH" in returned
    # What lynkr did is in the history as text, never as a tool_use Claude Code would run.
    history = json.dumps(from_cc.body["messages"])
    assert "[lynkr ran lynkr_git_status" in history
    assert '"name": "lynkr_git_status"' not in history.replace('":"', '": "')


def parse_sse(raw: str) -> dict[str, Any]:
    """Assemble a streamed message (checks the grammar on the way)."""
    message: dict[str, Any] = {}
    blocks: dict[int, dict[str, Any]] = {}
    names = []
    for frame in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        data = json.loads(lines["data"])
        assert data["type"] == lines["event"]
        names.append(lines["event"])
        if data["type"] == "message_start":
            message = data["message"]
        elif data["type"] == "content_block_start":
            assert data["index"] == len(blocks)  # strictly sequential blocks
            blocks[data["index"]] = dict(data["content_block"])
        elif data["type"] == "content_block_delta" and data["delta"]["type"] == "text_delta":
            blocks[data["index"]]["text"] += data["delta"]["text"]
        elif data["type"] == "message_delta":
            message.update(data["delta"], usage=data["usage"])
    assert names.count("message_start") == names.count("message_stop") == 1
    return {**message, "content": [blocks[i] for i in sorted(blocks)]}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_step_mixing_both_kinds_runs_lynkrs_then_returns_the_clients(
    lynkr_server: Callable[..., Any], fake: FakeAnthropic, tmp_path: Path, stream: bool
) -> None:
    root = repository(tmp_path / "repo")
    server = lynkr_server(f"hybrid-mixed-{stream}", extra=server_config(root, "hybrid"))
    fake.script(
        message_scenario(
            [
                {"type": "text", "text": "Both at once."},
                {"type": "tool_use", "id": "toolu_l", "name": "lynkr_git_status", "input": {}},
                {"type": "tool_use", "id": "toolu_c", "name": "Bash", "input": {"command": "ls"}},
            ],
            "tool_use",
        )
    )
    response = ask(server.url, stream=stream)
    message = parse_sse(response.text) if stream else response.json()
    # lynkr's call ran (its note is there); the client's call is returned for the client to run.
    assert message["stop_reason"] == "tool_use"
    kinds = [(block["type"], block.get("name")) for block in message["content"]]
    assert ("tool_use", "Bash") in kinds and ("tool_use", "lynkr_git_status") not in kinds
    notes = [block["text"] for block in message["content"] if block["type"] == "text"]
    assert any(note.startswith("[lynkr ran lynkr_git_status") for note in notes)
    assert len(fake.message_requests()) == 1  # no further step: the client's call is pending
