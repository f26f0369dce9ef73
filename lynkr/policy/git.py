"""Git rules, for `git …` in a shell line and for lynkr's own git tools (`git.<action>`).

Rules (policy file `git:`; the original lynkr's keys, with its gaps closed):

- `allow_push`: any `git push`; `allow_force_push`: a push that can destroy
  remote history: `--force`/`-f` (and any prefix git accepts, `--forc`),
  `--force-with-lease`, `--mirror`, `--delete`/`-d`, `--prune`, a `+ref` or a
  `:ref` refspec;
- `allow_pull`: `git pull` and `git fetch`; `allow_commit`: `git commit`;
- `commit_message_regex`: searched in the `-m`/`--message` text (several `-m`
  join with a blank line, as git does); a message git would take from a file,
  another commit or an editor cannot be checked and is refused;
- `require_tests`: a commit is allowed only when the caller says the test
  command passed (`tests_passed=True`), the original's no-op closed;
- always: `git -c …`/`--config-env`/`--exec-path` (can make git run any
  program: `core.sshCommand`, `alias.x=!…`) and `--upload-pack`,
  `--receive-pack`, `--exec` option injection are refused;
- read-only policies allow only the subcommands that change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lynkr.policy.model import Denial, GitRules

__all__ = ["GitCommand", "check_git_command", "check_git_tool", "parse_git"]

_GLOBAL_VALUES = {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env"}
_GLOBAL_VALUES |= {"--super-prefix", "--attr-source", "--list-cmds"}
_CONFIG_OPTIONS = ("-c", "--config-env", "--exec-path")
_INJECTION = ("--upload-pack", "--receive-pack", "--exec")

_READ = frozenset(
    {
        "status", "log", "diff", "show", "blame", "annotate", "ls-files", "ls-tree",
        "ls-remote", "rev-parse", "rev-list", "describe", "shortlog", "grep", "cat-file",
        "whatchanged", "help", "version", "count-objects", "for-each-ref", "name-rev",
        "merge-base", "show-ref", "show-branch", "var", "check-ignore", "diff-tree",
        "diff-files", "diff-index", "cherry", "verify-commit", "verify-tag",
    }
)  # fmt: skip
# Subcommands that only read when given one of these (or nothing).
_LISTING = {
    "branch": {"", "-a", "-r", "-v", "-vv", "--list", "-l", "--all", "--remotes", "--verbose",
               "--show-current", "--contains", "--merged", "--no-merged", "--sort", "--format"},
    "tag": {"", "-l", "--list", "-n", "--contains", "--sort", "--format", "-v", "--verify"},
    "remote": {"", "-v", "--verbose", "show", "get-url"},
    "config": {"--get", "--get-all", "--get-regexp", "--list", "-l", "--show-origin"},
    "stash": {"list", "show"},
    "worktree": {"list"},
    "notes": {"list", "show"},
    "submodule": {"", "status", "summary"},
}  # fmt: skip
_TOOL_READS = frozenset({"status", "diff", "log", "show", "blame", "branches", "release_notes"})
_TOOL_READS |= {"changelog", "list"}


@dataclass(frozen=True, slots=True)
class GitCommand:
    """`git [global options] SUBCOMMAND ARGS…` taken apart."""

    subcommand: str
    args: tuple[str, ...]
    global_options: tuple[str, ...]
    directory: str | None  # -C DIR


def parse_git(argv: Sequence[str]) -> GitCommand:
    """Split `argv` (without `git` itself) into global options, subcommand and arguments."""
    index = 0
    options: list[str] = []
    directory = None
    while index < len(argv) and argv[index].startswith("-"):
        option = argv[index]
        options.append(option)
        if option in _GLOBAL_VALUES and index + 1 < len(argv):
            if option == "-C":
                directory = argv[index + 1]
            index += 1
        index += 1
    subcommand = argv[index] if index < len(argv) else ""
    return GitCommand(subcommand, tuple(argv[index + 1 :]), tuple(options), directory)


def check_git_command(
    command: GitCommand, rules: GitRules, *, read_only: bool, tests_passed: bool | None
) -> Denial | None:
    """The first git rule `git …` breaks, or None."""
    for option in command.global_options:
        if option.split("=", 1)[0] in _CONFIG_OPTIONS:
            return Denial(
                "git.config_override",
                f"git {option} can make git run any program (core.sshCommand, alias.*); "
                "set configuration in the repository instead",
            )
    for arg in command.args:
        if arg.startswith(_INJECTION) or (command.subcommand == "clone" and arg == "-u"):
            return Denial("git.option_injection", f"git option {arg!r} runs a program; remove it")
    sub = command.subcommand
    if sub == "push":
        return _push(_push_force(command.args), rules)
    if sub in ("pull", "fetch") and not rules.allow_pull:
        return _refused("allow_pull", f"git {sub}")
    if sub == "commit":
        denial = _commit(rules, _messages(command.args), command.args, tests_passed)
        if denial:
            return denial
    if read_only and not _reads(sub, command.args):
        return Denial(
            "files.read_only",
            f"git {sub} changes the repository and this policy is read-only "
            "(files.read_only: true)",
        )
    return None


def check_git_tool(
    action: str, tool_input: Mapping[str, Any], rules: GitRules, *, read_only: bool,
    tests_passed: bool | None,
) -> Denial | None:  # fmt: skip
    """The first git rule a lynkr git tool call (`git.<action>`) breaks, or None."""
    if action == "push":
        return _push(bool(tool_input.get("force")), rules)
    if action in ("pull", "fetch") and not rules.allow_pull:
        return _refused("allow_pull", f"git {action}")
    if action == "commit":
        message = tool_input.get("message", tool_input.get("msg"))
        messages = [message] if isinstance(message, str) else None
        amend_keeps = bool(tool_input.get("amend")) and message is None
        denial = _commit(rules, messages, ("--no-edit",) if amend_keeps else (), tests_passed)
        if denial:
            return denial
    if read_only and action not in _TOOL_READS:
        return Denial(
            "files.read_only", f"git {action} changes the repository; policy is read-only"
        )
    return None


def _push(force: bool, rules: GitRules) -> Denial | None:
    if not rules.allow_push:
        return _refused("allow_push", "git push")
    if force and not rules.allow_force_push:
        return _refused("allow_force_push", "a force push (or a remote branch deletion)")
    return None


def _push_force(args: Sequence[str]) -> bool:
    for arg in args:
        name = arg.split("=", 1)[0]
        if name in ("--mirror", "--delete", "--prune", "-d") or name.startswith("--force"):
            return True
        if name.startswith("--") and len(name) >= 5 and "--force".startswith(name):
            return True
        short = name.startswith("-") and not name.startswith("--") and name[1:].isalpha()
        if short and ("f" in name[1:] or "d" in name[1:]):
            return True
        if not name.startswith("-") and name.startswith(("+", ":")):
            return True
    return False


def _commit(
    rules: GitRules, messages: list[str] | None, args: Sequence[str], tests_passed: bool | None
) -> Denial | None:
    if not rules.allow_commit:
        return _refused("allow_commit", "git commit")
    pattern = rules.commit_message
    if pattern is not None and "--no-edit" not in args:
        if not messages:
            return Denial(
                "git.commit_message_regex",
                "the commit message must match git.commit_message_regex "
                f"{pattern.pattern!r}; give it with -m so it can be checked",
            )
        message = "\n\n".join(messages)
        if not pattern.search(message):
            return Denial(
                "git.commit_message_regex",
                f"commit message {message!r} does not match git.commit_message_regex "
                f"{pattern.pattern!r}; reword it",
            )
    if rules.require_tests and tests_passed is not True:
        state = "failed" if tests_passed is False else "has not been run"
        return Denial(
            "git.require_tests",
            f"commits need passing tests and the test command `{rules.test_command}` {state}; "
            "run it and commit when it passes (or set git.require_tests: false)",
        )
    return None


def _messages(args: Sequence[str]) -> list[str] | None:
    """The `-m` texts of a commit; None when git would take the message from elsewhere."""
    messages: list[str] = []
    index = 0
    elsewhere = False
    while index < len(args):
        arg = args[index]
        if arg in ("-m", "--message") and index + 1 < len(args):
            messages.append(args[index + 1])
            index += 1
        elif arg.startswith("--message="):
            messages.append(arg.split("=", 1)[1])
        elif arg.startswith("-") and not arg.startswith("--") and "m" in arg[1:]:
            value = arg[arg.index("m", 1) + 1 :]
            if value:
                messages.append(value)
            elif index + 1 < len(args):
                messages.append(args[index + 1])
                index += 1
        elif arg in ("-F", "--file", "-C", "-c", "--fixup", "--squash") or arg.startswith(
            ("--file=", "--reuse-message", "--reedit-message", "--fixup=", "--squash=")
        ):
            elsewhere = True
        index += 1
    return None if elsewhere else messages


def _reads(sub: str, args: Sequence[str]) -> bool:
    if sub in _READ:
        return True
    listing = _LISTING.get(sub)
    if listing is None:
        return False
    given = [a.split("=", 1)[0] for a in args] or [""]
    return given[0] in listing and all(a.startswith("-") or a in listing for a in given[:1])


def _refused(key: str, what: str) -> Denial:
    return Denial(f"git.{key}", f"{what} is not allowed by this policy (set git.{key}: true)")
