"""Read a shell line the way bash would, far enough to know every program it starts.

A policy that looks only at the first word of a command line is bypassed by
`ls; rm -rf /` (the original lynkr's bug, reference §7). This module parses a
line into simple commands wherever they hide:

- separated by `;`, `&`, `&&`, `||`, `|`, `|&` or newlines, inside `( … )`
  subshells and `{ …; }` groups, after `if`/`then`/`while`/`do`/`!`/`time`;
- inside `$( … )`, backticks, `<( … )`/`>( … )` and `${x:-$( … )}`,
  also within double quotes and unquoted here-documents;
- inside the string of `bash -c '…'` (any shell, any `-xc` flag cluster),
  `eval …`, `env -S '…'`, `watch '…'`, and a here-document fed to a shell;
- behind wrappers that run their arguments as a command: `sudo`, `doas`,
  `env`, `nohup`, `timeout`, `nice`, `ionice`, `stdbuf`, `exec`, `command`,
  `builtin`, `time`, `xargs` and `find -exec`/`-execdir`/`-ok`.

Quoting is honoured as bash does (`echo "a; rm -rf /"` is one `echo`), including
`$'\\x72\\x6d'` (ANSI-C quoting spells `rm`), backslash escapes and line
continuations; a comment ends at the newline, not after it.

`shlex` is not used for the structure: its comment handling swallows the
newline that separates two commands (`ls # x⏎rm -rf /` reads as one `ls`), and
it cannot see `$( … )`, backticks or here-documents.

What cannot be known without running the line — a command name computed at run
time (`$CMD`, `$(echo rm)`, `r*`, `{rm,-rf}`), a shell reading its script from
a pipe, function definitions, `case`/`select`/`coproc` — raises
`ShellParseError`, and the evaluator denies the line (a line lynkr cannot
read is a line it cannot allow).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

__all__ = [
    "Analysis",
    "Command",
    "Invocation",
    "Redirect",
    "ShellParseError",
    "Word",
    "analyse",
    "brace_variants",
    "parse",
]

# Nesting deeper than this (bash -c inside eval inside $( … ) …) is refused.
MAX_DEPTH = 12

_BLANK = " \t"
_BREAK = " \t\n;&|<>()"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_FD_REDIRECT = re.compile(r"\d+(?=[<>])")
_BRACKET = re.compile(r"\[[^\s;&|<>()]*\]")  # `[ab]` globs; a lone `[` (test) does not
# Longest first, so `>>` is not read as `>` `>`.
_REDIRECTS = ("&>>", "<<<", "<<-", "&>", ">>", ">|", ">&", "<<", "<>", "<&", ">", "<")
_SEPARATORS = ("&&", "||", "|&", ";", "&", "|")

RESERVED = frozenset({"!", "time", "if", "then", "else", "elif", "do", "while", "until", "{"})
CLOSERS = frozenset({"fi", "done", "}", "esac"})
UNSUPPORTED = frozenset({"case", "select", "function", "coproc"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "rbash"})


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


# --- the parser ----------------------------------------------------------------


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
                    raise _unparseable(f"missing {stop!r}")
                if self.pending:
                    raise _unparseable(f"here-document {self.pending[0][1]!r} is never closed")
                return
            char = self.text[self.pos]
            if char == "\n":
                self.pos += 1
                self.read_heredocs()
            elif char == ")":
                if stop != ")":
                    raise _unparseable("unexpected ')'")
                self.pos += 1
                return
            elif self.text.startswith(";;", self.pos):
                raise _unsupported("';;' (case) is not supported; write the commands out")
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
                raise _unsupported(
                    "function definitions and '((' … '))' are not supported; write the commands out"
                )
            if self.at_redirect():
                command.redirects.append(self.read_redirect())
                continue
            start = self.pos
            word = self.read_word()
            if not command.words and not word.quoted and word.text in UNSUPPORTED:
                raise _unsupported(f"'{word.text}' is not supported; write the commands out")
            if not command.words and _NAME.match(self.text, start):
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
            raise _unparseable("bad redirection")
        self.pos += len(op)
        self.skip_blanks()
        if self.at_end() or self.text[self.pos] in "\n;&|()<>":
            raise _unparseable(f"redirection {op!r} has no target")
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
                    raise _unparseable(f"here-document {delimiter!r} is never closed")
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
                elif char == "{" and _has_brace_list(self.text, self.pos):
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
            raise _unparseable("unterminated single quote")
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
            raise _unparseable("unterminated $'…' quote")
        value = _decode_ansi_c(self.text[start : self.pos])
        self.pos += 1
        return value

    def read_double_quoted(self, flags: dict[str, bool]) -> str:
        parts: list[str] = []
        while True:
            if self.at_end():
                raise _unparseable("unterminated double quote")
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
                raise _unparseable("unterminated $[")
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
                raise _unparseable("unterminated backtick")
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
                raise _unparseable("unterminated ${")
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
                raise _unparseable("unterminated $((")
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
                    raise _unparseable("unterminated $((")
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


def _has_brace_list(text: str, start: int) -> bool:
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


def _decode_ansi_c(text: str) -> str:
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


def _unparseable(what: str) -> ShellParseError:
    return ShellParseError("shell.unparseable", f"the shell line cannot be parsed: {what}")


def _unsupported(what: str) -> ShellParseError:
    return ShellParseError("shell.unsupported_syntax", what)


# --- what runs -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Invocation:
    """One program the line starts: `argv[0]` is the command word.

    `via` names the wrappers it was found behind (`("sudo",)`, `("xargs",)`,
    `("bash -c",)`); `hidden_args` is true when it receives arguments lynkr
    cannot see (from `xargs`, or `{}` of `find -exec`).
    """

    name: str
    argv: tuple[Word, ...]
    via: tuple[str, ...] = ()
    hidden_args: bool = False
    wraps: bool = False  # only runs another command or script, analysed on its own

    @property
    def args(self) -> tuple[Word, ...]:
        return self.argv[1:]


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything a line would do that a policy judges."""

    invocations: tuple[Invocation, ...]
    redirects: tuple[Redirect, ...]
    assignments: tuple[Word, ...]


def analyse(line: str, *, _depth: int = 0) -> Analysis:
    """Parse `line` and unwrap every command to the programs it starts (see module doc)."""
    if _depth > MAX_DEPTH:
        raise ShellParseError("shell.nesting", f"the line nests shells more than {MAX_DEPTH} deep")
    invocations: list[Invocation] = []
    redirects: list[Redirect] = []
    assignments: list[Word] = []
    for command in parse(line):
        redirects += command.redirects
        assignments += command.assignments
        words = _strip_keywords(command.words)
        if words:
            found = _unwrap(words, (), hidden=False, command=command, depth=_depth)
            for item in found:
                if isinstance(item, Analysis):
                    invocations += item.invocations
                    redirects += item.redirects
                    assignments += item.assignments
                else:
                    invocations.append(item)
    return Analysis(tuple(invocations), tuple(redirects), tuple(assignments))


def _strip_keywords(words: list[Word]) -> list[Word]:
    """Drop the reserved words around a command (`if`, `do`, `!`, `time -p`, `{`, `fi`, …)."""
    index = 0
    while index < len(words) and not words[index].quoted:
        text = words[index].text
        if text in UNSUPPORTED:
            raise _unsupported(f"'{text}' is not supported; write the commands out")
        if text == "for":
            return []  # `for NAME in WORDS`: data, not a command (substitutions were parsed)
        if text not in RESERVED and text not in CLOSERS:
            break
        index += 1
        if text == "time" and index < len(words) and words[index].text == "-p":
            index += 1
    return words[index:]


_Found = Iterator["Invocation | Analysis"]


def _unwrap(
    words: Sequence[Word], via: tuple[str, ...], *, hidden: bool, command: Command, depth: int
) -> _Found:
    """The invocation `words` makes, then whatever it runs in turn."""
    head = words[0]
    if head.dynamic or head.glob or head.brace:
        raise ShellParseError(
            "shell.dynamic_command",
            f"the command name {head.text!r} is only known when the line runs; "
            "write the command name literally",
        )
    name = posixpath.basename(head.text) or head.text
    lower = name.lower()
    start = _WRAPPERS[lower](words) if lower in _WRAPPERS else None
    inner = start is not None and start < len(words)
    scripts = list(_scripts(lower, words, command, depth))
    yield Invocation(name, tuple(words), via, hidden, wraps=inner or bool(scripts))
    if inner:
        inner_hidden = hidden or lower == "xargs"
        yield from _unwrap(
            words[start:], (*via, lower), hidden=inner_hidden, command=command, depth=depth
        )
    yield from scripts
    if lower == "find":
        for executed in _find_exec(words):
            yield from _unwrap(
                executed, (*via, "find -exec"), hidden=True, command=command, depth=depth
            )


def _scripts(name: str, words: Sequence[Word], command: Command, depth: int) -> Iterator[Analysis]:
    """Analyses of the command strings a program runs: `bash -c`, `eval`, `env -S`, `watch`."""
    script: str | None = None
    if name in SHELLS:
        script = _shell_script(name, words, command)
    elif name == "eval":
        script = " ".join(_static(word, "eval").text for word in words[1:])
    elif name == "watch":
        start = _skip_options(words, 1, values={"-n", "--interval", "-q", "--equexit"})
        script = " ".join(_static(word, "watch").text for word in words[start:])
    elif name == "env":
        script = _option_value(words, ("-S", "--split-string"))
    elif name == "su":
        script = _option_value(words, ("-c", "--command"))
    if script is not None:
        yield analyse(script, _depth=depth + 1)


def _shell_script(name: str, words: Sequence[Word], command: Command) -> str | None:
    """The script a shell runs: the `-c` string, none for a script file, else its stdin."""
    index = 1
    takes_string = False
    while index < len(words):
        text = words[index].text
        if text == "--":
            index += 1
            break
        if not text.startswith(("-", "+")) or text in ("-", "+"):
            break
        if text.startswith("-") and not text.startswith("--") and "c" in text[1:]:
            takes_string = True
        if text in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            index += 1
        index += 1
    if takes_string:
        if index >= len(words):
            raise _unparseable(f"{name} -c without a command string")
        return _static(words[index], f"{name} -c").text
    if index < len(words) and words[index].text != "-":
        return None  # runs a script file: judged as a read of that file
    heredocs = [r.body for r in command.redirects if r.body is not None]
    if heredocs:
        return heredocs[-1]
    raise ShellParseError(
        "shell.stdin_script",
        f"{name} would read its commands from standard input, which lynkr cannot see; "
        f"pass them with {name} -c '…'",
    )


def _static(word: Word, where: str) -> Word:
    if word.dynamic:
        raise ShellParseError(
            "shell.dynamic_command",
            f"the string {where} runs ({word.text!r}) is only known when the line runs",
        )
    return word


def _option_value(words: Sequence[Word], names: tuple[str, ...]) -> str | None:
    for index, word in enumerate(words[1:], start=1):
        for option in names:
            if word.text == option and index + 1 < len(words):
                return _static(words[index + 1], option).text
            if option.startswith("--") and word.text.startswith(option + "="):
                return _static(word, option).text[len(option) + 1 :]
            if not option.startswith("--") and word.text.startswith(option) and len(word.text) > 2:
                return _static(word, option).text[2:]
    return None


def _skip_options(words: Sequence[Word], start: int, *, values: frozenset[str] | set[str]) -> int:
    """The index of the first word after the options at `start`; `values` take an argument."""
    index = start
    while index < len(words):
        text = words[index].text
        if text == "--":
            return index + 1
        if not text.startswith("-") or text == "-":
            return index
        index += 2 if text in values else 1
    return index


_Starter = Callable[[Sequence[Word]], "int | None"]


def _after(values: set[str], *, assignments: bool = False, positional: int = 0) -> _Starter:
    """A wrapper's rule: skip its options (and `NAME=value`s, and `positional` words)."""

    def start(words: Sequence[Word]) -> int | None:
        index = _skip_options(words, 1, values=values)
        while assignments and index < len(words) and _NAME.match(words[index].text):
            index = _skip_options(words, index + 1, values=values)
        return index + positional

    return start


def _command_builtin(words: Sequence[Word]) -> int | None:
    flags = {word.text for word in words[1:3]}
    return None if flags & {"-v", "-V"} else _skip_options(words, 1, values=set())


_SUDO_VALUES = {"-u", "-g", "-h", "-p", "-C", "-T", "-r", "-t", "-U", "-D", "-R", "--user"}
_XARGS_VALUES = {
    "-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s", "--arg-file", "--delimiter", "--eof",
    "--replace", "--max-lines", "--max-args", "--max-procs", "--max-chars",
    "--process-slot-var",
}  # fmt: skip
_WRAPPERS = {
    "sudo": _after(_SUDO_VALUES),
    "doas": _after({"-u", "-C"}),
    "env": _after({"-u", "--unset", "-C", "--chdir", "-S", "--split-string"}, assignments=True),
    "nohup": _after(set()),
    "timeout": _after({"-s", "--signal", "-k", "--kill-after"}, positional=1),
    "nice": _after({"-n", "--adjustment"}),
    "ionice": _after({"-c", "--class", "-n", "--classdata", "-p", "--pid", "-P", "-u"}),
    "stdbuf": _after({"-i", "-o", "-e", "--input", "--output", "--error"}),
    "exec": _after({"-a"}),
    "command": _command_builtin,
    "builtin": _after(set()),
    "time": _after(set()),
    "xargs": _after(_XARGS_VALUES),
    "chroot": _after({"--userspec", "--groups"}, positional=1),
    "unbuffer": _after(set()),
    "caffeinate": _after({"-t", "-w"}),
    "busybox": _after(set()),
}


def _find_exec(words: Sequence[Word]) -> Iterator[list[Word]]:
    """The commands of `find … -exec CMD … ;` (also `-execdir`, `-ok`, `-okdir`, `+`)."""
    index = 1
    while index < len(words):
        if words[index].text in ("-exec", "-execdir", "-ok", "-okdir"):
            end = index + 1
            while end < len(words) and words[end].text not in (";", "+"):
                end += 1
            if end == len(words):
                raise _unparseable(f"find {words[index].text} without ';' or '+'")
            if end > index + 1:
                yield list(words[index + 1 : end])
            index = end
        index += 1


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
