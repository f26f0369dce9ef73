"""`lynkr.policy`'s public surface and its imports: the stdlib, lynkr.errors, and one matcher."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import lynkr.policy

PACKAGE = Path(lynkr.policy.__file__).parent


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(lynkr.policy) if not name.startswith("_")} - {"annotations"}
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert sorted(lynkr.policy.__all__) == lynkr.policy.__all__
    assert set(lynkr.policy.__all__) == public - modules


# The one library, in the one module that matches globs: wcmatch translates patterns, no I/O.
MATCHER = {"globs.py": {"wcmatch"}}


def test_imports_only_the_stdlib_and_itself() -> None:
    for path in PACKAGE.glob("*.py"):
        allowed = set(sys.stdlib_module_names) | {"lynkr.errors", "lynkr.policy"}
        allowed |= MATCHER.get(path.name, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name if name.startswith("lynkr.") else name.split(".")[0]
                root = ".".join(top.split(".")[:2]) if top.startswith("lynkr.") else top
                assert root in allowed, f"{path.name} imports {name}"
