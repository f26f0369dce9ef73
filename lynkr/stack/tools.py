"""The tool loop of `tools.execution: server|hybrid`, built from the `tools:` section.

Building does no I/O: the policy file is read (config is read at load time),
but the tool store, the tools' home directory and the sandbox (bubblewrap is
probed by running it once) are made when the server starts (`Lifetime`s for
the lifespan), not when a tool is first called.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import structlog

from lynkr.config import Config, located_issue
from lynkr.config.policy import load_policy_data
from lynkr.errors import ConfigError
from lynkr.providers.errors import provider_secrets
from lynkr.sandbox import Sandbox, SandboxError, Unconfined, choose_sandbox
from lynkr.stack.app import Lifetime
from lynkr.stack.options import config_dir

if TYPE_CHECKING:
    from lynkr.agent.loop import ToolLoop
    from lynkr.agent.tools import ToolContext

__all__ = ["build_loop", "configured_secrets", "protected_paths", "runs_processes", "tool_home"]

_log = structlog.get_logger("lynkr.tools")


def configured_secrets(config: Config) -> list[str]:
    """Every credential lynkr.yaml gives a provider (keys and secret-looking headers)."""
    return [
        secret
        for p in config.providers.values()
        for secret in provider_secrets(p.api_key.reveal() if p.api_key else None, p.headers)
    ]


def protected_paths(config: Config) -> tuple[Path, ...]:
    """lynkr's own files, which no tool may read or write: config, policies, data dir.

    The policy file's whole folder is protected when it has one of its own
    (`policies/`): its siblings are the policies a config edit would switch to.
    """
    base = config_dir(config)
    paths = [Path(config.file), config.server.data_dir]
    if config.tools.policy:
        policy = (base / config.tools.policy).resolve()
        paths.append(policy if policy.parent == base else policy.parent)
    return tuple(dict.fromkeys(path.resolve() for path in paths))


def tool_home(config: Config) -> Path:
    """The tools' HOME: outside the workspace and the data dir, one per data dir.

    Inside the workspace, a `.gitconfig` the file tools wrote would configure the
    git of every later call (`core.fsmonitor` runs a program).
    """
    digest = hashlib.sha256(str(config.server.data_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"lynkr-tool-home-{os.getuid()}-{digest}"


def runs_processes(enabled: Sequence[str]) -> bool:
    """Whether an enabled family starts processes (shell, test profiles, grep via files)."""
    return bool({"shell", "tests", "files"} & set(enabled))


def _start_sandbox(config: Config, root: Path, protected: tuple[Path, ...]) -> Sandbox:
    """The configured sandbox, probed; its line (or warning) logged for `lynkr serve`."""
    settings = config.tools.sandbox
    try:
        sandbox, warning = choose_sandbox(
            settings.type, workspace=root, protected=protected, network=settings.network
        )
    except SandboxError as exc:
        raise ConfigError([located_issue(config, ("tools", "sandbox", "type"), str(exc))]) from exc
    if warning:
        _log.warning("tool_sandbox", sandbox=sandbox.name, warning=warning)
    else:
        _log.info("tool_sandbox", sandbox=sandbox.name, detail=sandbox.describe())
    return sandbox


def _index_marker(root: Path) -> Any:
    """Edited files marked dirty for the repo index of the workspace."""
    from lynkr.repoindex import dirty

    def mark(paths: list[str]) -> None:
        dirty.mark(root, paths)

    return mark


def _reflector(memory: Any) -> Any:
    """The memory's Reflector as the loop's run observer (None without memory)."""
    if memory is None:
        return None
    from lynkr.memory.reflect import ToolStep

    def observe(scope: object, task: str, steps: list[tuple[str, bool, str]], done: bool) -> None:
        memory.observe_run(scope, task, [ToolStep(*step) for step in steps], done)

    return observe


def build_loop(config: Config, memory: Any = None) -> tuple[ToolLoop | None, list[Lifetime]]:
    """The tool loop and what it needs opened with the server; (None, []) in client mode.

    With a memory service (`memory.enabled`), the memory family is offered too.

    What only server-side tools use (dulwich, the policy engine behind them) is
    imported here, so a client-mode gateway never loads it.
    """
    tools = config.tools
    if not tools.runs_tools:
        return None, []
    from lynkr.agent.loop import LoopLimits, Mode, ToolLoop
    from lynkr.agent.tools import ToolContext, scrubbed_environment, tool_registry
    from lynkr.agent.tools.testruns import TestProfile
    from lynkr.policy import Policy
    from lynkr.stores.tools import DATABASE_NAME, SQLiteToolStore

    secrets = configured_secrets(config)
    try:
        families = [f for f in tools.enabled if f != "memory"] + (["memory"] if memory else [])
        registry = tool_registry(
            families,
            shell_timeout_seconds=tools.shell.timeout_seconds,
            shell_max_output_bytes=tools.shell.max_output_bytes,
            git_author=tools.git_author,
            test_profiles={
                name: TestProfile(name, p.command, p.cwd, p.timeout_seconds)
                for name, p in tools.test_profiles.items()
            },
            secrets=secrets,
        )
    except ValueError as exc:
        raise ConfigError([located_issue(config, ("tools",), str(exc))]) from exc
    base = config_dir(config)
    policy = Policy.from_data(load_policy_data(base / tools.policy) if tools.policy else {})
    root = (base / tools.workspace.root).resolve()
    home = tool_home(config)
    env = scrubbed_environment(os.environ, secrets, home=str(home))
    store = SQLiteToolStore(config.server.data_dir / DATABASE_NAME)
    protected = protected_paths(config)
    sandboxes: list[Sandbox] = [Unconfined()]  # chosen at start: the probe runs bwrap

    def context_for(session_id: str | None, calls: int, memory_scope: object = None) -> ToolContext:
        return ToolContext(
            workspace=root,
            store=store,
            policy=policy,
            env=env,
            session_id=session_id,
            turn_tool_calls=calls - 1,
            allow_outside=tools.workspace.allow_outside,
            protected=protected,
            sandbox=sandboxes[0],
            memory=memory,
            memory_scope=memory_scope,
        )

    async def open_tools() -> None:
        # Tools get a home of their own: ~/.ssh, ~/.aws and credentials are not there.
        await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
        if runs_processes(tools.enabled):
            sandboxes[0] = await asyncio.to_thread(_start_sandbox, config, root, protected)
        await store.open()

    loop = ToolLoop(
        registry=registry,
        mode=cast(Mode, tools.execution),
        limits=LoopLimits(
            max_steps=tools.limits.max_steps,
            max_tool_calls=tools.limits.max_tool_calls,
            max_duration_seconds=tools.limits.max_duration_seconds,
        ),
        context_for=context_for,
        on_run=_reflector(memory),
        on_edits=_index_marker(root) if "index" in tools.enabled else None,
    )
    return loop, [Lifetime("tool store", store.close, open_tools)]
