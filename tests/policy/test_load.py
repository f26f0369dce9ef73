"""Policy files: the shipped ones validate, broken ones are reported with line and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lynkr.config.policy import check_policy_file, load_policy_data, policy_schema
from lynkr.policy import Policy

from .conftest import NAMES, POLICIES


@pytest.mark.parametrize("name", NAMES)
def test_shipped_policies_validate(name: str) -> None:
    path = POLICIES / f"{name}.yaml"
    assert check_policy_file(path) == ([], False)
    lines = path.read_text().splitlines()
    assert lines[0] == "# yaml-language-server: $schema=../schema/policy.schema.json"
    policy = Policy.from_data(load_policy_data(path))
    assert policy.name == name


@pytest.mark.parametrize("name", NAMES)
def test_shipped_policies_comment_every_setting(name: str) -> None:
    for number, line in enumerate((POLICIES / f"{name}.yaml").read_text().splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            assert " # " in line, f"{name}.yaml:{number} has no comment"


def test_an_empty_mapping_is_the_default_policy(tmp_path: Path) -> None:
    file = tmp_path / "p.yaml"
    file.write_text("version: 1\n")
    assert Policy.from_data(load_policy_data(file)) == Policy()


CASES: list[tuple[str, str]] = [
    (
        "shell:\n  default: maybe\n",
        "p.yaml:2:12: shell.default: expected one of 'allow', 'deny', got 'maybe'",
    ),
    (
        "shell:\n  dney: [curl]\n",
        "p.yaml:2:3: shell: unknown key 'dney' (did you mean 'deny'?)",
    ),
    (
        "git:\n  allow_push: yes\n",
        "p.yaml:2:15: git.allow_push: expected boolean, got string 'yes'"
        " (lynkr reads YAML 1.2: write true or false)",
    ),
    (
        "git:\n  require_tests: true\n",
        "p.yaml:1:1: git: missing required key 'test_command'",
    ),
    (
        "git:\n  commit_message_regex: '(unclosed'\n",
        "p.yaml:2:25: git.commit_message_regex: expected a valid regex, got '(unclosed'",
    ),
    (
        "request:\n  max_tools: ten\n",
        "p.yaml:2:14: request.max_tools: expected integer or null, got string 'ten'",
    ),
    (
        "tools:\n  deny: file.write\n",
        "p.yaml:2:9: tools.deny: expected list, got string 'file.write'",
    ),
    ("shell: {}\nshell: {}\n", "p.yaml:2:1: duplicate key 'shell' (first defined at line 1)"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_errors_are_located(tmp_path: Path, text: str, expected: str, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(text)
    issues, unreadable = check_policy_file("p.yaml")
    assert not unreadable
    assert [str(issue) for issue in issues] == [expected]


def test_unreadable_files(tmp_path: Path) -> None:
    issues, unreadable = check_policy_file(tmp_path / "missing.yaml")
    assert unreadable and "file not found" in issues[0].message
    bad = tmp_path / "bad.yaml"
    bad.write_text("shell: [\n")
    issues, unreadable = check_policy_file(bad)
    assert unreadable and issues[0].line == 2


def test_every_schema_key_has_a_description() -> None:
    missing: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                if "description" not in sub:
                    missing.append(f"{path}.{key}")
                walk(sub, f"{path}.{key}")
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, path

    walk(policy_schema(), "")
    assert not missing


def test_schema_defaults_equal_the_dataclass_defaults() -> None:
    """`Policy()` is what an empty file means, key by key."""
    defaults = Policy()
    for section, schema in policy_schema()["properties"].items():
        if "properties" not in schema:
            continue
        rules = getattr(defaults, section)
        for key, spec in schema["properties"].items():
            value = getattr(rules, key)
            value = (
                [p.text for p in value]
                if key in ("allow", "deny") and section == "shell"
                else value
            )
            expected = spec["default"]
            assert (list(value) if isinstance(value, tuple) else value) == expected, (section, key)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"shell": {"default": "maybe"}}, "shell.default must be 'allow' or 'deny'"),
        ({"sheel": {}}, "unknown key 'sheel'"),
        ({"tools": {"deny": "x"}}, "tools.deny must be a list of strings"),
        ({"git": {"require_tests": True}}, "git.require_tests needs git.test_command"),
        ({"git": {"commit_message_regex": "("}}, "not a valid regex"),
        ({"request": {"max_tokens": 0}}, "request.max_tokens must be at least 1"),
        ({"shell": {"deny": [" "]}}, "must not be empty"),
    ],
)
def test_from_data_checks_python_mappings(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy.from_data(data)
