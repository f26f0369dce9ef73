"""Each default of a config section lives in the schema; the classes it configures agree.

The stack reads only validated, default-filled config, so the schema is the one
source of defaults for YAML users; a class built by hand must behave the same.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from lynkr.agent.loop import LoopLimits
from lynkr.agent.tools.registry import DEFAULT_FAMILIES, tool_registry
from lynkr.agent.tools.shell import ShellTool
from lynkr.agent.tools.testruns import DEFAULT_TIMEOUT, TestProfile
from lynkr.config import schema
from lynkr.providers import DIALECTS, TYPES
from lynkr.sessions import SQLiteSessionStore


def _section(*path: str) -> dict[str, Any]:
    node: dict[str, Any] = schema()
    for key in path:
        node = node["properties"][key]
    return {name: sub.get("default") for name, sub in node["properties"].items()}


def _defaults(function: Any) -> dict[str, Any]:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


@pytest.mark.parametrize(
    ("path", "target", "renamed"),
    [
        (("sessions",), SQLiteSessionStore.__init__, {}),
        (("tools", "shell"), ShellTool.__init__, {}),
        (("tools", "limits"), LoopLimits, {}),
        (
            ("tools",),
            tool_registry,
            {"enabled": "families"},
        ),
    ],
    ids=lambda value: ".".join(value) if isinstance(value, tuple) else "",
)
def test_schema_and_constructor_defaults_agree(
    path: tuple[str, ...], target: Any, renamed: dict[str, str]
) -> None:
    section, constructor = _section(*path), _defaults(target)
    shared = 0
    for key, default in section.items():
        name = renamed.get(key, key)
        if name in constructor:
            expected = constructor[name]
            assert default == (list(expected) if isinstance(expected, tuple) else expected), key
            shared += 1
    assert shared, f"{'.'.join(path)} shares no option with {target.__qualname__}"


def test_the_one_default_that_differs_on_purpose() -> None:
    """A store built by hand writes each turn at once; `lynkr serve` batches them (50 ms)."""
    assert _section("sessions")["write_delay_ms"] == 50
    assert _defaults(SQLiteSessionStore.__init__)["write_delay"] == 0.0


def test_test_profile_defaults_agree() -> None:
    tests = schema()["properties"]["tools"]["properties"]["tests"]
    profile = tests["properties"]["profiles"]["additionalProperties"]["properties"]
    assert profile["timeout_seconds"]["default"] == DEFAULT_TIMEOUT
    assert profile["cwd"]["default"] == _defaults(TestProfile)["cwd"]
    assert _section("tools")["enabled"] == list(DEFAULT_FAMILIES)


def test_every_provider_type_has_an_adapter() -> None:
    types = schema()["$defs"]["provider"]["properties"]["type"]["enum"]
    assert set(types) == set(TYPES)
    assert set(TYPES.values()) <= set(DIALECTS)
