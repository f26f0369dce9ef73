"""What a shell line is made of once read: words, redirections, simple commands.

The parser (`shell_parser.py`) makes these; the unwrapping (`shell_unwrap.py`)
and the shell rules read them. Also here: the two decoders bash applies to a
word's text, ANSI-C quoting (`$'\\x72\\x6d'` spells `rm`) and brace expansion
(`{a,b}`), and `ShellParseError`, raised for whatever lynkr cannot read with
certainty (the evaluator denies such a line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "ASSIGNMENT",
    "Command",
    "Redirect",
    "ShellParseError",
    "Word",
    "brace_variants",
    "decode_ansi_c",
    "has_brace_list",
    "unparseable",
    "unsupported",
]

# `NAME=value` (and `NAME+=value`) at the start of a word.
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")


class ShellParseError(ValueError):
    """The line cannot be read with certainty; `rule` says why (`shell.unparseable`, …)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True, slots=True)
class Word:
    """One shell word after quote removal; expansions are kept as written (`$HOME`)."""

    text: str
    quoted: bool = False  # some part was quoted or escaped
    dynamic: bool = False  # holds an expansion: $x, ${x}, $( … ), `…`, <( … )
    glob: bool = False  # an unquoted *, ? or [
    brace: bool = False  # an unquoted {…,…} that bash expands
    tilde: bool = False  # starts with an unquoted ~


@dataclass(slots=True)
class Redirect:
    """`>`/`>>`/`<`/… and its target; here-documents carry their body instead."""

    op: str
    target: Word | None
    fd: str = ""
    body: str | None = None  # here-document text, once read
    expands: bool = False  # an unquoted here-document delimiter: $( … ) inside runs

    @property
    def writes(self) -> bool:
        """Opens its target for writing (`>`, `>>`, `>|`, `&>`, `<>`, `>&file`)."""
        if self.op in (">&", "<&"):
            return self.op == ">&" and not _is_fd(self.target)
        return self.op in (">", ">>", ">|", "&>", "&>>", "<>")

    @property
    def reads(self) -> bool:
        return self.op in ("<", "<>") or (self.op == "<&" and not _is_fd(self.target))


@dataclass(slots=True)
class Command:
    """A simple command: leading `NAME=value` assignments, words, redirections."""

    assignments: list[Word] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


def _is_fd(word: Word | None) -> bool:
    return word is not None and (word.text.isdigit() or word.text == "-")


def has_brace_list(text: str, start: int) -> bool:
    """An unquoted `{a,b}` or `{a..b}` that bash would expand (approximate, conservative)."""
    depth = 0
    for index in range(start, min(len(text), start + 4096)):
        char = text[index]
        if char in " \t\n;&|<>()":
            return False
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                inner = text[start + 1 : index]
                return "," in inner or ".." in inner
    return False


_ANSI_C = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|c.|.)")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}


def decode_ansi_c(text: str) -> str:
    """The text of a `$'…'` quote with its escapes decoded as bash does."""

    def decode(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "xuU":
            return chr(min(int(code[1:], 16), 0x10FFFF))
        if code[0] in "01234567":
            return chr(int(code, 8) & 0xFF)
        if code[0] == "c" and len(code) == 2:
            return chr(ord(code[1]) & 0x1F)
        return _SIMPLE_ESCAPES.get(code, code)

    return _ANSI_C.sub(decode, text)


def unparseable(what: str) -> ShellParseError:
    """The error for syntax bash would reject (or that lynkr cannot follow)."""
    return ShellParseError("shell.unparseable", f"the shell line cannot be parsed: {what}")


def unsupported(what: str) -> ShellParseError:
    """The error for syntax lynkr does not read on purpose (`case`, functions, …)."""
    return ShellParseError("shell.unsupported_syntax", what)


def brace_variants(text: str, *, limit: int = 64) -> list[str]:
    """What bash's brace expansion makes of `text` (comma lists, nested); at most `limit`."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", text)
    if match is None:
        return [text]
    out: list[str] = []
    for choice in match.group(1).split(","):
        for variant in brace_variants(text[: match.start()] + choice + text[match.end() :]):
            out.append(variant)
            if len(out) >= limit:
                return out
    return out
