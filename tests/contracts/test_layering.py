"""Data flows one way: no module of lynkr imports a layer above it (`ALLOWED` draws the layers).

`violations` is the one judge: the parametrised test runs it over every module
of the package, and the tests at the bottom run it over small files written for
the purpose, so a hole in the checker shows up as a failing case here rather
than as an upward import nobody notices.

What counts as an import of a layer:

* ``import lynkr.x`` and ``from lynkr.x import y``, wherever they stand: at the
  top, inside a function (lazy imports), under ``if TYPE_CHECKING:`` (a type-only
  import is still a dependency of the design, and mypy follows it);
* ``from lynkr import x`` when ``x`` is a module or package of lynkr (``from lynkr
  import __version__`` is the root package, which every layer may use);
* relative imports (``from ..stack import y``, ``from . import z``), resolved
  against the importing module's package exactly as Python resolves them; lynkr
  writes none today, but one must not slip past the check by being relative;
* import strings, lynkr's lazy-loading tables (``"lynkr.middleware.auth:AuthMiddleware"``)
  and literal ``importlib.import_module("lynkr.x")`` calls.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "lynkr"

# layer -> the lynkr layers it may import (besides itself and the root package).
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
    | {"errors", "memory"},
    # Long-term memory: pure scoring and ranking, its store on lynkr.stores, its endpoint.
    "memory": {"stores", "protocol", "asgi", "errors"},
    "providers": {"protocol", "resilience", "errors"},
    "agent": {"providers", "protocol", "policy", "resilience", "asgi", "stores", "errors"}
    | {"sandbox", "memory", "repoindex"},
    "sandbox": set(),  # bubblewrap and the probe: the standard library only
    "stack": {"config", "middleware", "agent", "providers", "stores", "asgi", "errors", "policy"}
    | {"sandbox"}
    | {"sessions", "memory", "repoindex"},
    "cli": {"config", "middleware", "agent", "providers", "stores", "asgi", "errors", "stack"}
    | {"policy", "protocol", "resilience", "cache", "sessions", "serving", "memory"}
    | {"cli_memory", "cli_index"},
    "serving": set(),  # the ASGI server's protocol and its run: uvicorn only
    "cli_memory": {"config", "errors", "memory", "stack"},  # `lynkr memory …`
    "cli_index": {"repoindex"},  # `lynkr index …`
    # The repo index: tree-sitter tags into SQLite through the one connection factory.
    "repoindex": {"stores"},
    "__main__": {"cli"},
}
# The root package is the public face: it re-exports, loaded on first use, the config loader,
# the stack builder, the middleware classes and the agent app (`import lynkr` itself loads
# none of them; tests/contracts/test_public_api.py holds that).
ROOT_EXPORTS = {"config", "stack", "middleware", "agent"}

# "lynkr.middleware.auth:AuthMiddleware": a uvicorn-style import string (module:attribute).
IMPORT_STRING = re.compile(r"lynkr(?:\.\w+)+:\w+(?:\.\w+)*")


def _layer(module: str) -> str:
    """``lynkr.providers.pool`` -> ``providers``; the root package ``lynkr`` -> ``""``."""
    parts = module.split(".")
    return "" if len(parts) < 2 else parts[1]


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    """Whether `name` (``lynkr.x.y``) is a module or package of the real lynkr."""
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _resolve(module: str | None, level: int, package: str) -> str | None:
    """The absolute name `from <level dots><module> import ...` means inside `package`.

    None when the dots climb above the top-level package (Python's "attempted
    relative import beyond top-level package").
    """
    if level == 0:
        return module
    parts = package.split(".")
    if level > len(parts):
        return None
    base = ".".join(parts[: len(parts) - level + 1])
    return f"{base}.{module}" if module else base


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute lynkr module) for every import of lynkr in the file at `path`.

    `module` is the importing module's name (``lynkr.providers.pool``): relative
    imports are resolved against its package. A relative import that climbs out
    of lynkr is reported as ``<beyond lynkr>``.
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):  # every node: function bodies and TYPE_CHECKING blocks too
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module, node.level, package)
            if base is None:
                found.append((node.lineno, "<beyond lynkr>"))
                continue
            found.append((node.lineno, base))
            # `from lynkr import stack`, `from .. import stack`: the names may be modules.
            found += [
                (node.lineno, f"{base}.{alias.name}")
                for alias in node.names
                if _is_module(f"{base}.{alias.name}")
            ]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if IMPORT_STRING.fullmatch(node.value):
                found.append((node.lineno, node.value.partition(":")[0]))
        elif (
            isinstance(node, ast.Call)
            and _called_name(node.func) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return [
        (line, name)
        for line, name in found
        if name == "<beyond lynkr>" or name == "lynkr" or name.startswith("lynkr.")
    ]


def _called_name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def violations(path: Path, module: str) -> list[str]:
    """Each import in `path` (the module `module`) of a layer its layer may not import.

    A module may import its own layer, the root package (``lynkr``) and the
    layers `ALLOWED` lists for it; the root package only the layers whose names
    it re-exports (`ROOT_EXPORTS`).
    """
    layer = _layer(module)
    allowed = {layer, ""} | ALLOWED.get(layer, set())
    if not layer:
        allowed = {""} | ROOT_EXPORTS
    wrong = []
    for line, name in _imports(path, module):
        if name == "<beyond lynkr>":
            wrong.append(f"{path.name}:{line}: a relative import climbs out of lynkr")
        elif _layer(name) not in allowed:
            shown = layer or "the lynkr package"
            wrong.append(f"{path.name}:{line}: {shown} may not import {name}")
    return wrong


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_layer_is_known() -> None:
    layers = {_layer(_module_name(path)) for path in MODULES} - {""}
    assert layers <= set(ALLOWED), f"add these layers to ALLOWED: {layers - set(ALLOWED)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_upward_imports(path: Path) -> None:
    assert violations(path, _module_name(path)) == []


# --------------------------------------------------------------------------- the checker itself


def _judge(tmp_path: Path, source: str, module: str = "lynkr.providers.bad") -> list[str]:
    """`violations` over `source`, as if it were the module `module` of lynkr."""
    path = tmp_path / "bad.py"
    path.write_text(source, encoding="utf-8")
    return violations(path, module)


@pytest.mark.parametrize(
    "source",
    [
        "from lynkr.stack import build_app\n",
        "import lynkr.stack\n",
        "from lynkr import stack\n",
        "from ..stack import build_app\n",
        "from .. import stack\n",
        "def later():\n    from lynkr.middleware.cache import CacheMiddleware\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lynkr.agent.app import X\n",
        'TABLE = {"x": "lynkr.stack:build_app"}\n',
        'import importlib\nimportlib.import_module("lynkr.cli")\n',
    ],
    ids=[
        "from-absolute",
        "import-absolute",
        "from-root-import-module",
        "relative-upward",
        "relative-from-root",
        "inside-a-function",
        "type-checking-block",
        "import-string",
        "import-module-call",
    ],
)
def test_a_provider_importing_a_layer_above_is_caught(tmp_path: Path, source: str) -> None:
    wrong = _judge(tmp_path, source)
    assert len(wrong) == 1 and "providers may not import lynkr." in wrong[0], wrong


def test_a_violation_names_the_line_and_the_module(tmp_path: Path) -> None:
    source = "import json\n\nfrom ..stack import build_app\n"
    assert _judge(tmp_path, source) == ["bad.py:3: providers may not import lynkr.stack"]


def test_a_relative_import_out_of_lynkr_is_caught(tmp_path: Path) -> None:
    assert _judge(tmp_path, "from ... import something\n") == [
        "bad.py:1: a relative import climbs out of lynkr"
    ]


@pytest.mark.parametrize(
    "source",
    [
        "from lynkr.protocol.sse import x\n",
        "import lynkr.resilience.breaker\n",
        "from lynkr import errors, __version__\n",
        "from . import pool\n",  # its own layer
        "from .pool import Pool\n",
        "from ..errors import LynkrError\n",
        "from ..protocol import anthropic\n",
        "def later():\n    from lynkr.errors import LynkrError\n",
        'LOGGER = "lynkr.stack"  # a logger name, not an import string\n',
        "import json\nfrom collections import abc\n",
    ],
)
def test_an_allowed_import_is_not_flagged(tmp_path: Path, source: str) -> None:
    assert _judge(tmp_path, source) == []


def test_relative_imports_resolve_from_a_package_init(tmp_path: Path) -> None:
    """In ``lynkr/providers/__init__.py``, ``from . import x`` is ``lynkr.providers.x``."""
    path = tmp_path / "__init__.py"
    path.write_text("from . import pool\nfrom .. import stack\n", encoding="utf-8")
    assert violations(path, "lynkr.providers") == [
        "__init__.py:2: providers may not import lynkr.stack"
    ]


def test_the_root_package_imports_only_what_it_re_exports(tmp_path: Path) -> None:
    path = tmp_path / "__init__.py"
    path.write_text(
        "from lynkr.errors import LynkrError\nfrom lynkr.stack import build_app\n",
        encoding="utf-8",
    )
    assert violations(path, "lynkr") == [
        "__init__.py:1: the lynkr package may not import lynkr.errors"
    ]
