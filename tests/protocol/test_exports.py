"""`lynkr.protocol`'s public surface and its purity (stdlib, orjson, errors only).

The layers and what each may import: docs/architecture.md, The layers.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import lynkr.protocol

PACKAGE = Path(lynkr.protocol.__file__).parent


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in vars(lynkr.protocol) if not name.startswith("_")}
    modules = {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}
    assert sorted(lynkr.protocol.__all__) == lynkr.protocol.__all__
    assert set(lynkr.protocol.__all__) == public - modules


def test_imports_only_stdlib_orjson_and_errors() -> None:
    allowed = set(sys.stdlib_module_names) | {"orjson", "lynkr.errors", "lynkr.protocol"}
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                assert root in allowed or name.startswith(("lynkr.errors", "lynkr.protocol")), (
                    f"{path.name} imports {name}"
                )
            assert not any(n.split(".")[0] in {"asyncio", "socket", "io"} for n in names), path
