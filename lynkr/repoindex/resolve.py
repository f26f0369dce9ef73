"""Which indexed file an import names (pure: the importer, the target, the indexed paths).

Python: `a.b` → `a/b.py` or `a/b/__init__.py`, tried from the root and from
each parent of the importer (src layouts), relative imports (`.util`, `..x`)
from the importer's package. JavaScript/TypeScript: relative specifiers with
the usual extensions and `index` files. C/C++: quoted includes beside the
importer, then from the root. Anything else (packages, the standard library)
is not a file of this tree: None.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

__all__ = ["resolve_import"]

_JS_EXTENSIONS = ("", ".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".d.ts")
_JS_INDEX = ("/index.ts", "/index.tsx", "/index.js", "/index.jsx")


def resolve_import(importer: str, target: str, paths: Mapping[str, object]) -> str | None:
    suffix = posixpath.splitext(importer)[1]
    if suffix in (".py", ".pyi"):
        return _python(importer, target, paths)
    if suffix in (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts"):
        return _javascript(importer, target, paths)
    if suffix in (".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"):
        return _include(importer, target, paths)
    return None


def _python(importer: str, target: str, paths: Mapping[str, object]) -> str | None:
    package = posixpath.dirname(importer)
    if target.startswith("."):
        dots = len(target) - len(target.lstrip("."))
        base = package
        for _ in range(dots - 1):
            base = posixpath.dirname(base)
        rest = target[dots:].replace(".", "/")
        return _module(posixpath.join(base, rest) if rest else base, paths)
    module = target.replace(".", "/")
    base = package
    while True:
        found = _module(posixpath.join(base, module) if base else module, paths)
        if found or not base:
            return found
        base = posixpath.dirname(base)


def _module(stem: str, paths: Mapping[str, object]) -> str | None:
    for candidate in (stem + ".py", stem + ".pyi", stem + "/__init__.py"):
        if candidate in paths:
            return candidate
    return None


def _javascript(importer: str, target: str, paths: Mapping[str, object]) -> str | None:
    if not target.startswith("."):
        return None
    stem = posixpath.normpath(posixpath.join(posixpath.dirname(importer), target))
    for candidate in [stem + ext for ext in _JS_EXTENSIONS] + [stem + i for i in _JS_INDEX]:
        if candidate in paths:
            return candidate
    if stem.endswith(".js"):  # TypeScript's `import "./a.js"` of a.ts
        return _javascript(importer, target[:-3], paths)
    return None


def _include(importer: str, target: str, paths: Mapping[str, object]) -> str | None:
    beside = posixpath.normpath(posixpath.join(posixpath.dirname(importer), target))
    for candidate in (beside, posixpath.normpath(target)):
        if candidate in paths:
            return candidate
    return None
