"""What a turn offers to remember, which workspace a request is in, where memories go."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from lynkr.memory.extract import candidates, human_text, side_request
from lynkr.memory.inject import MARKER, memory_block, newest_prompt, with_memories
from lynkr.memory.model import Hit, Memory
from lynkr.memory.workspace import workspace_of

# Extraction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (
            "Remember that the staging DB listens on port 5433.",
            [("the staging DB listens on port 5433.", "fact")],
        ),
        ("please remember: I prefer small commits", [("I prefer small commits", "preference")]),
        (
            "From now on, never edit files under migrations/.",
            [("From now on, never edit files under migrations/.", "preference")],
        ),
        (
            "We always squash commits when merging.",
            [("We always squash commits when merging.", "preference")],
        ),
        (
            "We decided to use SQLAlchemy 2 for the data layer.",
            [("We decided to use SQLAlchemy 2 for the data layer.", "decision")],
        ),
        (
            "Our CI runs on GitHub Actions with Python 3.12.",
            [("Our CI runs on GitHub Actions with Python 3.12.", "fact")],
        ),
        ("Fix the failing test in test_api.py", []),
        ("Should we always squash commits?", []),
        ("Maybe our CI runs on Jenkins, not sure.", []),
        ("Remember that the deploy key is rotated monthly. #private", []),
        ("<private>We always use the prod password hunter2.</private> Fix the login bug.", []),
    ],
)
def test_user_candidates(user: str, expected: list[tuple[str, str]]) -> None:
    found = candidates(user, "")
    assert [(c.content, c.type) for c in found] == expected
    assert all(c.source == "user" for c in found)


@pytest.mark.parametrize(
    ("assistant", "expected"),
    [
        (
            "I checked `pyproject.toml`: the project uses Poetry for packaging.",
            ["I checked `pyproject.toml`: the project uses Poetry for packaging."],
        ),
        (
            "The test suite uses pytest, as configured in `setup.cfg`.",
            ["The test suite uses pytest, as configured in `setup.cfg`."],
        ),
        ("The project probably uses Poetry.", []),  # a guess
        ("I'll check whether the project uses Poetry in `pyproject.toml`.", []),  # a plan
        ("Does the project use Poetry?", []),
        ("The project uses Poetry.", []),  # nothing says it was verified
        ("```\nthe project uses `x`\n```", []),  # code is not a statement
    ],
)
def test_assistant_candidates(assistant: str, expected: list[str]) -> None:
    found = candidates("Fix the build", assistant)
    assert [c.content for c in found] == expected
    assert all(c.source == "assistant" and c.type == "fact" for c in found)


def test_emphasis_reaches_user_candidates_and_duplicates_go() -> None:
    found = candidates(
        "Remember: we ALWAYS run pytest with -x! Remember: we ALWAYS run pytest with -x!", ""
    )
    assert len(found) == 1 and found[0].emphasis >= 0.6


def claude_code_body(prompt: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.abc;"},
            {
                "type": "text",
                "text": "You are Claude Code.",
                "cache_control": {"type": "ephemeral"},
            },
            {
                "type": "text",
                "text": "Here is useful information about the environment you are running in:\n"
                "<env>\n - Primary working directory: /home/dev/shop/\n"
                " - Is a git repo: true\n</env>",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "<system-reminder>\nToday is Monday.\n</system-reminder>",
                    },
                    {"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}},
                ],
            }
        ],
        **extra,
    }


def test_human_text_skips_reminders_and_tool_results() -> None:
    body = claude_code_body("show me hello.txt")
    assert human_text(body["messages"][0]) == "show me hello.txt"
    results = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}],
    }
    assert human_text(results) == ""
    assert human_text({"role": "assistant", "content": "hi"}) == ""


@pytest.mark.parametrize(
    ("changes", "side"),
    [
        ({}, False),
        ({"tools": []}, True),  # the title request
        ({"max_tokens": 1}, True),  # a quota probe
        ({"tool_choice": {"type": "tool", "name": "web_search"}}, True),
    ],
)
def test_side_requests(changes: dict[str, Any], side: bool) -> None:
    assert side_request({**claude_code_body("hello there"), **changes}) is side


def test_compaction_is_a_side_request() -> None:
    assert side_request(
        claude_code_body("CRITICAL: Respond with TEXT ONLY. Do NOT call any tools.")
    )


# Workspace -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "header", "expected"),
    [
        (claude_code_body("hi"), None, "/home/dev/shop"),
        (claude_code_body("hi"), "/other/project/", "/other/project"),
        ({"system": "Working directory: /srv/app\nmore", "messages": []}, None, "/srv/app"),
        ({"system": "You are helpful.", "messages": []}, None, "default"),
        # only a line that is the label counts, not the words inside a sentence
        (
            {"system": "say Primary working directory: /x\n - Primary working directory: /real"},
            None,
            "/real",
        ),
        ({"system": "Primary working directory:   \nWorking directory: /old"}, None, "/old"),
        ({"messages": []}, "  ", "default"),
    ],
)
def test_workspace_of(body: dict[str, Any], header: str | None, expected: str) -> None:
    assert workspace_of(body, header) == expected


# Injection ----------------------------------------------------------------------------------


def hit(content: str, memory_type: str = "preference") -> Hit:
    stored = Memory(1, content, memory_type, "/ws", None, 0.7, 0.5, 0.0, 0.0)
    return Hit(stored, 0.9, 0.8)


def _prefix_to_last_breakpoint(body: dict[str, Any]) -> bytes:
    raw = orjson.dumps(body)
    end = raw.rfind(b'"cache_control":{"type":"ephemeral"}')
    return raw[: end + len(b'"cache_control":{"type":"ephemeral"}')]


def test_memories_go_after_the_last_breakpoint_and_the_input_is_untouched() -> None:
    body = claude_code_body("set up the database")
    before = copy.deepcopy(body)
    changed = with_memories(body, [hit("The staging DB listens on port 5433")])
    assert body == before
    assert changed is not None
    last = changed["messages"][-1]["content"]
    assert last[:-1] == before["messages"][-1]["content"]
    assert last[-1] == memory_block([hit("The staging DB listens on port 5433")])
    assert MARKER in last[-1]["text"] and "- [preference] The staging DB" in last[-1]["text"]
    assert orjson.dumps(changed).startswith(_prefix_to_last_breakpoint(before))


def test_nothing_is_added_without_hits_or_a_new_prompt() -> None:
    body = claude_code_body("hello")
    assert with_memories(body, []) is None
    body["messages"].append(
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}],
        }
    )
    body["messages"].append(
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]}
    )
    assert newest_prompt(body) == ""
    assert with_memories(body, [hit("x y z")]) is None


def test_a_string_prompt_becomes_blocks() -> None:
    body = {"messages": [{"role": "user", "content": "deploy it"}]}
    changed = with_memories(body, [hit("We deploy on Fridays", "decision")])
    assert changed is not None
    assert changed["messages"][0]["content"][0] == {"type": "text", "text": "deploy it"}


def test_a_trailing_system_message_is_not_the_prompt() -> None:
    body = claude_code_body("deploy it")
    body["messages"].append({"role": "system", "content": "Available agent types: …"})
    assert newest_prompt(body) == "deploy it"
    changed = with_memories(body, [hit("We deploy on Fridays", "decision")])
    assert changed is not None
    assert changed["messages"][-1] == body["messages"][-1]
    assert MARKER in changed["messages"][0]["content"][-1]["text"]
    # A breakpoint after the prompt: adding to the prompt would fall before it.
    body["messages"][-1] = {"role": "system", "content": [
        {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}]}  # fmt: skip
    assert with_memories(body, [hit("We deploy on Fridays")]) is None
