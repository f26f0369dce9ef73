"""Data flows one way: no module of lynkr imports a layer above it (DESIGN.md §2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lynkr"

# layer -> the lynkr layers it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "asgi": {"errors", "resilience"},  # the context's type of the failover plan
    "protocol": {"errors"},
    "policy": {"errors"},
    "resilience": {"errors"},
    "config": {"errors"},
    "stores": {"errors"},
    "cache": {"errors", "protocol", "stores"},
    "sessions": {"protocol", "stores", "asgi", "errors"},
    "middleware": {"asgi", "protocol", "policy", "resilience", "stores", "cache", "sessions"}
    | {"errors"},
    "providers": {"protocol", "resilience", "errors"},
    "agent": {"providers", "protocol", "policy", "resilience", "asgi", "stores", "errors"},
    "stack": {"config", "middleware", "agent", "providers", "stores", "asgi", "errors", "policy"}
    | {"sessions"},
    "cli": {"config", "middleware", "agent", "providers", "stores", "asgi", "errors", "stack"}
    | {"policy", "protocol", "resilience", "cache", "sessions"},
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return "" if len(parts) < 2 else parts[1]


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [name for name in found if name == "lynkr" or name.startswith("lynkr.")]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")


def test_every_layer_is_known() -> None:
    layers = {_layer(_module_name(path)) for path in MODULES} - {""}
    assert layers <= set(ALLOWED), f"add these layers to ALLOWED: {layers - set(ALLOWED)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_imports(path: Path) -> None:
    layer = _layer(_module_name(path))
    if not layer:
        return  # lynkr/__init__.py: the version only
    wrong = [
        name
        for name in _imports(path)
        if name != "lynkr" and _layer(name) != layer and _layer(name) not in ALLOWED[layer]
    ]
    assert not wrong, f"{layer} may not import {wrong}"


def test_a_violation_is_caught(tmp_path: Path) -> None:
    """The check itself works: a provider importing the stack is flagged."""
    bad = tmp_path / "bad.py"
    bad.write_text("from lynkr.stack import build_app\n")
    assert _layer(_imports(bad)[0]) not in ALLOWED["providers"]
