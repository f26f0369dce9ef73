"""Long-term memory through `lynkr serve`: what one session learns reaches a later one in the
same workspace, after the last cache breakpoint, byte for byte stable; never another workspace;
`lynkr memory forget` takes it away."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REPO, LynkrServer
from fakes.anthropic_upstream import FakeAnthropic, text, tool_use

pytestmark = pytest.mark.e2e

SHOP = "/home/dev/shop"
BREAKPOINT = b'"cache_control":{"type":"ephemeral"}'
MEMORY = {"memory": {"enabled": True}}


def system(workspace: str) -> list[dict[str, Any]]:
    return [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.abc;"},
        {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
        {
            "type": "text",
            "text": f"<env>\n - Primary working directory: {workspace}\n</env>",
            "cache_control": {"type": "ephemeral"},
        },
    ]


def user(prompt: str) -> dict[str, Any]:
    """A user turn as Claude Code sends the newest one: the breakpoint on its last block."""
    return {
        "role": "user",
        "content": [{"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}}],
    }


def plain(message: dict[str, Any]) -> dict[str, Any]:
    """The same turn as Claude Code resends it later: its breakpoint moved on."""
    return {
        "role": message["role"],
        "content": [
            {k: v for k, v in b.items() if k != "cache_control"} for b in message["content"]
        ],
    }


def body(workspace: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": system(workspace),
        "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}],
        "messages": messages,
    }


def post(server: LynkrServer, payload: dict[str, Any], session: str) -> httpx.Response:
    response = httpx.post(
        f"{server.url}/v1/messages",
        json=payload,
        headers={"x-claude-code-session-id": session, "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def memory_cli(server: LynkrServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lynkr", "memory", *args, "--config", str(server.config_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def wait_for_memory(server: LynkrServer, workspace: str, words: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = httpx.get(
            f"{server.url}/v1/lynkr/memories", params={"workspace": workspace, "q": words}
        ).json()["data"]
        if found:
            return list(found)
        time.sleep(0.05)
    return []


def unmarked(raw: bytes) -> bytes:
    return raw.replace(b"," + BREAKPOINT, b"")


def last_text(record: Any) -> str:
    return str(record.body["messages"][-1]["content"][-1].get("text", ""))


@pytest.fixture
def server(fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer]) -> LynkrServer:
    return lynkr_server("memory", extra=MEMORY)


def test_a_fact_follows_the_workspace_into_the_next_session(
    server: LynkrServer, fake: FakeAnthropic
) -> None:
    fake.default = text("Noted.")
    told = user("Remember that the staging database listens on port 5433. Now fix the login bug.")
    post(server, body(SHOP, [told]), "session-one")
    assert "lynkr-memory" not in last_text(fake.last_message_request())  # nothing known yet
    assert wait_for_memory(server, SHOP, "staging database port"), server.stderr_text()

    later = post(server, body(SHOP, [user("which port is the pre-production postgres on?")]),
                 "session-two")  # fmt: skip
    upstream = fake.last_message_request()
    block = last_text(upstream)
    assert "lynkr-memory" in block and "listens on port 5433" in block
    assert later.headers["x-lynkr-memories"] == "1"

    elsewhere = post(server, body("/home/dev/other", [user("which port is the postgres on?")]),
                     "session-three")  # fmt: skip
    assert "lynkr-memory" not in last_text(fake.last_message_request())
    assert "x-lynkr-memories" not in elsewhere.headers

    listed = memory_cli(server, "forget", "staging database port", "--workspace", SHOP)
    assert listed.returncode == 0 and "5433" in listed.stdout and "--yes" in listed.stderr
    assert wait_for_memory(server, SHOP, "staging database port")  # listing deletes nothing
    gone = memory_cli(server, "forget", "staging database port", "--workspace", SHOP, "--yes")
    assert gone.returncode == 0 and "deleted 1" in gone.stdout, gone.stderr
    post(server, body(SHOP, [user("which port is the pre-production postgres on?")]), "four")
    without = fake.last_message_request().raw_body
    assert b"lynkr-memory" not in without
    # The same request with and without the memory: identical up to its last breakpoint.
    cut = without.rindex(BREAKPOINT) + len(BREAKPOINT)
    assert upstream.raw_body.startswith(without[:cut])
    assert len(upstream.raw_body) > len(without)


def test_three_turns_keep_every_cached_prefix(server: LynkrServer, fake: FakeAnthropic) -> None:
    workspace = "/home/dev/cache-check"
    added = memory_cli(server, "add", "Deploys go out on Tuesdays through GitHub Actions",
                       "--workspace", workspace)  # fmt: skip
    assert added.returncode == 0, added.stderr
    fake.default = text("Sure.")
    prompts = [
        "when do deploys go out?",
        "do deploys run in GitHub Actions?",
        "deploys on Tuesday?",
    ]
    history: list[dict[str, Any]] = []
    sent: list[bytes] = []
    for number, prompt in enumerate(prompts):
        history = [plain(m) for m in history] + [user(prompt)]
        post(server, body(workspace, history), "cache-check")
        record = fake.last_message_request()
        assert "lynkr-memory" in last_text(record), f"turn {number}: no memory added"
        sent.append(record.raw_body)
        history.append({"role": "assistant", "content": [{"type": "text", "text": "Sure."}]})
    # Claude Code moves its one message breakpoint to the newest turn, so the marker itself
    # leaves the older block; a provider caches content, not markers. Everything else up to
    # each request's last breakpoint must start the next request, byte for byte.
    for before, after in itertools.pairwise(sent):
        cached = before[: before.rindex(b"," + BREAKPOINT)]
        assert unmarked(after).startswith(unmarked(cached)), "a byte before the breakpoint changed"


def test_tool_results_and_side_requests_get_nothing(
    server: LynkrServer, fake: FakeAnthropic
) -> None:
    workspace = "/home/dev/side"
    assert memory_cli(server, "add", "Titles are short", "--workspace", workspace).returncode == 0
    fake.default = text('{"title": "Short titles"}')
    title = body(workspace, [user("titles are short?")])
    title["tools"] = []
    post(server, title, "side")
    assert b"lynkr-memory" not in fake.last_message_request().raw_body
    loop = body(workspace, [
        plain(user("are titles short?")),
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash",
                                           "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a"}]},
    ])  # fmt: skip
    post(server, loop, "side")
    assert fake.last_message_request().body["messages"][1:] == loop["messages"][1:]


def test_the_model_s_memory_tools_and_the_reflector_in_server_mode(
    fake: FakeAnthropic, lynkr_server: Callable[..., LynkrServer], tmp_path: Path
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "app.py").write_text("VALUE = 1\n")
    server = lynkr_server(
        "memory-tools",
        extra={**MEMORY, "tools": {"execution": "server", "workspace": {"root": str(root)},
                                   "enabled": ["files"]}},
    )  # fmt: skip
    workspace = "/home/dev/tools-check"

    def call(name: str, arguments: dict[str, Any], tool_id: str) -> Any:
        return tool_use(preamble="", name=name, tool_input=arguments, tool_id=tool_id)

    fake.script(
        call("lynkr_memory_add", {"content": "The release branch is called trunk",
                                  "type": "fact"}, "toolu_1"),
        call("lynkr_file_read", {"file_path": "app.py"}, "toolu_2"),
        text("Kept it."),
    )  # fmt: skip
    post(
        server, body(workspace, [user("keep in mind the release branch name, check app.py")]), "t1"
    )
    results = [m for r in fake.message_requests()[-2:] for m in r.body["messages"]]
    tool_results = [b for m in results if isinstance(m["content"], list) for b in m["content"]
                    if b.get("type") == "tool_result"]  # fmt: skip
    assert any("stored" in str(b["content"]) for b in tool_results), tool_results
    assert wait_for_memory(server, workspace, "release branch")

    fake.script(
        call("lynkr_memory_search", {"query": "release branch"}, "toolu_3"),
        call("lynkr_memory_stats", {}, "toolu_4"),
        text("It is trunk."),
    )
    post(server, body(workspace, [user("what is our release branch called?")]), "t2")
    tool_text = [str(b.get("content")) for m in fake.last_message_request().body["messages"]
                 if isinstance(m["content"], list) for b in m["content"]
                 if b.get("type") == "tool_result"]  # fmt: skip
    assert any("The release branch is called trunk" in t for t in tool_text), tool_text
    assert any("active memories" in t for t in tool_text), tool_text
    # Another workspace's model sees none of it.
    fake.script(call("lynkr_memory_search", {"query": "release branch"}, "toolu_5"), text("?"))
    post(server, body("/home/dev/elsewhere", [user("what is our release branch called?")]), "t3")
    last = fake.last_message_request().body["messages"][-1]["content"]
    assert "no memory matches" in str(last)
    # The Reflector kept the runs of two or more tool calls as skills of their workspace.
    skills: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while len(skills) < 2 and time.monotonic() < deadline:
        listed = httpx.get(f"{server.url}/v1/lynkr/memories",
                           params={"workspace": workspace, "limit": 50}).json()["data"]  # fmt: skip
        skills = [m for m in listed if m["type"] == "skill"]
        time.sleep(0.05)
    assert any("memory_add → file_read worked" in s["content"] for s in skills), skills
    assert any("memory_search → memory_stats worked" in s["content"] for s in skills), skills


def test_a_translated_provider_gets_the_memories_too(
    lynkr_server: Callable[..., LynkrServer], openai_fake: Any
) -> None:
    server = lynkr_server(
        "memory-openai",
        providers={"gpt": {"type": "openai", "base_url": f"{openai_fake.url}/v1",
                           "api_key": "sk-test-memory-openai", "model": "gpt-test"}},
        pools={"main": {"providers": ["gpt"]}},
        extra=MEMORY,
    )  # fmt: skip
    workspace = "/home/dev/translated"
    added = memory_cli(server, "add", "The API gateway is Kong", "--workspace", workspace)
    assert added.returncode == 0, added.stderr
    post(server, body(workspace, [user("which API gateway do we run?")]), "translated")
    sent = openai_fake.last_chat_request().body["messages"]
    last_user = [m for m in sent if m["role"] == "user"][-1]
    assert "The API gateway is Kong" in str(last_user["content"])
    assert "lynkr-memory" not in str([m for m in sent if m["role"] == "system"])


def test_a_corrupt_memory_file_leaves_serve_serving(fake: FakeAnthropic, tmp_path: Path) -> None:
    from conftest import lynkr_config

    data = tmp_path / "data"
    data.mkdir()
    (data / "memory.sqlite3").write_bytes(b"not a database, whatever it once was" * 64)
    config = tmp_path / "lynkr.yaml"
    lynkr_config(fake.url, data, path=config, extra=MEMORY)
    server = LynkrServer(config, tmp_path).start()
    try:
        fake.default = text("Still here.")
        answer = post(server, body(SHOP, [user("remember that we deploy on Fridays")]), "c")
        assert "Still here." in answer.text
        assert "memory_disabled" in server.stderr_text()
        assert "file is not a database" in server.stderr_text()
    finally:
        server.stop()
