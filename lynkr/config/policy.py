"""Load a policy file (policies/*.yaml) through the same pipeline as lynkr.yaml.

Read with positions → JSON Schema (schema/policy.schema.json, 2020-12) →
defaults, so a broken policy is reported as `policies/x.yaml:12:5:
shell.default: expected one of 'allow', 'deny', got 'maybe'`, exactly like
`lynkr validate`. `${VAR}` is not interpolated: a policy says the same thing
on every machine.

The result is plain data; `lynkr.policy.Policy.from_data` turns it into rules
(config may not import the policy layer, and the policy layer stays pure).
"""

from __future__ import annotations

import os
from typing import Any

from lynkr.config.schemas import packaged_schema
from lynkr.config.source import load_document
from lynkr.config.validate import apply_defaults, validate
from lynkr.errors import ConfigError, ConfigIssue

__all__ = ["check_policy_file", "load_policy_data", "policy_schema"]


def policy_schema() -> dict[str, Any]:
    """The JSON Schema of policy files."""
    return packaged_schema("policy.schema.json")


def load_policy_data(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The policy file at `path` as validated data with defaults filled in.

    Raises `ConfigError` listing every issue, each located in the policy file
    (`unreadable=True` when the file cannot be read or parsed at all).
    """
    document, issues = load_document(path)
    issues += validate(document, policy_schema())
    if issues:
        raise ConfigError(_sorted(issues))
    data: dict[str, Any] = apply_defaults(document.data, policy_schema())
    return data


def check_policy_file(path: str | os.PathLike[str]) -> tuple[list[ConfigIssue], bool]:
    """Every issue in the policy file, and whether it was unreadable (for the CLI)."""
    try:
        load_policy_data(path)
    except ConfigError as error:
        return error.issues, error.unreadable
    return [], False


def _sorted(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    return sorted(issues, key=lambda issue: (issue.line, issue.column))
