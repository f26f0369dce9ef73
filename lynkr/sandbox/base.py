"""The interface every sandbox implements, and the one that confines nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

__all__ = ["Command", "Sandbox", "SandboxError", "Unconfined"]


class SandboxError(Exception):
    """A sandbox that was asked for cannot run here; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class Command:
    """What to exec: argv, working directory and environment, as the sandbox wants them."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]


class Sandbox(Protocol):
    """Turns a tool's command into the command that runs it confined."""

    name: str

    def wrap(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Command:
        """The command to exec for `argv` run in `cwd` (inside the workspace) with `env`."""
        ...

    def describe(self) -> str:
        """One line for `lynkr serve`'s start: what this sandbox confines."""
        ...


class Unconfined:
    """No sandbox (`tools.sandbox.type: none`): the command runs as lynkr's user, on its host."""

    name = "none"

    def wrap(self, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Command:
        return Command(list(argv), cwd, dict(env))

    def describe(self) -> str:
        return "none: tool processes run as lynkr's user and see what it sees"
