"""The languages the index reads: file names → grammar wheel → tags query.

Each grammar comes from its own PyPI wheel (`tree-sitter-python`, …), which
also ships `queries/tags.scm`; lynkr adds queries for what the wheels' tags
leave out (imports, decorated definitions, type aliases, exports). TypeScript's
tags cover only its own nodes, so JavaScript's are combined with them. A
grammar that does not import, or a query that does not compile against it,
means "no symbols for that language" — logged once, never a crash.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["LANGUAGES", "MARKDOWN", "Grammar", "LanguageSpec", "grammar", "language_of"]

_log = logging.getLogger("lynkr.repoindex")


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    """One language: how its files are named, where its grammar and tags come from."""

    name: str
    extensions: tuple[str, ...]
    module: str  # the grammar wheel's module
    function: str = "language"  # its function that returns the language pointer
    tags_from: tuple[str, ...] = ()  # wheels whose queries/tags.scm is used (default: own)
    extra: str = ""  # lynkr's own query, appended


_PY_EXTRA = """
(import_statement name: (dotted_name) @name) @reference.import
(import_statement name: (aliased_import name: (dotted_name) @name)) @reference.import
(import_from_statement module_name: (dotted_name) @name) @reference.import
(import_from_statement module_name: (relative_import) @name) @reference.import
(class_definition body: (block (function_definition name: (identifier) @name) @definition.method))
(class_definition body: (block (decorated_definition
  definition: (function_definition name: (identifier) @name) @definition.method)))
(type_alias_statement (type (identifier) @name)) @definition.type
"""
_JS_IMPORTS = """
(import_statement source: (string (string_fragment) @name)) @reference.import
(export_statement source: (string (string_fragment) @name)) @reference.import
"""
_TS_EXTRA = (
    _JS_IMPORTS
    + """
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name) @definition.enum
"""
)
_GO_EXTRA = """
(import_spec path: (interpreted_string_literal) @name) @reference.import
"""
_RUST_EXTRA = """
(use_declaration argument: (_) @name) @reference.import
(const_item name: (identifier) @name) @definition.constant
(type_item name: (type_identifier) @name) @definition.type
"""
_JAVA_EXTRA = """
(import_declaration (scoped_identifier) @name) @reference.import
(enum_declaration name: (identifier) @name) @definition.enum
(record_declaration name: (identifier) @name) @definition.class
"""
_C_EXTRA = """
(preproc_include path: (_) @name) @reference.import
(declaration declarator: (function_declarator declarator: (identifier) @name)) @definition.function
(preproc_def name: (identifier) @name) @definition.macro
(call_expression function: (identifier) @name) @reference.call
(call_expression function: (field_expression field: (field_identifier) @name)) @reference.call
"""
_CPP_EXTRA = (
    _C_EXTRA
    + """
(namespace_definition name: (namespace_identifier) @name) @definition.module
"""
)
_RUBY_EXTRA = """
(call method: (identifier) @_require arguments: (argument_list (string (string_content) @name))
  (#match? @_require "^require(_relative)?$")) @reference.import
"""

LANGUAGES: tuple[LanguageSpec, ...] = (
    LanguageSpec("python", (".py", ".pyi"), "tree_sitter_python", extra=_PY_EXTRA),
    LanguageSpec("javascript", (".js", ".jsx", ".mjs", ".cjs"), "tree_sitter_javascript",
                 extra=_JS_IMPORTS),
    LanguageSpec("typescript", (".ts", ".mts", ".cts"), "tree_sitter_typescript",
                 "language_typescript", ("tree_sitter_javascript", "tree_sitter_typescript"),
                 _TS_EXTRA),
    LanguageSpec("tsx", (".tsx",), "tree_sitter_typescript", "language_tsx",
                 ("tree_sitter_javascript", "tree_sitter_typescript"), _TS_EXTRA),
    LanguageSpec("go", (".go",), "tree_sitter_go", extra=_GO_EXTRA),
    LanguageSpec("rust", (".rs",), "tree_sitter_rust", extra=_RUST_EXTRA),
    LanguageSpec("java", (".java",), "tree_sitter_java", extra=_JAVA_EXTRA),
    LanguageSpec("c", (".c", ".h"), "tree_sitter_c", extra=_C_EXTRA),
    LanguageSpec("cpp", (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"), "tree_sitter_cpp",
                 tags_from=("tree_sitter_c", "tree_sitter_cpp"), extra=_CPP_EXTRA),
    LanguageSpec("ruby", (".rb",), "tree_sitter_ruby", extra=_RUBY_EXTRA),
)  # fmt: skip
# Markdown needs no grammar: its headings are read line by line (`tags.markdown_tags`).
MARKDOWN = LanguageSpec("markdown", (".md", ".markdown"), "")
_BY_EXTENSION = {ext: spec for spec in (*LANGUAGES, MARKDOWN) for ext in spec.extensions}


def language_of(path: str) -> LanguageSpec | None:
    """The language a file is written in, by its name; None for files the index skips."""
    dot = path.rfind(".")
    if dot <= path.rfind("/"):  # no extension (a slash after the last dot, or no dot)
        return None
    return _BY_EXTENSION.get(path[dot:].lower())


@dataclass(frozen=True, slots=True)
class Grammar:
    """A loaded language: tree-sitter's `Language` and the compiled tags `Query`."""

    name: str
    language: Any
    query: Any
    version: str


@cache
def grammar(name: str) -> Grammar | None:
    """The grammar and tags query of `name`, loaded once; None (logged once) if unavailable."""
    spec = next((s for s in LANGUAGES if s.name == name), None)
    if spec is None:
        return None
    try:
        from tree_sitter import Language, Query

        module = importlib.import_module(spec.module)
        language = Language(getattr(module, spec.function)())
        sources = [_tags_of(wheel) for wheel in spec.tags_from or (spec.module,)]
        query = _compiled(Query, language, sources, spec.extra)
    except Exception as exc:  # a wheel missing or built for another tree-sitter
        _log.warning("repoindex: no symbols for %s (%s: %s)", name, type(exc).__name__, exc)
        return None
    version = getattr(module, "__version__", "") or _wheel_version(spec.module)
    return Grammar(name, language, query, version)


def _tags_of(module_name: str) -> str:
    module = importlib.import_module(module_name)
    path = Path(module.__file__ or "").parent / "queries" / "tags.scm"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def _compiled(query_class: Any, language: Any, sources: list[str], extra: str) -> Any:
    """The tags query; a wheel's query that does not compile against this grammar (the
    JavaScript tags on TypeScript's grammar name a node or two it lacks) is dropped
    pattern by pattern: what compiles is kept."""
    text = "\n".join([*sources, extra])
    try:
        return query_class(language, text)
    except Exception:
        kept = [p for p in _patterns(text) if _compiles(query_class, language, p)]
        return query_class(language, "\n".join(kept))


def _patterns(text: str) -> list[str]:
    """Top-level S-expressions of a query (comments dropped)."""
    patterns, depth, current = [], 0, []
    for line in text.splitlines():
        stripped = line.split(";", 1)[0] if not line.lstrip().startswith("(#") else line
        if not stripped.strip() and depth == 0:
            continue
        current.append(stripped)
        depth += (
            stripped.count("(") + stripped.count("[") - stripped.count(")") - stripped.count("]")
        )
        if depth <= 0 and current:
            patterns.append("\n".join(current))
            current, depth = [], 0
    return patterns


def _compiles(query_class: Any, language: Any, pattern: str) -> bool:
    try:
        query_class(language, pattern)
    except Exception:
        return False
    return True


def _wheel_version(module_name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module_name.replace("_", "-"))
    except PackageNotFoundError:
        return ""
