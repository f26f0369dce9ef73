"""Every supported language: exact symbols (name, kind, line, column, parent), references
and imports of a small file, read from the wheels' tags queries and lynkr's additions."""

from __future__ import annotations

import pytest

from lynkr.repoindex.languages import LANGUAGES, grammar, language_of
from lynkr.repoindex.tags import extract
from tests.repoindex.fixtures import FIXTURES

# (name, kind, line, column, parent) — lines and columns 1-based.
SYMBOLS = {
    "python": [("User", "class", 5, 7, None), ("save", "method", 8, 9, "User"),
               ("persist", "function", 12, 5, None)],
    "javascript": [("Cart", "class", 3, 14, None), ("add", "method", 4, 3, "Cart"),
                   ("total", "function", 9, 10, None)],
    "typescript": [("Options", "interface", 3, 18, None), ("Handler", "type", 7, 13, None),
                   ("connect", "function", 9, 17, None), ("Mode", "enum", 13, 6, None)],
    "go": [("Server", "type", 5, 6, None), ("Start", "method", 9, 18, None),
           ("main", "function", 13, 6, None)],
    "rust": [("Cache", "class", 3, 12, None), ("get", "method", 8, 12, None),
             ("Store", "interface", 13, 11, None), ("LIMIT", "constant", 17, 7, None)],
    "java": [("Main", "class", 3, 14, None), ("main", "method", 4, 24, "Main"),
             ("run", "method", 8, 17, "Main"), ("Job", "interface", 12, 11, None),
             ("execute", "method", 13, 10, "Job")],
    "c": [("MAX", "macro", 4, 9, None), ("point", "class", 6, 8, None),
          ("add", "function", 10, 5, None), ("show", "function", 14, 6, None)],
    "cpp": [("geo", "module", 3, 11, None), ("Shape", "class", 5, 7, "geo"),
            ("area", "function", 7, 12, "Shape"), ("area", "method", 10, 15, "geo")],
    "ruby": [("Shop", "module", 4, 8, None), ("Store", "class", 5, 9, "Shop"),
             ("add", "method", 6, 9, "Store")],
}  # fmt: skip
# (name, kind, line) of the references that must be there (others may be too).
REFERENCES = {
    "python": [("persist", "call", 9), ("join", "call", 13)],
    "javascript": [("price", "call", 5)],
    "typescript": [("Options", "type", 9), ("Client", "class", 10)],
    "go": [("ListenAndServe", "call", 10), ("Start", "call", 15)],
    "rust": [("Cache", "implementation", 7), ("get", "call", 9)],
    "java": [("run", "call", 5)],
    "c": [("printf", "call", 15), ("add", "call", 15)],
    "cpp": [("compute", "call", 11)],
    "ruby": [("save", "call", 7)],
}
IMPORTS = {
    "python": [("os", 1), (".base", 2)],
    "javascript": [("./price.js", 1)],
    "typescript": [("./client", 1)],
    "go": [("net/http", 3)],
    "rust": [("std::collections::HashMap", 1)],
    "java": [("java.util.List", 1)],
    "c": [("stdio.h", 1), ("util.h", 2)],
    "cpp": [("shape.h", 1)],
    "ruby": [("json", 1), ("base", 2)],
}


@pytest.mark.parametrize("language", sorted(FIXTURES))
def test_symbols_references_and_imports(language: str) -> None:
    path, source = FIXTURES[language]
    spec = language_of(path)
    assert spec is not None
    loaded = grammar(spec.name)
    assert loaded is not None, f"the {spec.name} grammar wheel does not load"
    tags = extract(loaded, source)
    got = [(s.name, s.kind, s.line, s.column, s.parent) for s in tags.symbols]
    assert got == SYMBOLS[language]
    references = {(r.name, r.kind, r.line) for r in tags.references}
    assert set(REFERENCES[language]) <= references
    defined = {(s.name, s.line, s.column) for s in tags.symbols}
    assert not {(r.name, r.line, r.column) for r in tags.references} & defined
    assert [(i.target, i.line) for i in tags.imports] == IMPORTS[language]
    assert tags.lines == source.count(b"\n")


def test_every_language_has_a_fixture_and_tsx_reads_jsx() -> None:
    assert {spec.name for spec in LANGUAGES} - set(FIXTURES) == {"tsx"}
    loaded = grammar("tsx")
    assert loaded is not None
    tags = extract(loaded, b"export function Button() {\n  return <b>hi</b>;\n}\n")
    assert [(s.name, s.kind, s.line) for s in tags.symbols] == [("Button", "function", 1)]


def test_signatures_parents_and_docstrings() -> None:
    source = FIXTURES["python"][1]
    loaded = grammar("python")
    assert loaded is not None
    user, save, persist = extract(loaded, source).symbols
    assert user.signature == "class User(Model):" and user.doc == "A person who can log in."
    assert (save.signature, save.end_line) == ("def save(self):", 9)
    assert persist.signature == "def persist(obj):" and persist.doc is None


def test_an_unknown_language_and_broken_source() -> None:
    assert language_of("notes.txt") is None and language_of("Makefile") is None
    loaded = grammar("python")
    assert loaded is not None
    tags = extract(loaded, b"def broken(:\n    pass\nclass Fine:\n    pass\n")
    assert ("Fine", "class", 3) in [(s.name, s.kind, s.line) for s in tags.symbols]
    assert grammar("cobol") is None


def test_a_pattern_the_grammar_lacks_is_dropped_not_fatal() -> None:
    import tree_sitter_python
    from tree_sitter import Language, Query

    from lynkr.repoindex.languages import _compiled, _patterns

    language = Language(tree_sitter_python.language())
    good = "(function_definition name: (identifier) @name) @definition.function"
    bad = "(no_such_node) @definition.class"
    assert _patterns(f"; a comment\n{good}\n\n{bad}\n") == [good, bad]
    query = _compiled(Query, language, [good, bad], "")
    assert query.pattern_count == 1


def test_markdown_headings_outside_fenced_code() -> None:
    from lynkr.repoindex.tags import markdown_tags

    source = (
        b"# Title\nintro\n## Install\n```sh\n# not a heading\n```\n"
        b"###   From PyPI ###\n## Usage\n# Second\n"
    )
    got = [(s.name, s.line, s.column, s.end_line, s.parent) for s in markdown_tags(source).symbols]
    assert got == [
        ("Title", 1, 3, 8, None),
        ("Install", 3, 4, 7, "Title"),  # its subsection belongs to it
        ("From PyPI", 7, 7, 7, "Install"),
        ("Usage", 8, 4, 8, "Title"),
        ("Second", 9, 3, 9, None),
    ]
    assert language_of("docs/guide.md") is not None and grammar("markdown") is None
