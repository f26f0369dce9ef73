"""Unwrap a parsed shell line to every program it starts, however it is wrapped.

A command can run another: the words after `sudo` are a command of their own,
so are the string of `bash -c '…'` and the arguments of `find -exec … ;`.
`analyse` follows them all, to the programs that really run:

- inside the string of `bash -c '…'` (any shell, any `-xc` flag cluster),
  `eval …`, `env -S '…'`, `su -c '…'`, `watch '…'`, and a here-document fed
  to a shell;
- behind wrappers that run their arguments as a command: `sudo`, `doas`,
  `env`, `nohup`, `timeout`, `nice`, `ionice`, `stdbuf`, `exec`, `command`,
  `builtin`, `time`, `xargs`, `chroot`, `unbuffer`, `caffeinate`, `busybox`
  (the `_WRAPPERS` table says where each one's command starts) and
  `find -exec`/`-execdir`/`-ok`.

What cannot be known without running the line — a command name computed at run
time (`$CMD`, `$(echo rm)`, `r*`, `{rm,-rf}`), a shell reading its script from
a pipe, nesting deeper than `MAX_DEPTH` — raises `ShellParseError`, and the
evaluator denies the line.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from lynkr.policy.shell_parser import UNSUPPORTED, parse
from lynkr.policy.shell_words import (
    ASSIGNMENT,
    Command,
    Redirect,
    ShellParseError,
    Word,
    unparseable,
    unsupported,
)

__all__ = ["MAX_DEPTH", "SHELLS", "Analysis", "Invocation", "analyse"]

# Nesting deeper than this (bash -c inside eval inside $( … ) …) is refused.
MAX_DEPTH = 12

RESERVED = frozenset({"!", "time", "if", "then", "else", "elif", "do", "while", "until", "{"})
CLOSERS = frozenset({"fi", "done", "}", "esac"})
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "rbash"})


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
            raise unsupported(f"'{text}' is not supported; write the commands out")
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
            raise unparseable(f"{name} -c without a command string")
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
        while assignments and index < len(words) and ASSIGNMENT.match(words[index].text):
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
                raise unparseable(f"find {words[index].text} without ';' or '+'")
            if end > index + 1:
                yield list(words[index + 1 : end])
            index = end
        index += 1
