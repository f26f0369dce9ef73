"""Canonical tool names: every rule keys on what a tool does, not what a client calls it.

The original lynkr checked its policy against the name the model emitted, so
Claude Code's `Bash` and `Write` walked past rules written for `shell` and
`fs_write`. Here every name is mapped first, case-insensitively:

| canonical      | names                                                             |
|----------------|-------------------------------------------------------------------|
| `shell`        | Bash, PowerShell, sh, bash, shell, terminal, run_command, exec, … |
| `shell.output` | BashOutput, TaskOutput                                            |
| `shell.kill`   | KillShell, KillBash, TaskStop                                     |
| `file.read`    | Read, read_file, fs_read, view, cat                               |
| `file.write`   | Write, write_file, fs_write, create_file                          |
| `file.edit`    | Edit, MultiEdit, NotebookEdit, str_replace_editor, apply_patch, … |
| `file.list`    | Glob, LS, list_files, workspace_list                              |
| `file.search`  | Grep, search, workspace_search                                    |
| `web.fetch` / `web.search` | WebFetch / WebSearch, web_fetch / web_search          |
| `agent`        | Agent, Task (sub-agents)                                          |
| `todo`         | TodoWrite, TodoRead, TaskCreate, TaskUpdate, TaskList, TaskGet    |

lynkr's own tools are `lynkr_<family>_<action>` and map to `<family>.<action>`
(`lynkr_git_status` → `git.status`, `lynkr_file_read` → `file.read`,
`lynkr_shell` → `shell`); MCP tools `mcp__server__tool` map to
`mcp.server.tool`. Any other name maps to itself in lower case.
"""

from __future__ import annotations

import re

__all__ = ["FAMILIES", "canonical_name"]

_NAMES: dict[str, str] = {}


def _add(canonical: str, *names: str) -> None:
    for name in names:
        _NAMES[name.lower()] = canonical


_add("shell", "Bash", "PowerShell", "sh", "bash", "zsh", "shell", "terminal", "run_command")
_add("shell", "run_shell", "execute_command", "exec_command", "exec", "command", "run")
_add("shell.output", "BashOutput", "TaskOutput")
_add("shell.kill", "KillShell", "KillBash", "TaskStop")
_add("file.read", "Read", "read_file", "fs_read", "view", "cat", "open_file")
_add("file.write", "Write", "write_file", "fs_write", "create_file", "create")
_add("file.edit", "Edit", "MultiEdit", "NotebookEdit", "edit_file", "edit_patch", "edit")
_add("file.edit", "str_replace_editor", "str_replace_based_edit_tool", "apply_patch", "patch")
_add("file.list", "Glob", "LS", "ls", "list", "list_files", "list_dir", "workspace_list")
_add("file.search", "Grep", "grep", "search", "search_files", "workspace_search")
_add("web.fetch", "WebFetch", "web_fetch", "fetch")
_add("web.search", "WebSearch", "web_search")
_add("agent", "Agent", "Task")
_add("todo", "TodoWrite", "TodoRead", "TaskCreate", "TaskUpdate", "TaskList", "TaskGet")

# lynkr_<family>_<action>: the family's spelling variants.
FAMILIES: dict[str, str] = {
    "file": "file",
    "files": "file",
    "fs": "file",
    "shell": "shell",
    "bash": "shell",
    "git": "git",
    "test": "tests",
    "tests": "tests",
    "task": "tasks",
    "tasks": "tasks",
    "memory": "memory",
    "web": "web",
    "mcp": "mcp",
}
_FILE_ACTIONS = {"read", "write", "edit", "list", "search", "glob", "grep"}
_ACTION_ALIASES = {"glob": "list", "grep": "search", "ls": "list"}
_MCP = re.compile(r"mcp__(?P<server>.+?)__(?P<tool>.+)\Z", re.IGNORECASE)


def canonical_name(name: str) -> str:
    """The canonical name rules use for the tool a client or model called `name`."""
    lowered = name.strip().lower()
    if lowered in _NAMES:
        return _NAMES[lowered]
    if lowered.startswith("lynkr_"):
        return _lynkr_name(lowered.removeprefix("lynkr_"))
    mcp = _MCP.match(lowered)
    if mcp:
        return f"mcp.{mcp['server']}.{mcp['tool']}"
    return lowered


def _lynkr_name(rest: str) -> str:
    """`git_status` → `git.status`; `shell` → `shell`; `read` → `file.read`."""
    family, _, action = rest.partition("_")
    if family in _FILE_ACTIONS and not action:
        return f"file.{_ACTION_ALIASES.get(family, family)}"
    canonical = FAMILIES.get(family)
    if canonical is None:
        return f"lynkr.{rest}"
    if not action:
        return canonical
    if canonical == "shell" and action in ("run", "exec", "command"):
        return "shell"
    if canonical == "file":
        action = _ACTION_ALIASES.get(action, action)
    return f"{canonical}.{action}"
