"""Print config issues for people (`file:line:col: path: message`) and for CI (JSON)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import orjson

from lynkr.errors import ConfigIssue

__all__ = ["format_json", "format_text"]


def format_text(issues: Sequence[ConfigIssue], file: str) -> str:
    """One issue a line, in the `file:line:col:` form editors and terminals link,
    then a count, so a long list still ends with the news."""
    if not issues:
        return f"{file}: ok"
    errors = sum(issue.severity == "error" for issue in issues)
    warnings = len(issues) - errors
    counts = [
        f"{n} {kind}" + ("" if n == 1 else "s")
        for n, kind in ((errors, "error"), (warnings, "warning"))
        if n
    ]
    return "\n".join([*(str(issue) for issue in issues), f"{', '.join(counts)} in {file}"])


def format_json(issues: Sequence[ConfigIssue]) -> str:
    """A JSON list of `{file, line, column, path, message, severity}` for CI annotations."""
    records = [dataclasses.asdict(issue) for issue in issues]
    return orjson.dumps(records, option=orjson.OPT_INDENT_2).decode()
