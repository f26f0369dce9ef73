"""The text and JSON renderings of config issues."""

from __future__ import annotations

import json

from lynkr.config.report import format_json, format_text
from lynkr.errors import ConfigIssue

PORT = ConfigIssue("lynkr.yaml", 3, 9, "server.port", "expected integer, got string 'ten'")
EMPTY = ConfigIssue("lynkr.yaml", 1, 1, "", "file is empty")


def test_no_issues_is_ok() -> None:
    assert format_text([], "lynkr.yaml") == "lynkr.yaml: ok"


def test_one_issue_is_singular() -> None:
    assert format_text([EMPTY], "lynkr.yaml") == (
        "lynkr.yaml:1:1: file is empty\n1 error in lynkr.yaml"
    )


def test_several_issues_each_on_a_line_then_a_count() -> None:
    assert format_text([EMPTY, PORT], "lynkr.yaml").splitlines() == [
        "lynkr.yaml:1:1: file is empty",
        "lynkr.yaml:3:9: server.port: expected integer, got string 'ten'",
        "2 errors in lynkr.yaml",
    ]


def test_json_lists_every_field_in_order() -> None:
    text = format_json([PORT])
    assert json.loads(text) == [
        {
            "file": "lynkr.yaml",
            "line": 3,
            "column": 9,
            "path": "server.port",
            "message": "expected integer, got string 'ten'",
            "severity": "error",
        }
    ]
    assert text.splitlines()[2] == '    "file": "lynkr.yaml",'
    assert format_json([]) == "[]"
