"""The cache key: what changes it, what does not, and a golden value that pins the definition."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from lynkr.cache import cache_key, canonical_request

BILLING = "x-anthropic-billing-header: cc_version=2.1.197.a1b; cc_entrypoint=sdk-cli;"

Body = dict[str, Any]


def claude_code_body() -> Body:
    """A small request shaped like Claude Code's (docs/protocol.md A.4)."""
    return {
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}}
                ],
            },
        ],
        "system": [
            {"type": "text", "text": BILLING},
            {
                "type": "text",
                "text": "You are a Claude agent.",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "tools": [{"name": "Bash", "input_schema": {"type": "object", "properties": {}}}],
        "metadata": {"user_id": '{"session_id":"s1"}'},
        "max_tokens": 32000,
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "output_config": {"effort": "high"},
        "stream": True,
    }


def key(body: Body, **options: Any) -> str:
    return cache_key(body, **options)


def edit(change: Callable[[Body], None]) -> Body:
    body = claude_code_body()
    change(body)
    return body


def _set(path: tuple[Any, ...], value: Any) -> Callable[[Body], None]:
    def change(body: Body) -> None:
        target: Any = body
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return change


def _drop(name: str) -> Callable[[Body], None]:
    return lambda body: body.pop(name)


def _move_marker(body: Body) -> None:
    """Claude Code moves the last-message marker forward each turn (A.4)."""
    body["messages"][2]["content"][0].pop("cache_control")
    body["messages"][1]["content"][0]["cache_control"] = {"type": "ephemeral"}


def _tool_turn(body: Body, *, marked: bool, data: dict[str, Any] | None = None) -> None:
    """Replace the conversation with a tool round trip; `marked` puts markers in the result.

    Compared with the same turn unmarked and without `data` (see `baseline`).
    """
    result: dict[str, Any] = {"type": "text", "text": "ok"}
    if marked:
        result["cache_control"] = {"type": "ephemeral"}
    body["messages"] = [
        {"role": "user", "content": "run it"},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": data or {}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [result]}],
        },
    ]


SAME: dict[str, Callable[[Body], None]] = {
    "billing header changes": _set(("system", 0, "text"), BILLING.replace("a1b", "f00")),
    "billing header removed": lambda body: body["system"].pop(0),
    "cache_control removed from system": lambda body: body["system"][1].pop("cache_control"),
    "cache_control moved to another message": lambda body: _move_marker(body),
    "cache_control with a ttl on a tool": _set(
        ("tools", 0, "cache_control"), {"type": "ephemeral", "ttl": "1h"}
    ),
    "cache_control in a tool_result's content": lambda body: _tool_turn(body, marked=True),
    "metadata changes": _set(("metadata",), {"user_id": '{"session_id":"s2"}'}),
    "metadata removed": _drop("metadata"),
    "stream false": _set(("stream",), False),
    "stream absent (CC's non-streaming fallback)": _drop("stream"),
}

DIFFERENT: dict[str, Callable[[Body], None]] = {
    "model": _set(("model",), "claude-opus-4-1"),
    "a message's text": _set(("messages", 0, "content"), "hello"),
    "one more message": lambda body: body["messages"].append({"role": "user", "content": "more"}),
    "system text": _set(("system", 1, "text"), "You are someone else."),
    "a tool": _set(("tools", 0, "name"), "Read"),
    "no tools": _drop("tools"),
    "tool_choice": _set(("tool_choice",), {"type": "any"}),
    "temperature": _set(("temperature",), 0.2),
    "top_p": _set(("top_p",), 0.9),
    "top_k": _set(("top_k",), 5),
    "stop_sequences": _set(("stop_sequences",), ["END"]),
    "max_tokens": _set(("max_tokens",), 4096),
    "thinking": _set(("thinking",), {"type": "disabled"}),
    "output_config effort": _set(("output_config", "effort"), "low"),
    "output_config format": _set(
        ("output_config", "format"), {"type": "json_schema", "schema": {"type": "object"}}
    ),
    "context_management": _drop("context_management"),
    "an unknown field": _set(("service_tier",), "priority"),
    "message order": lambda body: body["messages"].reverse(),
    "a `cache_control` that is data (tool input)": lambda body: _tool_turn(
        body, marked=False, data={"cache_control": "on"}
    ),
}


def baseline(change: Callable[[Body], None]) -> Body:
    """The body a change is compared with: the tool-turn cases start from an unmarked tool turn."""
    body = claude_code_body()
    if change in TOOL_TURN_CASES:
        _tool_turn(body, marked=False)
    return body


TOOL_TURN_CASES = [
    SAME["cache_control in a tool_result's content"],
    DIFFERENT["a `cache_control` that is data (tool input)"],
]


@pytest.mark.parametrize("change", list(SAME.values()), ids=list(SAME))
def test_volatile_parts_do_not_change_the_key(change: Callable[[Body], None]) -> None:
    assert key(edit(change)) == key(baseline(change))


@pytest.mark.parametrize("change", list(DIFFERENT.values()), ids=list(DIFFERENT))
def test_what_changes_the_answer_changes_the_key(change: Callable[[Body], None]) -> None:
    assert key(edit(change)) != key(baseline(change))


def test_key_order_and_whitespace_in_the_json_do_not_matter() -> None:
    body = claude_code_body()
    reordered = orjson.loads(orjson.dumps(dict(reversed(list(body.items())))))
    reordered["tools"][0] = dict(reversed(list(reordered["tools"][0].items())))
    spaced = orjson.loads(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    assert key(reordered) == key(spaced) == key(body)


def test_pool_headers_and_namespace_are_part_of_the_key() -> None:
    body = claude_code_body()
    plain = key(body)
    assert key(body, pool="main") != plain
    assert key(body, pool="main") != key(body, pool="fast")
    assert key(body, namespace="route-2") != plain
    beta = {"anthropic-beta": ["context-1m-2025-08-07"]}
    assert key(body, headers=beta) != plain
    assert key(body, headers={"anthropic-beta": []}) == plain  # an absent header adds nothing


def test_each_caller_has_keys_of_its_own() -> None:
    body = claude_code_body()
    plain = key(body)
    assert key(body, caller="alice") != key(body, caller="bob")
    assert key(body, caller="alice") != plain
    assert key(body, caller=None) == plain  # without auth, keys are what they always were


def test_header_values_are_compared_as_sets_of_comma_items() -> None:
    body = claude_code_body()
    one = key(body, headers={"anthropic-beta": ["a-1, b-2"]})
    assert one == key(body, headers={"Anthropic-Beta": ["b-2", "a-1"]})
    assert one != key(body, headers={"anthropic-beta": ["a-1"]})


def test_a_string_system_loses_its_billing_header_line() -> None:
    with_header = {"model": "m", "messages": [], "system": BILLING + "\nBe brief."}
    assert canonical_request(with_header)["system"] == "Be brief."
    only_header = {"model": "m", "messages": [], "system": [{"type": "text", "text": BILLING}]}
    assert "system" not in canonical_request(only_header)
    assert key(only_header) == key({"model": "m", "messages": []})


def test_the_key_does_not_mutate_the_request() -> None:
    body = claude_code_body()
    before = copy.deepcopy(body)
    key(body)
    assert body == before


def test_golden_key() -> None:
    """Pins the definition: a change here invalidates every stored entry (bump KEY_VERSION)."""
    assert canonical_request(claude_code_body()) == {
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
            {"role": "user", "content": [{"type": "text", "text": "say hi"}]},
        ],
        "system": [{"type": "text", "text": "You are a Claude agent."}],
        "tools": [{"name": "Bash", "input_schema": {"type": "object", "properties": {}}}],
        "max_tokens": 32000,
        "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
        "output_config": {"effort": "high"},
    }
    assert key(claude_code_body(), pool="main") == GOLDEN


GOLDEN = "c12c2687a39850aa8eb4d86efec7d83356e5d9e891c2f04b60e080c6f9218a89"
