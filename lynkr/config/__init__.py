"""Config loading: lynkr.yaml → located YAML → ${ENV} → JSON Schema → defaults → dataclasses.

`load_config` runs the whole pipeline and raises one `ConfigError` carrying
every issue it found, each with file, line, column and path (docs/architecture.md,
"Config").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lynkr.config.interpolate import interpolate
from lynkr.config.model import (
    Config,
    MiddlewareSpec,
    PoolConfig,
    ProviderConfig,
    RouteConfig,
    Secret,
    ServerConfig,
    build_config,
)
from lynkr.config.schemas import packaged_schema
from lynkr.config.source import Document, format_path, load_document
from lynkr.config.validate import apply_defaults, validate
from lynkr.errors import ConfigError, ConfigIssue

__all__ = [
    "Config",
    "ConfigError",
    "ConfigIssue",
    "MiddlewareSpec",
    "PoolConfig",
    "ProviderConfig",
    "RouteConfig",
    "Secret",
    "ServerConfig",
    "load_config",
    "located_issue",
    "schema",
]


_UNSET = "environment variable "


def schema() -> dict[str, Any]:
    """The JSON Schema of lynkr.yaml."""
    return packaged_schema("lynkr.schema.json")


def load_config(
    path: str | os.PathLike[str],
    *,
    environ: Mapping[str, str] | None = None,
    allow_missing_env: bool = False,
) -> Config:
    """Load and check a config file; raise `ConfigError` listing every problem found.

    With `allow_missing_env`, unset variables are not errors (for `lynkr
    validate` in CI, where secrets are absent).
    """
    document, issues = load_document(path)
    env = os.environ if environ is None else environ
    document, env_issues, env_paths = interpolate(document, env)
    if allow_missing_env:
        # An unset variable's reference stays as written, so the rest still validates.
        env_issues = [i for i in env_issues if not i.message.startswith(_UNSET)]
    issues += env_issues
    issues += validate(document, schema(), secret_paths=env_paths)
    if issues:
        raise ConfigError(_sorted(issues))
    data = apply_defaults(document.data, schema())
    config, cross_issues = build_config(
        data, file=document.file, env_paths=env_paths, locate=_locator(document)
    )
    if cross_issues:
        raise ConfigError(_sorted(cross_issues))
    return config


def _locator(document: Document) -> Any:
    def locate(path: tuple[str | int, ...], message: str) -> ConfigIssue:
        line, column = document.locate(path)
        return ConfigIssue(document.file, line, column, format_path(path), message)

    return locate


def located_issue(config: Config, path: tuple[str | int, ...], message: str) -> ConfigIssue:
    """An issue for a config path, located by reading the file again (rare: build errors)."""
    try:
        document, _ = load_document(config.file)
        line, column = document.locate(path)
    except ConfigError:
        line, column = 1, 1
    return ConfigIssue(config.file, line, column, format_path(path), message)


def _sorted(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    return sorted(issues, key=lambda issue: (issue.line, issue.column))
