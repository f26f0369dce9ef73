"""Read a shell line the way bash would, far enough to find every simple command in it.

A policy that looks only at the first word of a command line is bypassed by
`ls; rm -rf /` (the original lynkr's bug). `parse` finds the
simple commands wherever they hide:

- separated by `;`, `&`, `&&`, `||`, `|`, `|&` or newlines, inside `( … )`
  subshells and `{ …; }` groups, after `if`/`then`/`while`/`do`/`!`/`time`;
- inside `$( … )`, backticks, `<( … )`/`>( … )` and `${x:-$( … )}`,
  also within double quotes and unquoted here-documents.

What those commands run in turn (`bash -c '…'`, `sudo`, `xargs`, `find -exec`)
is `shell_unwrap.py`'s job.

Quoting is honoured as bash does (`echo "a; rm -rf /"` is one `echo`), including
`$'\\x72\\x6d'` (ANSI-C quoting spells `rm`), backslash escapes and line
continuations; a comment ends at the newline, not after it.

The reader is written by hand, on purpose. `shlex` cannot serve: its comment
handling swallows the newline that separates two commands (`ls # x⏎rm -rf /`
reads as one `ls`), and it cannot see `$( … )`, backticks or here-documents.
bashlex is GPL-3.0, which lynkr's Apache-2.0 licence cannot take in. And
tree-sitter-bash recovers from syntax errors, producing a best-guess tree,
where a policy must fail closed: what this reader cannot follow — unbalanced
quotes or parentheses, an unclosed here-document, `case`/`select`/`coproc`,
function definitions — raises `ShellParseError`, and the evaluator denies the
line (a line lynkr cannot read is a line it cannot allow).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lynkr.policy.shell_words import (
    ASSIGNMENT,
    Command,
    Redirect,
    Word,
    decode_ansi_c,
    has_brace_list,
    unparseable,
    unsupported,
)

__all__ = ["UNSUPPORTED", "parse"]

_BLANK = " \t"
_BREAK = " \t\n;&|<>()"
_FD_REDIRECT = re.compile(r"\d+(?=[<>])")
_BRACKET = re.compile(r"\[[^\s;&|<>()]*\]")  # `[ab]` globs; a lone `[` (test) does not
# Longest first, so `>>` is not read as `>` `>`.
_REDIRECTS = ("&>>", "<<<", "<<-", "&>", ">>", ">|", ">&", "<<", "<>", "<&", ">", "<")
_SEPARATORS = ("&&", "||", "|&", ";", "&", "|")

# Command words lynkr does not follow: a line using one is refused.
UNSUPPORTED = frozenset({"case", "select", "function", "coproc"})


def parse(line: str) -> list[Command]:
    """Every simple command in `line`, nested ones included, in reading order.

    Raises `ShellParseError` for syntax bash would reject or lynkr cannot follow.
    """
    parser = _Parser(line)
    parser.parse_list(stop=None)
    return parser.commands


class _Parser:
    """A recursive-descent reader over one string; nested substitutions share `commands`."""

    def __init__(self, text: str, commands: list[Command] | None = None) -> None:
        self.text = text
        self.pos = 0
        self.commands: list[Command] = [] if commands is None else commands
        self.pending: list[tuple[Redirect, str, bool]] = []  # heredocs awaiting a newline

    # structure

    def parse_list(self, stop: str | None) -> None:
        """Commands and separators up to `stop` (`)`) or the end of the text."""
        while True:
            self.skip_blanks()
            if self.at_end():
                if stop is not None:
                    raise unparseable(f"missing {stop!r}")
                if self.pending:
                    raise unparseable(f"here-document {self.pending[0][1]!r} is never closed")
                return
            char = self.text[self.pos]
            if char == "\n":
                self.pos += 1
                self.read_heredocs()
            elif char == ")":
                if stop != ")":
                    raise unparseable("unexpected ')'")
                self.pos += 1
                return
            elif self.text.startswith(";;", self.pos):
                raise unsupported("';;' (case) is not supported; write the commands out")
            elif (op := self.match(_SEPARATORS)) is not None:
                self.pos += len(op)
            else:
                self.parse_command()

    def parse_command(self) -> None:
        command = Command()
        if self.text[self.pos] == "(":
            self.pos += 1
            self.parse_list(stop=")")
        while True:
            self.skip_blanks()
            if self.at_end() or self.text[self.pos] in "\n;|)" or self.at_separator():
                break
            if self.text[self.pos] == "(":
                raise unsupported(
                    "function definitions and '((' … '))' are not supported; write the commands out"
                )
            if self.at_redirect():
                command.redirects.append(self.read_redirect())
                continue
            start = self.pos
            word = self.read_word()
            if not command.words and not word.quoted and word.text in UNSUPPORTED:
                raise unsupported(f"'{word.text}' is not supported; write the commands out")
            if not command.words and ASSIGNMENT.match(self.text, start):
                command.assignments.append(word)
            else:
                command.words.append(word)
        self.commands.append(command)

    def at_separator(self) -> bool:
        return self.text[self.pos] == "&" and not self.text.startswith("&>", self.pos)

    def at_redirect(self) -> bool:
        rest = self.text[self.pos :]
        if rest[:2] in ("<(", ">("):
            return False  # process substitution: a word
        return rest[:1] in "<>" or rest[:2] == "&>" or bool(_FD_REDIRECT.match(rest))

    def read_redirect(self) -> Redirect:
        fd = ""
        if number := _FD_REDIRECT.match(self.text, self.pos):
            fd = number.group()
            self.pos = number.end()
        op = self.match(_REDIRECTS)
        if op is None:  # pragma: no cover - at_redirect saw one
            raise unparseable("bad redirection")
        self.pos += len(op)
        self.skip_blanks()
        if self.at_end() or self.text[self.pos] in "\n;&|()<>":
            raise unparseable(f"redirection {op!r} has no target")
        start = self.pos
        target = self.read_word()
        redirect = Redirect(op, target, fd)
        if op in ("<<", "<<-"):
            delimiter = target.text if target.quoted else self.text[start : self.pos]
            self.pending.append((redirect, delimiter, op == "<<-"))
            redirect.expands = not target.quoted
        return redirect

    def read_heredocs(self) -> None:
        """Bodies of the here-documents started on the line just ended, in order."""
        for redirect, delimiter, strip_tabs in self.pending:
            lines: list[str] = []
            while True:
                if self.at_end():
                    raise unparseable(f"here-document {delimiter!r} is never closed")
                end = self.text.find("\n", self.pos)
                end = len(self.text) if end < 0 else end
                line = self.text[self.pos : end]
                self.pos = min(end + 1, len(self.text))
                if strip_tabs:
                    line = line.lstrip("\t")
                if line == delimiter:
                    break
                lines.append(line)
            redirect.body = "\n".join(lines) + "\n"
            if redirect.expands:
                _Parser(redirect.body, self.commands).scan_double_quoted_text()
        self.pending = []

    # words

    def read_word(self) -> Word:
        parts: list[str] = []
        flags = {"quoted": False, "dynamic": False, "glob": False, "brace": False}
        tilde = self.text[self.pos] == "~"
        while not self.at_end():
            char = self.text[self.pos]
            if char in _BREAK and not self.process_substitution_here():
                break
            if char == "\\":
                parts.append(self.read_escape(flags))
            elif char == "'":
                parts.append(self.read_single_quoted())
                flags["quoted"] = True
            elif self.text.startswith("$'", self.pos):
                parts.append(self.read_ansi_c())
                flags["quoted"] = True
            elif char == '"' or self.text.startswith('$"', self.pos):
                self.pos += 1 if char == '"' else 2
                parts.append(self.read_double_quoted(flags))
                flags["quoted"] = True
            elif char in "$`" or self.process_substitution_here():
                parts.append(self.read_expansion())
                flags["dynamic"] = True
            else:
                if char in "*?" or (char == "[" and _BRACKET.match(self.text, self.pos)):
                    flags["glob"] = True
                elif char == "{" and has_brace_list(self.text, self.pos):
                    flags["brace"] = True
                parts.append(char)
                self.pos += 1
        return Word("".join(parts), tilde=tilde, **flags)

    def process_substitution_here(self) -> bool:
        return self.text.startswith(("<(", ">("), self.pos)

    def read_escape(self, flags: dict[str, bool]) -> str:
        following = self.text[self.pos + 1 : self.pos + 2]
        self.pos += 2
        if following == "\n":
            return ""  # line continuation
        flags["quoted"] = True
        return following or "\\"

    def read_single_quoted(self) -> str:
        end = self.text.find("'", self.pos + 1)
        if end < 0:
            raise unparseable("unterminated single quote")
        value = self.text[self.pos + 1 : end]
        self.pos = end + 1
        return value

    def read_ansi_c(self) -> str:
        """`$'…'`: bash decodes escapes, so `$'\\x72\\x6d'` is `rm`."""
        self.pos += 2
        start = self.pos
        while not self.at_end() and self.text[self.pos] != "'":
            self.pos += 2 if self.text[self.pos] == "\\" else 1
        if self.at_end():
            raise unparseable("unterminated $'…' quote")
        value = decode_ansi_c(self.text[start : self.pos])
        self.pos += 1
        return value

    def read_double_quoted(self, flags: dict[str, bool]) -> str:
        parts: list[str] = []
        while True:
            if self.at_end():
                raise unparseable("unterminated double quote")
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(parts)
            if char == "\\" and self.text[self.pos + 1 : self.pos + 2] in ('"', "\\", "$", "`"):
                parts.append(self.text[self.pos + 1])
                self.pos += 2
            elif char == "\\" and self.text[self.pos + 1 : self.pos + 2] == "\n":
                self.pos += 2
            elif char in "$`":
                parts.append(self.read_expansion())
                flags["dynamic"] = True
            else:
                parts.append(char)
                self.pos += 1

    def scan_double_quoted_text(self) -> None:
        """Find the substitutions in text read as if double-quoted (a here-document)."""
        while not self.at_end():
            char = self.text[self.pos]
            if char == "\\":
                self.pos += 2
            elif char in "$`":
                self.read_expansion()
            else:
                self.pos += 1

    def read_expansion(self) -> str:
        """One `$…`, backtick or `<( … )` expansion; nested commands are parsed. Returns it as
        written, so messages can quote it."""
        start = self.pos
        rest = self.text[self.pos :]
        if rest.startswith("$(("):
            self.pos += 3
            self.skip_arithmetic()
        elif rest.startswith(("$(", "<(", ">(")):
            self.pos += 2
            self.parse_list(stop=")")
        elif rest.startswith("${"):
            self.pos += 2
            self.skip_parameter()
        elif rest.startswith("`"):
            self.read_backticks()
        elif rest.startswith("$["):  # old arithmetic
            self.pos += 2
            end = self.text.find("]", self.pos)
            if end < 0:
                raise unparseable("unterminated $[")
            self.pos = end + 1
        else:
            name = re.match(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])?", rest)
            assert name is not None
            self.pos += len(name.group())
        return self.text[start : self.pos]

    def read_backticks(self) -> None:
        self.pos += 1
        inner: list[str] = []
        while True:
            if self.at_end():
                raise unparseable("unterminated backtick")
            char = self.text[self.pos]
            if char == "`":
                self.pos += 1
                break
            if char == "\\" and self.text[self.pos + 1 : self.pos + 2] in ("`", "$", "\\"):
                inner.append(self.text[self.pos + 1])
                self.pos += 2
            else:
                inner.append(char)
                self.pos += 1
        nested = _Parser("".join(inner), self.commands)
        nested.parse_list(stop=None)

    def skip_parameter(self) -> None:
        """`${…}` up to its closing brace; `$( … )` and quotes inside are followed."""
        flags = {"quoted": False, "dynamic": False, "glob": False, "brace": False}
        while True:
            if self.at_end():
                raise unparseable("unterminated ${")
            char = self.text[self.pos]
            if char == "}":
                self.pos += 1
                return
            if char == "\\":
                self.pos += 2
            elif char == "'":
                self.read_single_quoted()
            elif char == '"':
                self.pos += 1
                self.read_double_quoted(flags)
            elif char in "$`":
                self.read_expansion()
            else:
                self.pos += 1

    def skip_arithmetic(self) -> None:
        depth = 0
        while True:
            if self.at_end():
                raise unparseable("unterminated $((")
            char = self.text[self.pos]
            if char in "$`":
                self.read_expansion()
                continue
            self.pos += 1
            if char == "(":
                depth += 1
            elif char == ")" and depth > 0:
                depth -= 1
            elif char == ")":
                if self.text[self.pos : self.pos + 1] != ")":
                    raise unparseable("unterminated $((")
                self.pos += 1
                return

    # characters

    def skip_blanks(self) -> None:
        while not self.at_end():
            char = self.text[self.pos]
            if char in _BLANK:
                self.pos += 1
            elif self.text.startswith("\\\n", self.pos):
                self.pos += 2
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end  # the newline still separates
            else:
                return

    def match(self, options: Sequence[str]) -> str | None:
        for option in options:
            if self.text.startswith(option, self.pos):
                return option
        return None

    def at_end(self) -> bool:
        return self.pos >= len(self.text)
