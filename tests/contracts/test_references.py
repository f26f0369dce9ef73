"""Every document, section and file the repository points at is in the repository.

Someone who clones lynkr must be able to follow every pointer: a `*.md` name resolves to a
file here, a protocol label (`A.2`, `B.5`, `A.6.7`, `case 41`) names a section or golden case
of docs/protocol.md, a Markdown link resolves, and nothing cites an issue tracker, a design
note or a folder outside the repository.
"""

from __future__ import annotations

import io
import re
import subprocess
import tokenize
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROTOCOL = REPO / "docs" / "protocol.md"
# Text that is read by people: code, docs, config, schemas, scripts.
SUFFIXES = {".py", ".md", ".json", ".yaml", ".yml", ".toml", ".txt", ".sh", ".scm", ""}
SKIP = {"CHANGELOG.md"}  # history may name what a file used to be called
# Files lynkr writes into its users' trees (the repo index's project notes): names of
# outputs, not pointers into this repository.
WRITTEN = {"CLAUDE.md", "CLAUDE.lynkr.md"}

_MD_NAME = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")
_OUTSIDE = re.compile(
    r"\.\./shared|\bshared/reference|\breference/[\w-]+\.md|\breliability-performance\b"
    r"|\boriginal-lynkr\b|\bpeers\.md\b|\bstyle-anchors\b",
    re.IGNORECASE,
)
# "issue #7", "issue 4", "issues 2-6" — the tracker is not in the repository. A GitHub
# reference (`encode/httpx#3215`) names a public page and is fine.
_ISSUE = re.compile(r"(?<![\w/])issues? #?\d+\b", re.IGNORECASE)
# `§8`, `§4a` of a document not named: only the WHATWG "HTML §9.2.6" is a public one.
_SECTION_SIGN = re.compile(r"(?<!HTML )§\s?\d")
_LABEL = re.compile(r"(?<![\w.#/-])([AB]\.\d{1,2}(?:\.\d)?)(?![\w.]*\d)")
_CASE = re.compile(r"\b(?:golden )?cases? (\d{1,2})(?:\s*[–-]\s*(\d{1,2}))?\b")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@cache
def _files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return sorted(
        REPO / name
        for name in listed
        if (REPO / name).is_file()
        and Path(name).suffix in SUFFIXES
        and Path(name).name not in SKIP
        and not name.startswith("tests/protocol/golden/")  # data: case ids, not pointers
        and (REPO / name) != Path(__file__).resolve()  # its own probes
    )


def _prose(path: Path) -> str:
    """What of `path` a person reads as prose: all of it, or a Python file's comments and
    docstrings (its other strings are data, such as the names of files a test creates)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix != ".py":
        return text
    lines = [""] * len(text.splitlines())
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        prose = token.type == tokenize.COMMENT or (
            token.type == tokenize.STRING
            and token.string.lstrip("rbuRBU").startswith(('"""', "'''"))
        )
        if prose:
            for offset, piece in enumerate(token.string.splitlines()):
                lines[token.start[0] - 1 + offset] += " " + piece
    return "\n".join(lines)


@cache
def _protocol_labels() -> frozenset[str]:
    text = PROTOCOL.read_text(encoding="utf-8")
    labels = set(re.findall(r"^#{2,4} ([AB]\.\d{1,2})\b", text, re.MULTILINE))
    labels |= set(re.findall(r"\*\*([AB]\.\d{1,2}\.\d)\b", text))
    return frozenset(labels)


@cache
def _protocol_cases() -> frozenset[int]:
    text = PROTOCOL.read_text(encoding="utf-8")
    section = text[text.index("### C.2") :]
    return frozenset(int(n) for n in re.findall(r"^\| (\d{1,2}) \|", section, re.MULTILINE))


def _md_exists(name: str, where: Path) -> bool:
    if (REPO / name).is_file() or (where.parent / name).is_file():
        return True
    return "/" not in name and any(path.name == name for path in _files())


def _problems(path: Path) -> list[str]:
    text = _prose(path)
    found: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{path.relative_to(REPO)}:{number}"
        for match in _OUTSIDE.finditer(line):
            found.append(f"{where}: points outside the repository: {match.group(0)!r}")
        for match in _ISSUE.finditer(line):
            found.append(f"{where}: cites the issue tracker: {match.group(0)!r}")
        if _SECTION_SIGN.search(line):
            found.append(f"{where}: a section of no named document: {line.strip()[:80]!r}")
        for match in _MD_NAME.finditer(line):
            if match.group(1) not in WRITTEN and not _md_exists(match.group(1), path):
                found.append(f"{where}: {match.group(1)} is not in the repository")
        if path.suffix == ".md":
            for match in _LINK.finditer(line):
                target = match.group(1)
                if "://" not in target and not (path.parent / target).exists():
                    found.append(f"{where}: the link {target!r} does not resolve")
        if path == PROTOCOL:
            continue
        for match in _LABEL.finditer(line):
            if match.group(1) not in _protocol_labels():
                found.append(f"{where}: docs/protocol.md has no section {match.group(1)}")
        for match in _CASE.finditer(line):
            first, last = int(match.group(1)), int(match.group(2) or match.group(1))
            missing = [n for n in range(first, last + 1) if n not in _protocol_cases()]
            if missing:
                found.append(f"{where}: docs/protocol.md C.2 has no case {missing[0]}")
    return found


def test_the_protocol_reference_has_its_labels() -> None:
    assert {"A.2", "A.9", "B.1", "B.5", "B.10", "A.6.7"} <= _protocol_labels()
    assert set(range(1, 51)) <= _protocol_cases()


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_pointer_resolves(path: Path) -> None:
    problems = _problems(path)
    assert not problems, "\n".join(problems)


# A folder outside the repository, spelt in two pieces so this probe is not itself a pointer.
_OUTSIDE_PROBE = "../" + "shared"


def test_the_checker_catches_what_it_should(tmp_path: Path) -> None:
    bad = REPO / "docs" / "_reference_probe.md"
    bad.write_text(
        f"See PROTOCOL.md A.2 and DESIGN.md §3 (issue #7), {_OUTSIDE_PROBE}/reference/x.md,\n"
        "docs/protocol.md B.99, case 77 and [a link](nowhere.md).\n",
        encoding="utf-8",
    )
    try:
        problems = "\n".join(_problems(bad))
    finally:
        bad.unlink()
    for expected in (
        "PROTOCOL.md is not in the repository",
        "DESIGN.md is not in the repository",
        "cites the issue tracker: 'issue #7'",
        "a section of no named document",
        f"points outside the repository: '{_OUTSIDE_PROBE}'",
        "has no section B.99",
        "has no case 77",
        "the link 'nowhere.md' does not resolve",
    ):
        assert expected in problems, (expected, problems)
    assert "A.2" not in problems.replace("PROTOCOL.md A.2", "")  # a real label passes
