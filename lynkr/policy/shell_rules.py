"""Shell lines: may every program a line would start run, on the paths it names?

`evaluate_shell` analyses the line (`shell_unwrap.analyse`: every program it
starts, through separators, substitutions and wrappers) and judges each
invocation in turn; the first denial wins:

1. `shell.deny` and the built-in deny list, wherever the command hides;
2. variables that change which program runs (`PATH=…`, `LD_PRELOAD=…`);
3. `shell.allow`, else `shell.default` (wrappers are judged by what they run);
4. writers fed file names by `xargs`; writers under `files.read_only`;
5. git's own rules (`git.*`) for `git` commands;
6. every argument that may name a file, and every redirection target, as a
   path (`path_rules.PathCheck`; `cd` moves where relative paths start).

A line that cannot be read with certainty (`ShellParseError`) is denied.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from lynkr.policy.decision import Decision, ToolContext, deny
from lynkr.policy.git import check_git_command, parse_git
from lynkr.policy.model import Denial, Policy
from lynkr.policy.path_rules import PathCheck
from lynkr.policy.shell_unwrap import SHELLS, Analysis, Invocation, analyse
from lynkr.policy.shell_words import ShellParseError, Word

__all__ = ["evaluate_shell"]


# Wrappers judged by what they run, not by the allow list (deny patterns still apply).
_TRANSPARENT = frozenset(
    {"env", "nohup", "timeout", "nice", "ionice", "stdbuf", "exec", "command", "builtin"}
    | {"time", "xargs", "unbuffer", "caffeinate", "busybox", "eval", "watch", *SHELLS}
)
# Builtins (and env) whose NAME=value arguments set variables.
_SETTERS = frozenset({"export", "declare", "typeset", "readonly", "local", "env"})
# Programs whose arguments are never file names.
_NO_PATHS = frozenset(
    {"echo", "printf", "true", "false", ":", "[", "[[", "test", "expr", "seq", "sleep", "kill"}
    | {"export", "declare", "typeset", "local", "readonly", "set", "unset", "shift", "exit"}
    | {"return", "wait", "jobs", "type", "which", "hash", "alias", "read", "trap", "umask"}
)
# Programs that change files named in their arguments (read-only policies refuse them).
_WRITERS = frozenset(
    {"rm", "rmdir", "mv", "cp", "touch", "mkdir", "ln", "tee", "dd", "truncate", "shred"}
    | {"chmod", "chown", "chgrp", "install", "unlink", "rsync", "patch", "tar", "zip"}
    | {"unzip", "gzip", "gunzip", "bzip2", "xz", "mktemp", "mkfifo", "mknod", "split"}
)
_IN_PLACE = frozenset({"sed", "perl", "ruby"})
# The last argument is written, the others read.
_COPIERS = frozenset({"cp", "rsync", "install", "ln", "scp"})
# Variables that change which program runs or what it loads.
_DANGEROUS_VARIABLES = re.compile(
    r"(PATH|LD_[A-Z_]+|DYLD_[A-Z_]+|BASH_ENV|ENV|PROMPT_COMMAND|IFS|SHELLOPTS|BASHOPTS|PS4"
    r"|GIT_(SSH|SSH_COMMAND|EXEC_PATH|CONFIG\w*|PAGER|EDITOR|ASKPASS|EXTERNAL_DIFF|PROXY_COMMAND)"
    r"|PYTHONSTARTUP|PYTHONPATH|PERL5OPT|PERL5LIB|RUBYOPT|NODE_OPTIONS)\+?=",
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def evaluate_shell(
    policy: Policy, line: str, context: ToolContext | None = None, cwd: str | None = None
) -> Decision:
    """May `line` run? Every command it would start is judged; the first denial wins."""
    context = context or ToolContext()
    try:
        analysis = analyse(line)
    except ShellParseError as error:
        return deny(Denial(error.rule, error.message), "shell")
    check = _ShellCheck(policy, context, cwd)
    denial = check.run(analysis)
    if denial is not None:
        return deny(denial, "shell")
    return Decision(True, check.deciding_rule, check.summary(), tool="shell")


class _ShellCheck:
    """Judges one analysed line; remembers which rule allowed each command."""

    def __init__(self, policy: Policy, context: ToolContext, cwd: str | None) -> None:
        self.policy = policy
        self.context = context
        self.paths = PathCheck(policy, context, cwd)
        self.allowed_by: list[tuple[str, str]] = []  # (command, rule)

    def run(self, analysis: Analysis) -> Denial | None:
        for word in analysis.assignments:
            denial = _variable(word.text)
            if denial:
                return denial
        for invocation in analysis.invocations:
            denial = self.invocation(invocation)
            if denial:
                return denial
        for redirect in analysis.redirects:
            if redirect.target is None or redirect.body is not None:
                continue
            if redirect.writes or redirect.reads:
                denial = self.paths.word(redirect.target, write=redirect.writes, redirect=True)
                if denial:
                    return denial
        return None

    def invocation(self, inv: Invocation) -> Denial | None:
        args = [word.text for word in inv.args]
        for pattern in self.policy.shell.deny_patterns:
            if pattern.matches(inv.name, args, deny=True):
                return _denied_pattern(pattern.text, inv, self.policy.shell.deny)
        name = inv.name.lower()
        if name in _SETTERS:
            for word in inv.args:
                denial = _variable(word.text)
                if denial:
                    return denial
        for step in (self.judge, self.hidden, self.read_only, self.git, self.arguments):
            denial = step(inv, name)
            if denial:
                return denial
        return None

    def judge(self, inv: Invocation, name: str) -> Denial | None:
        """`shell.allow`, else `shell.default` (wrappers are judged by what they run)."""
        if inv.wraps and name in _TRANSPARENT:
            return None
        args = [word.text for word in inv.args]
        for pattern in self.policy.shell.allow:
            if pattern.matches(inv.name, args, deny=False):
                self.allowed_by.append((inv.name, f"shell.allow {pattern.text!r}"))
                return None
        if self.policy.shell.default == "deny":
            return Denial(
                "shell.default",
                f"`{inv.name}` is not in shell.allow and this policy denies other commands "
                "(shell.default: deny); add a pattern for it to shell.allow",
            )
        self.allowed_by.append((inv.name, "shell.default: allow"))
        return None

    def hidden(self, inv: Invocation, name: str) -> Denial | None:
        if "xargs" in inv.via and _writes(inv, name):
            return Denial(
                "shell.hidden_arguments",
                f"xargs gives `{inv.name}` file names lynkr cannot see; list the files explicitly",
            )
        return None

    def read_only(self, inv: Invocation, name: str) -> Denial | None:
        if self.policy.files.read_only and _writes(inv, name):
            return Denial(
                "files.read_only",
                f"`{inv.name}` changes files and this policy is read-only (files.read_only: true)",
            )
        return None

    def git(self, inv: Invocation, name: str) -> Denial | None:
        if name != "git":
            return None
        command = parse_git([word.text for word in inv.args])
        if command.directory is not None:
            denial = self.paths.check(command.directory, write=False)
            if denial:
                return denial
        return check_git_command(
            command,
            self.policy.git,
            read_only=self.policy.files.read_only,
            tests_passed=self.context.tests_passed,
        )

    def arguments(self, inv: Invocation, name: str) -> Denial | None:
        """Every argument that may name a file is checked as a path (`cd` moves the start)."""
        if name in _NO_PATHS or (inv.wraps and name in _TRANSPARENT):
            return None
        if name in ("cd", "pushd"):
            return self.paths.change_directory(inv.args)
        if name == "find":
            return _find(self.paths, inv)
        words = _path_words(inv, name)
        writes = _writes(inv, name)
        for index, word in enumerate(words):
            is_write = writes and (name not in _COPIERS or index == len(words) - 1)
            denial = self.paths.word(word, write=is_write)
            if denial:
                return denial
        return None

    @property
    def deciding_rule(self) -> str:
        rules = {rule.split(" ", 1)[0].rstrip(":") for _, rule in self.allowed_by}
        return "shell.default" if "shell.default" in rules or not rules else "shell.allow"

    def summary(self) -> str:
        if not self.allowed_by:
            return "nothing in the line is denied"
        judged = ", ".join(f"`{name}` ({rule})" for name, rule in self.allowed_by)
        return f"every command is allowed: {judged}"


def _find(paths: PathCheck, inv: Invocation) -> Denial | None:
    """`find ROOTS… EXPR`: roots are read; `-delete` writes them; `-fprint F` writes F."""
    words = list(inv.args)
    texts = [w.text for w in words]
    follows = any(t in ("-L", "-follow") for t in texts)
    deletes = "-delete" in texts
    runs = any(t.startswith(("-exec", "-ok")) for t in texts)
    if follows and (deletes or runs):
        return Denial(
            "files.workspace_only",
            "find -L follows symlinks out of the workspace; drop -L to -delete or -exec",
        )
    roots = [w for w in words if not w.text.startswith(("-", "(", "!"))]
    first_expr = next((i for i, t in enumerate(texts) if t.startswith(("-", "(", "!"))), None)
    if first_expr is not None:
        roots = [w for w in words[:first_expr] if w.text not in ("-H", "-L", "-P")]
    if deletes and paths.policy.files.read_only:
        return Denial("files.read_only", "find -delete changes files; this policy is read-only")
    for root in roots or [Word(".")]:
        denial = paths.word(root, write=deletes)
        if denial:
            return denial
    for index, text in enumerate(texts[:-1]):
        if text in ("-fprint", "-fprint0", "-fprintf", "-fls"):
            denial = paths.word(words[index + 1], write=True)
            if denial:
                return denial
    return None


def _denied_pattern(text: str, inv: Invocation, own: Sequence[Any]) -> Denial:
    mine = any(pattern.text == text for pattern in own)
    key = "shell.deny" if mine else "shell.builtin_deny"
    where = f" (inside {' → '.join(inv.via)})" if inv.via else ""
    how = (
        "remove it from shell.deny to allow it"
        if mine
        else "lynkr's built-in list; set shell.builtin_deny: false only if you must"
    )
    return Denial(key, f"`{inv.name}`{where} matches {key} pattern {text!r}; {how}")


def _variable(assignment: str) -> Denial | None:
    if _DANGEROUS_VARIABLES.match(assignment):
        name = assignment.split("=", 1)[0].rstrip("+")
        return Denial(
            "shell.dangerous_variable",
            f"setting {name} changes which program runs or what it loads; "
            "run the command without it",
        )
    return None


def _writes(inv: Invocation, name: str) -> bool:
    if name in _WRITERS:
        return True
    if name in _IN_PLACE:
        return any(w.text.startswith(("-i", "--in-place")) for w in inv.args)
    return False


def _path_words(inv: Invocation, name: str) -> list[Word]:
    """The argument words that may be file names (`--opt=value` values included)."""
    words: list[Word] = []
    skip_next = False
    for word in inv.args:
        text = word.text
        if skip_next:
            skip_next = False
            continue
        if text.startswith("-") and "=" not in text:
            single = not text.startswith("--") and text[1:].isalpha()
            if name == "git" and (text == "--message" or (single and text.endswith("m"))):
                skip_next = True  # a commit message, not a path
            continue
        if text.startswith("-"):
            _, _, text = text.partition("=")
            word = Word(text, word.quoted, word.dynamic, word.glob, word.brace, False)
        if _URL.match(text) or not text:
            continue
        words.append(word)
    return words
