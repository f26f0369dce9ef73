"""Decisions: a policy applied to a request, or to one tool call, as plain data.

`evaluate_tool_call` is what the agent calls before running any server-side
tool and what the policy middleware applies to `tool_use` blocks in responses.
It maps the tool's name to its canonical name first (`aliases.py`), so
`Bash`, `bash`, `lynkr_shell` and `shell` meet the same rules. The checks, in
order, each one a rule named in the decision:

1. `tools.max_calls_per_turn`, `tools.deny`, `tools.allow` (globs on the
   canonical and on the raw name, case-insensitive);
2. by family: `shell` lines (see `_ShellCheck`), `file.*` paths, `git.*` actions;
3. otherwise allowed (`tools.allow`).

`evaluate_request` applies the request rules to a Messages body and returns
the decision and the body to forward (rewritten when a rule rewrites).
"""

from __future__ import annotations

import copy
import glob
import posixpath
import re
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lynkr.policy.aliases import canonical_name
from lynkr.policy.git import check_git_command, check_git_tool, parse_git
from lynkr.policy.model import Denial, Policy
from lynkr.policy.paths import ALWAYS_WRITABLE, Workspace, glob_matches, name_matches
from lynkr.policy.shell import SHELLS, Analysis, Invocation, ShellParseError, Word, analyse
from lynkr.policy.shell import brace_variants as _brace_variants

__all__ = [
    "Decision",
    "Rewrite",
    "ToolContext",
    "evaluate_request",
    "evaluate_shell",
    "evaluate_tool_call",
]


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A change a request rule made to the body, for the log."""

    rule: str
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    """Allowed or not, the rule that decided, why (and how to change it), and rewrites made."""

    allowed: bool
    rule: str
    reason: str
    rewrites: tuple[Rewrite, ...] = ()
    tool: str | None = None  # the canonical tool name, for tool calls

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "rule": self.rule,
            "reason": self.reason,
            "tool": self.tool,
            "rewrites": [{"rule": r.rule, "detail": r.detail} for r in self.rewrites],
        }


@dataclass(frozen=True, slots=True)
class ToolContext:
    """What the caller knows about the call: workspace, calls already made, test outcome.

    Without a `workspace`, paths are not confined (the middleware cannot see
    the client's disk); deny globs, read-only and system paths still apply.
    """

    workspace: Workspace | None = None
    calls_in_turn: int = 0
    tests_passed: bool | None = None


def _deny(denial: Denial, tool: str | None = None) -> Decision:
    return Decision(False, denial.rule, denial.reason, tool=tool)


# --- tool calls --------------------------------------------------------------------


def evaluate_tool_call(
    policy: Policy,
    name: str,
    tool_input: Mapping[str, Any] | None,
    context: ToolContext | None = None,
) -> Decision:
    """May the tool called `name` run with `tool_input`? (Rules in the module doc.)"""
    context = context or ToolContext()
    tool = canonical_name(name)
    arguments = tool_input if isinstance(tool_input, Mapping) else {}
    denial = _tool_rules(policy, name, tool, context) or _family_rules(
        policy, tool, arguments, context
    )
    if denial is not None:
        return _deny(denial, tool)
    if tool == "shell":
        decision = evaluate_shell(policy, _command_line(arguments) or "", context, _cwd(arguments))
        return Decision(decision.allowed, decision.rule, decision.reason, tool=tool)
    return Decision(True, "tools.allow", f"{name} ({tool}) is allowed", tool=tool)


def _tool_rules(policy: Policy, raw: str, tool: str, context: ToolContext) -> Denial | None:
    rules = policy.tools
    limit = rules.max_calls_per_turn
    if limit is not None and context.calls_in_turn >= limit:
        return Denial(
            "tools.max_calls_per_turn",
            f"this turn already made {context.calls_in_turn} tool calls, the policy's limit "
            f"(tools.max_calls_per_turn: {limit}); finish the turn or raise the limit",
        )
    hit = name_matches(rules.deny, tool) or name_matches(rules.deny, raw)
    if hit:
        return Denial("tools.deny", f"tool {raw} ({tool}) matches tools.deny {hit!r}")
    if not (name_matches(rules.allow, tool) or name_matches(rules.allow, raw)):
        return Denial("tools.allow", f"tool {raw} ({tool}) is not in tools.allow; add it there")
    return None


_PATH_KEYS = ("file_path", "path", "notebook_path", "file", "filename", "filepath")


def _family_rules(
    policy: Policy, tool: str, arguments: Mapping[str, Any], context: ToolContext
) -> Denial | None:
    family, _, action = tool.partition(".")
    if tool == "shell":
        if _command_line(arguments) is None:
            return Denial("shell.no_command", "the shell tool call has no 'command' string")
        cwd = _cwd(arguments)
        return _PathCheck(policy, context).check(cwd, write=False) if cwd else None
    if family == "file":
        return _file_tool(policy, action, arguments, context)
    if family == "git":
        denial = check_git_tool(
            action,
            arguments,
            policy.git,
            read_only=policy.files.read_only,
            tests_passed=context.tests_passed,
        )
        return denial or _paths_in(policy, context, arguments, write=False)
    if family == "tests":
        return _paths_in(policy, context, arguments, write=False)
    return None


def _file_tool(
    policy: Policy, action: str, arguments: Mapping[str, Any], context: ToolContext
) -> Denial | None:
    writes = action in ("write", "edit")
    if writes and policy.files.read_only:
        return Denial("files.read_only", "this policy is read-only (files.read_only: true)")
    paths = [arguments[key] for key in _PATH_KEYS if isinstance(arguments.get(key), str)]
    if action in ("read", "write", "edit") and not paths:
        return Denial("files.no_path", f"the file.{action} call names no file_path")
    pattern = arguments.get("pattern")
    if action == "list" and isinstance(pattern, str):
        paths.append(_static_prefix(pattern))
    check = _PathCheck(policy, context)
    for path in paths:
        denial = check.check(path, write=writes)
        if denial:
            return denial
    return None


def _paths_in(
    policy: Policy, context: ToolContext, arguments: Mapping[str, Any], *, write: bool
) -> Denial | None:
    check = _PathCheck(policy, context)
    for key in (*_PATH_KEYS, "paths", "cwd", "directory"):
        values = arguments.get(key)
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, str):
                denial = check.check(value, write=write)
                if denial:
                    return denial
    return None


def _static_prefix(pattern: str) -> str:
    """The directory part of a glob before its first wildcard: `../**/*.py` → `..`."""
    cut = re.split(r"[*?\[{]", pattern, maxsplit=1)[0]
    return posixpath.dirname(cut) or "."


def _command_line(arguments: Mapping[str, Any]) -> str | None:
    for key in ("command", "cmd", "script"):
        if isinstance(arguments.get(key), str):
            return str(arguments[key])
    argv = arguments.get("argv", arguments.get("args"))
    if isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv):
        return shlex.join(argv)
    return None


def _cwd(arguments: Mapping[str, Any]) -> str | None:
    for key in ("cwd", "workdir", "working_directory"):
        if isinstance(arguments.get(key), str):
            return str(arguments[key])
    return None


# --- shell lines -------------------------------------------------------------------

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
        return _deny(Denial(error.rule, error.message), "shell")
    check = _ShellCheck(policy, context, cwd)
    denial = check.run(analysis)
    if denial is not None:
        return _deny(denial, "shell")
    return Decision(True, check.deciding_rule, check.summary(), tool="shell")


class _ShellCheck:
    """Judges one analysed line; remembers which rule allowed each command."""

    def __init__(self, policy: Policy, context: ToolContext, cwd: str | None) -> None:
        self.policy = policy
        self.context = context
        self.paths = _PathCheck(policy, context, cwd)
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
            return self.paths.find(inv)
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


# --- paths -------------------------------------------------------------------------

# Without a workspace, writes here are refused anyway.
_SYSTEM: tuple[str, ...] = ("/etc/**", "/usr/**", "/bin/**", "/sbin/**", "/boot/**", "/dev/**")
_SYSTEM += ("/sys/**", "/proc/**", "/lib/**", "/lib64/**", "/var/**", "/System/**", "/Library/**")
# A path no file can have (NUL): stands for "more matches than were checked".
_TOO_WIDE = "\0glob-too-wide"
_MAX_GLOB = 1000


@dataclass
class _PathCheck:
    """Path rules (`files.*`) for one call; `cwds` are where relative paths may start."""

    policy: Policy
    context: ToolContext
    cwd: str | None = None
    cwds: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.cwd is not None and self.context.workspace is not None:
            self.cwds = [self.context.workspace.resolve(self.cwd)]
        else:
            self.cwds = [None]

    def word(self, word: Word, *, write: bool, redirect: bool = False) -> Denial | None:
        """A shell word as a path: dynamic ones are refused when they could escape."""
        if word.dynamic:
            if redirect or write or "/" in word.text or word.text.startswith(("~", "$")):
                return Denial(
                    "files.dynamic_path",
                    f"the path {word.text!r} is only known when the line runs; write it literally",
                )
            return None
        for variant in _brace_variants(word.text) if word.brace else [word.text]:
            for path in self.expand(variant, word.glob):
                denial = self.check(path, write=write)
                if denial:
                    return denial
        return None

    def expand(self, text: str, is_glob: bool) -> Iterator[str]:
        """`text`, or what its wildcards match in the workspace (a symlink could be among them)."""
        yield text
        workspace = self.context.workspace
        if not is_glob or workspace is None:
            return
        for start in self.cwds:
            base = start or workspace.resolve(".")
            pattern = workspace.expand_user(text)
            for index, match in enumerate(glob.iglob(pattern, root_dir=base)):
                if index >= _MAX_GLOB:
                    yield _TOO_WIDE  # unchecked matches must not pass: deny instead
                    break
                yield posixpath.join(base, match)

    def check(self, path: str, *, write: bool) -> Denial | None:
        """The `files.*` rule `path` breaks when read (or written), or None."""
        if path == _TOO_WIDE:
            return Denial(
                "files.glob_too_wide",
                f"a wildcard matches more than {_MAX_GLOB} paths; they cannot all be checked, "
                "so the command is refused — name the files, or narrow the pattern",
            )
        rules = self.policy.files
        if write and posixpath.normpath(path) in ALWAYS_WRITABLE:
            return None
        if write and rules.read_only:
            return Denial(
                "files.read_only",
                f"writing {path!r} is refused: this policy is read-only (files.read_only: true)",
            )
        workspace = self.context.workspace
        if workspace is None:
            return self.lexical(path, write=write)
        for start in self.cwds:
            resolved = workspace.resolve(path, cwd=start)
            denial = self.resolved(path, resolved, workspace, write=write)
            if denial:
                return denial
        return None

    def resolved(self, path: str, real: str, workspace: Workspace, *, write: bool) -> Denial | None:
        rules = self.policy.files
        if write and real in ALWAYS_WRITABLE:
            return None
        inside = workspace.contains(real)
        if not inside and rules.workspace_only:
            readable = not write and glob_matches(rules.read_outside, real)
            if not readable:
                return Denial(
                    "files.workspace_only",
                    f"{path!r} is outside the workspace (after resolving '..', '~' and "
                    "symlinks); tools may only use paths inside it"
                    + ("" if write else " (or list it in files.read_outside)"),
                )
        names = {workspace.relative(real) if inside else real, posixpath.normpath(path)}
        return self.globs(path, names, write=write)

    def lexical(self, path: str, *, write: bool) -> Denial | None:
        normal = posixpath.normpath(path)
        if write and normal in ALWAYS_WRITABLE:
            return None
        if write and normal.startswith("/") and glob_matches(_SYSTEM, normal):
            return Denial("files.system_path", f"writing {path!r} (a system path) is refused")
        return self.globs(path, {normal}, write=write)

    def globs(self, path: str, names: set[str], *, write: bool) -> Denial | None:
        rules = self.policy.files
        for name in names:
            hit = glob_matches(rules.deny, name)
            if hit:
                return Denial("files.deny", f"{path!r} matches files.deny {hit!r}")
            hit = glob_matches(rules.deny_write, name) if write else None
            if hit:
                return Denial(
                    "files.deny_write", f"writing {path!r} matches files.deny_write {hit!r}"
                )
        return None

    def change_directory(self, args: Sequence[Word]) -> Denial | None:
        """`cd DIR`: DIR must be allowed, and later relative paths may start there too."""
        targets = [w for w in args if not w.text.startswith("-") or w.text == "-"]
        if not targets or targets[0].text == "-":
            if self.context.workspace is None:
                return None
            return Denial(
                "files.workspace_only",
                "`cd` without a directory (or `cd -`) leaves the workspace; name the directory",
            )
        denial = self.word(targets[0], write=False, redirect=True)
        if denial is None and self.context.workspace is not None:
            workspace = self.context.workspace
            self.cwds += [workspace.resolve(targets[0].text, cwd=c) for c in self.cwds]
        return denial

    def find(self, inv: Invocation) -> Denial | None:
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
        if deletes and self.policy.files.read_only:
            return Denial("files.read_only", "find -delete changes files; this policy is read-only")
        for root in roots or [Word(".")]:
            denial = self.word(root, write=deletes)
            if denial:
                return denial
        for index, text in enumerate(texts[:-1]):
            if text in ("-fprint", "-fprint0", "-fprintf", "-fls"):
                denial = self.word(words[index + 1], write=True)
                if denial:
                    return denial
        return None


# --- requests ----------------------------------------------------------------------


def evaluate_request(
    policy: Policy,
    body: Mapping[str, Any],
    *,
    count_tokens: Callable[[dict[str, Any]], int] | None = None,
) -> tuple[Decision, dict[str, Any]]:
    """The decision for a Messages request body, and the body to forward.

    Rules, in order: `request.allow_models`/`deny_models`, `strip_tools`
    (rewrite), `deny_tools`/`allow_tools`, `max_tools`, `thinking`,
    `max_tokens` (a clamp: rewrite), `max_request_tokens` (`count_tokens`
    estimates the body; without it the rule is skipped). The returned body is a
    copy when something was rewritten, else `body` itself.
    """
    rules = policy.request
    working: dict[str, Any] = dict(body)
    rewrites: list[Rewrite] = []
    steps: tuple[Callable[[Policy, dict[str, Any], list[Rewrite]], Denial | None], ...] = (
        _models,
        _strip_tools,
        _tool_names,
        _max_tools,
        _thinking,
        _clamp_max_tokens,
    )
    for step in steps:
        denial = step(policy, working, rewrites)
        if denial:
            return _deny(denial), dict(body)
    limit = rules.max_request_tokens
    if limit is not None and count_tokens is not None:
        tokens = count_tokens(working)
        if tokens > limit:
            return _deny(
                Denial(
                    "request.max_request_tokens",
                    f"the request is about {tokens} input tokens, over the policy's "
                    f"request.max_request_tokens {limit}; shorten the conversation (/compact)",
                )
            ), dict(body)
    reason = "; ".join(r.detail for r in rewrites) or "no request rule applies"
    rule = rewrites[0].rule if rewrites else "request"
    return Decision(True, rule, reason, tuple(rewrites)), (working if rewrites else dict(body))


def _models(policy: Policy, body: dict[str, Any], _: list[Rewrite]) -> Denial | None:
    rules = policy.request
    model = str(body.get("model", ""))
    hit = name_matches(rules.deny_models, model)
    if hit:
        return Denial("request.deny_models", f"model {model!r} matches request.deny_models {hit!r}")
    if not name_matches(rules.allow_models, model):
        allowed = ", ".join(rules.allow_models)
        return Denial(
            "request.allow_models",
            f"model {model!r} is not in request.allow_models ({allowed}); use one of those",
        )
    return None


def _tools_of(body: Mapping[str, Any]) -> list[Any]:
    tools = body.get("tools")
    return tools if isinstance(tools, list) else []


def _tool_name(tool: Any) -> str:
    return str(tool.get("name", "")) if isinstance(tool, Mapping) else ""


def _matches(patterns: Sequence[str], raw: str) -> str | None:
    return name_matches(patterns, raw) or name_matches(patterns, canonical_name(raw))


def _strip_tools(policy: Policy, body: dict[str, Any], rewrites: list[Rewrite]) -> Denial | None:
    patterns = policy.request.strip_tools
    tools = _tools_of(body)
    if not patterns or not tools:
        return None
    kept = [t for t in tools if not _matches(patterns, _tool_name(t))]
    if len(kept) == len(tools):
        return None
    gone = sorted({_tool_name(t) for t in tools} - {_tool_name(t) for t in kept})
    body["tools"] = kept
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("name") in gone:
        del body["tool_choice"]
    rewrites.append(Rewrite("request.strip_tools", f"removed tools {', '.join(gone)}"))
    return None


def _tool_names(policy: Policy, body: dict[str, Any], _: list[Rewrite]) -> Denial | None:
    rules = policy.request
    for tool in _tools_of(body):
        name = _tool_name(tool)
        hit = _matches(rules.deny_tools, name)
        if hit:
            return Denial(
                "request.deny_tools",
                f"tool {name!r} matches request.deny_tools {hit!r}; remove the tool from the "
                "request (or list it in request.strip_tools to have lynkr remove it)",
            )
        if not _matches(rules.allow_tools, name):
            return Denial(
                "request.allow_tools",
                f"tool {name!r} is not in request.allow_tools; add it there or strip it",
            )
    return None


def _max_tools(policy: Policy, body: dict[str, Any], _: list[Rewrite]) -> Denial | None:
    limit = policy.request.max_tools
    count = len(_tools_of(body))
    if limit is not None and count > limit:
        return Denial(
            "request.max_tools",
            f"the request declares {count} tools, over request.max_tools {limit}; send fewer "
            "tools or strip some with request.strip_tools",
        )
    return None


def _thinking_on(body: Mapping[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, Mapping) and thinking.get("type") not in (None, "disabled")


def _thinking(policy: Policy, body: dict[str, Any], rewrites: list[Rewrite]) -> Denial | None:
    mode = policy.request.thinking
    on = _thinking_on(body)
    if mode == "require" and not on:
        return Denial(
            "request.thinking",
            "this policy requires extended thinking (request.thinking: require); send "
            '"thinking": {"type": "enabled", "budget_tokens": …}',
        )
    if mode == "deny" and on:
        return Denial(
            "request.thinking",
            "this policy does not allow extended thinking (request.thinking: deny); turn it off "
            "(Claude Code: MAX_THINKING_TOKENS=0) or use request.thinking: strip",
        )
    if mode == "strip" and "thinking" in body:
        _remove_thinking(body)
        rewrites.append(Rewrite("request.thinking", "removed thinking (request.thinking: strip)"))
    return None


def _remove_thinking(body: dict[str, Any]) -> None:
    """Drop `thinking`, and the `clear_thinking` context edits that need it."""
    body.pop("thinking", None)
    management = body.get("context_management")
    if isinstance(management, Mapping) and isinstance(management.get("edits"), list):
        edits = [
            e
            for e in management["edits"]
            if not (isinstance(e, Mapping) and str(e.get("type", "")).startswith("clear_thinking"))
        ]
        if edits:
            body["context_management"] = {**management, "edits": edits}
        else:
            body.pop("context_management")


def _clamp_max_tokens(
    policy: Policy, body: dict[str, Any], rewrites: list[Rewrite]
) -> Denial | None:
    limit = policy.request.max_tokens
    asked = body.get("max_tokens")
    if limit is None or not isinstance(asked, int) or asked <= limit:
        return None
    body["max_tokens"] = limit
    rewrites.append(Rewrite("request.max_tokens", f"max_tokens {asked} → {limit}"))
    thinking = body.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, Mapping) else None
    if isinstance(thinking, Mapping) and isinstance(budget, int) and budget >= limit:
        if limit - 1 >= 1024:  # Anthropic: 1024 ≤ budget_tokens < max_tokens
            body["thinking"] = {**copy.deepcopy(dict(thinking)), "budget_tokens": limit - 1}
            detail = f"thinking.budget_tokens {budget} → {limit - 1}"
        else:
            _remove_thinking(body)
            detail = "removed thinking (its minimum budget of 1024 does not fit max_tokens)"
        rewrites.append(Rewrite("request.max_tokens", detail))
    return None
