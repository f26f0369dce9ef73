"""A policy file as frozen dataclasses (the reference is schema/policy.schema.json).

`Policy.from_data` builds one from the file's data (what `lynkr.config.policy`
returns after located validation, or a mapping written in Python); defaults
here equal the schema's, so an empty file is `Policy()`. It re-checks types
and raises `ValueError` naming the key, because a Python user may hand it a
mapping that no schema has seen.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

__all__ = [
    "BUILTIN_DENY",
    "CommandPattern",
    "Denial",
    "FileRules",
    "GitRules",
    "Policy",
    "RequestRules",
    "ShellRules",
    "ToolRules",
]

THINKING_MODES = ("allow", "require", "deny", "strip")


@dataclass(frozen=True, slots=True)
class Denial:
    """Which rule refused, and a message saying why and how to change it."""

    rule: str
    reason: str


@dataclass(frozen=True, slots=True)
class CommandPattern:
    """`rm -rf /`, `git push --force`, `mkfs*`: a command glob, flags and argument globs.

    A deny pattern matches an invocation that has every flag (short flags in any
    cluster or order: `-rf` matches `-fr`, `-r -f`; a long flag also matches a
    prefix git would accept, `--forc`) and, for every argument glob, some
    argument it matches. An allow pattern needs its argument globs to be the
    invocation's leading arguments in order (`git status` allows
    `git status -s`, not `git push status`) and its flags exactly.
    """

    text: str
    command: str
    flags: tuple[str, ...] = ()
    args: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> CommandPattern:
        words = text.split()
        if not words:
            raise ValueError("a command pattern must not be empty")
        rest = words[1:]
        flags = tuple(w for w in rest if w.startswith("-") and len(w) > 1)
        args = tuple(w for w in rest if not (w.startswith("-") and len(w) > 1))
        return cls(text, words[0].lower(), flags, args)

    def matches(self, name: str, args: Sequence[str], *, deny: bool) -> bool:
        """Does the invocation `name args…` match (see the class doc for `deny`)?"""
        if not fnmatchcase(name.lower(), self.command):
            return False
        present = _Flags.of(args)
        if not all(present.has(flag, prefix=deny) for flag in self.flags):
            return False
        positional = [_normal(a) for a in present.positional]
        if deny:
            return all(any(fnmatchcase(a, glob) for a in positional) for glob in self.args)
        if len(positional) < len(self.args):
            return False
        return all(fnmatchcase(a, g) for a, g in zip(positional, self.args, strict=False))


@dataclass(frozen=True, slots=True)
class _Flags:
    shorts: frozenset[str]
    longs: tuple[str, ...]
    exact: frozenset[str]
    positional: tuple[str, ...]

    @classmethod
    def of(cls, args: Iterable[str]) -> _Flags:
        shorts: set[str] = set()
        longs: list[str] = []
        exact: set[str] = set()
        positional: list[str] = []
        options_end = False
        for arg in args:
            if options_end or not arg.startswith("-") or arg == "-":
                positional.append(arg)
            elif arg == "--":
                options_end = True
            elif arg.startswith("--"):
                longs.append(arg[2:].split("=", 1)[0])
                exact.add(arg)
            else:
                exact.add(arg)
                if arg[1:].isalpha():
                    shorts.update(arg[1:])
        return cls(frozenset(shorts), tuple(longs), frozenset(exact), tuple(positional))

    def has(self, flag: str, *, prefix: bool) -> bool:
        if flag.startswith("--"):
            name = flag[2:]
            return any(
                given == name or (prefix and len(given) >= 3 and name.startswith(given))
                for given in self.longs
            )
        letters = flag[1:]
        if letters.isalpha() and len(letters) <= 3:
            return set(letters) <= self.shorts
        return flag in self.exact


def _normal(arg: str) -> str:
    """`//` → `/`, `/./` → `/`, `./` → `.`: so `rm -rf //` still matches `/`."""
    if not arg.startswith("/"):
        return posixpath.normpath(arg) if arg else arg
    collapsed = re.sub(r"/+", "/", arg)
    parts = [p for p in collapsed.split("/") if p not in ("", ".")]
    return "/" + "/".join(parts)


# Always denied unless `shell.builtin_deny: false`: privilege, disks, power, the root.
BUILTIN_DENY: tuple[str, ...] = (
    "sudo",
    "su",
    "doas",
    "pkexec",
    "runuser",
    "chroot",
    "rm -r /",
    "rm -R /",
    "rm --recursive /",
    "rm -r /*",
    "rm -R /*",
    "rm -r ~",
    "rm -r ~/*",
    "rm --no-preserve-root",
    "chmod -R * /",
    "chown -R * /",
    "mkfs*",
    "fdisk",
    "sfdisk",
    "parted",
    "wipefs",
    "dd of=/dev/*",
    "shred /dev/*",
    "shutdown",
    "reboot",
    "halt",
    "poweroff",
    "init 0",
    "init 6",
    "systemctl poweroff",
    "systemctl reboot",
    "systemctl halt",
    "kill -1",
    "kill -9 -1",
    "pkill -9 -1",
)

_BUILTIN_PATTERNS = tuple(CommandPattern.parse(p) for p in BUILTIN_DENY)


@dataclass(frozen=True, slots=True)
class RequestRules:
    """Checks and rewrites of the Messages request, before any provider sees it."""

    max_tools: int | None = None
    allow_tools: tuple[str, ...] = ("*",)
    deny_tools: tuple[str, ...] = ()
    strip_tools: tuple[str, ...] = ()
    allow_models: tuple[str, ...] = ("*",)
    deny_models: tuple[str, ...] = ()
    max_tokens: int | None = None
    thinking: str = "allow"
    max_request_tokens: int | None = None

    @property
    def active(self) -> bool:
        return self != RequestRules()


@dataclass(frozen=True, slots=True)
class ToolRules:
    """Which tools may be called at all (canonical or raw names), and how often per turn."""

    allow: tuple[str, ...] = ("*",)
    deny: tuple[str, ...] = ()
    max_calls_per_turn: int | None = None


@dataclass(frozen=True, slots=True)
class ShellRules:
    """Shell lines: deny patterns, allow patterns, and what happens to other commands."""

    default: str = "allow"
    allow: tuple[CommandPattern, ...] = ()
    deny: tuple[CommandPattern, ...] = ()
    builtin_deny: bool = True

    @property
    def deny_patterns(self) -> tuple[CommandPattern, ...]:
        return (_BUILTIN_PATTERNS if self.builtin_deny else ()) + self.deny


@dataclass(frozen=True, slots=True)
class FileRules:
    """Where file tools, redirections and command arguments may read and write."""

    workspace_only: bool = True
    read_only: bool = False
    deny: tuple[str, ...] = ()
    deny_write: tuple[str, ...] = ()
    read_outside: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GitRules:
    """What git may do, whether through `git` in a shell line or lynkr's git tools."""

    allow_push: bool = False
    allow_force_push: bool = False
    allow_commit: bool = True
    allow_pull: bool = True
    require_tests: bool = False
    test_command: str | None = None
    commit_message_regex: str | None = None

    @property
    def commit_message(self) -> re.Pattern[str] | None:
        return re.compile(self.commit_message_regex) if self.commit_message_regex else None


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything one policy file says."""

    name: str = ""
    description: str = ""
    request: RequestRules = field(default_factory=RequestRules)
    tools: ToolRules = field(default_factory=ToolRules)
    shell: ShellRules = field(default_factory=ShellRules)
    files: FileRules = field(default_factory=FileRules)
    git: GitRules = field(default_factory=GitRules)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Policy:
        """Build from a policy file's data; `ValueError` names the first bad key."""
        reader = _Reader(data, "")
        reader.only({"version", "name", "description", "request", "tools", "shell", "files", "git"})
        if reader.get("version", int, 1) != 1:
            raise ValueError("policy: version must be 1")
        return cls(
            name=reader.get("name", str, ""),
            description=reader.get("description", str, ""),
            request=_request(reader.section("request")),
            tools=_tools(reader.section("tools")),
            shell=_shell(reader.section("shell")),
            files=_files(reader.section("files")),
            git=_git(reader.section("git")),
        )


def _request(r: _Reader) -> RequestRules:
    d = RequestRules()
    r.only(set(RequestRules.__slots__))
    thinking = r.get("thinking", str, d.thinking)
    if thinking not in THINKING_MODES:
        raise ValueError(f"policy: request.thinking must be one of {THINKING_MODES}")
    return RequestRules(
        max_tools=r.count("max_tools"),
        allow_tools=r.strings("allow_tools", d.allow_tools),
        deny_tools=r.strings("deny_tools", ()),
        strip_tools=r.strings("strip_tools", ()),
        allow_models=r.strings("allow_models", d.allow_models),
        deny_models=r.strings("deny_models", ()),
        max_tokens=r.count("max_tokens", minimum=1),
        thinking=thinking,
        max_request_tokens=r.count("max_request_tokens", minimum=1),
    )


def _tools(r: _Reader) -> ToolRules:
    r.only(set(ToolRules.__slots__))
    return ToolRules(
        allow=r.strings("allow", ("*",)),
        deny=r.strings("deny", ()),
        max_calls_per_turn=r.count("max_calls_per_turn"),
    )


def _shell(r: _Reader) -> ShellRules:
    r.only(set(ShellRules.__slots__))
    default = r.get("default", str, "allow")
    if default not in ("allow", "deny"):
        raise ValueError(f"policy: shell.default must be 'allow' or 'deny', got {default!r}")
    return ShellRules(
        default=default,
        allow=tuple(CommandPattern.parse(p) for p in r.strings("allow", ())),
        deny=tuple(CommandPattern.parse(p) for p in r.strings("deny", ())),
        builtin_deny=r.get("builtin_deny", bool, True),
    )


def _files(r: _Reader) -> FileRules:
    r.only(set(FileRules.__slots__))
    return FileRules(
        workspace_only=r.get("workspace_only", bool, True),
        read_only=r.get("read_only", bool, False),
        deny=r.strings("deny", ()),
        deny_write=r.strings("deny_write", ()),
        read_outside=r.strings("read_outside", ()),
    )


def _git(r: _Reader) -> GitRules:
    r.only(set(GitRules.__slots__))
    rules = GitRules(
        allow_push=r.get("allow_push", bool, False),
        allow_force_push=r.get("allow_force_push", bool, False),
        allow_commit=r.get("allow_commit", bool, True),
        allow_pull=r.get("allow_pull", bool, True),
        require_tests=r.get("require_tests", bool, False),
        test_command=r.optional("test_command", str),
        commit_message_regex=r.optional("commit_message_regex", str),
    )
    if rules.require_tests and not rules.test_command:
        raise ValueError("policy: git.require_tests needs git.test_command (the command to run)")
    try:
        rules.commit_message  # noqa: B018 - compiles the regex
    except re.error as exc:
        raise ValueError(f"policy: git.commit_message_regex is not a valid regex: {exc}") from exc
    return rules


class _Reader:
    """Typed access to one mapping of the file, errors naming `prefix.key`."""

    def __init__(self, data: Any, prefix: str) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"policy: {prefix or 'the policy'} must be a mapping")
        self.data = data
        self.prefix = prefix

    def where(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def only(self, known: set[str]) -> None:
        unknown = sorted(set(self.data) - known)
        if unknown:
            raise ValueError(f"policy: unknown key {self.where(unknown[0])!r}")

    def section(self, key: str) -> _Reader:
        return _Reader(self.data.get(key) or {}, self.where(key))

    def get(self, key: str, kind: type[Any], default: Any) -> Any:
        value = self.data.get(key, default)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"policy: {self.where(key)} must be a {kind.__name__}")
        return value

    def optional(self, key: str, kind: type[Any]) -> Any:
        return None if self.data.get(key) is None else self.get(key, kind, None)

    def count(self, key: str, *, minimum: int = 0) -> int | None:
        value = self.optional(key, int)
        if value is not None and value < minimum:
            raise ValueError(f"policy: {self.where(key)} must be at least {minimum}")
        return value  # type: ignore[no-any-return]

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"policy: {self.where(key)} must be a list of strings")
        return tuple(value)
