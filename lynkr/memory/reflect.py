"""The Reflector: a finished multi-step tool run distilled into a `skill` memory (pure).

After lynkr ran tools for a turn (`tools.execution: server | hybrid`), what
the run did becomes one sentence: the kind of task (the prompt's first
keywords), the tools in the order they ran, whether the run finished, and
the first tool that failed on the way. Run again on the same kind of task
with the same tools, the skill is not stored twice: its record counts one
more success or failure (`MemoryService.reflect`), and its confidence —
(successes + 1) / (runs + 2) — weighs its importance in ranking, so an
approach that keeps failing sinks and one that keeps working rises.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lynkr.memory.model import Candidate
from lynkr.memory.text import keywords

__all__ = ["MIN_STEPS", "Reflection", "ToolStep", "reflect", "same_skill"]

MIN_STEPS = 2
_TASK_WORDS = 8
_PATH_STEPS = 8
_NOTE_CHARS = 80
_STORED_PATH = re.compile(r"”: (.+?) (?:worked|did not finish the task)")


@dataclass(frozen=True, slots=True)
class ToolStep:
    """One tool call of a run: its name, whether it succeeded, and a line of its result."""

    name: str
    ok: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class Reflection:
    """What a run teaches: the skill sentence, its task words and tool path, the outcome."""

    candidate: Candidate
    task: tuple[str, ...]
    path: tuple[str, ...]
    succeeded: bool


def _short(name: str) -> str:
    return name.removeprefix("lynkr_")


def reflect(task: str, steps: Sequence[ToolStep], finished: bool) -> Reflection | None:
    """The skill a run of at least `MIN_STEPS` tool calls teaches; None for a shorter run or
    a prompt without content words."""
    words = tuple(keywords(task)[:_TASK_WORDS])
    if len(steps) < MIN_STEPS or not words:
        return None
    path = tuple(_short(step.name) for step in steps[-_PATH_STEPS:])
    succeeded = finished and steps[-1].ok
    outcome = "worked" if succeeded else "did not finish the task"
    text = f"Skill for tasks like “{' '.join(words)}”: {' → '.join(path)} {outcome}"
    failed = next((step for step in steps if not step.ok), None)
    if failed is not None:
        note = " ".join(failed.note.split())[:_NOTE_CHARS]
        text += f"; {_short(failed.name)} failed on the way" + (f" ({note})" if note else "")
    return Reflection(Candidate(text + ".", "skill", "reflection"), words, path, succeeded)


def same_skill(reflection: Reflection, stored: str) -> bool:
    """Whether a stored skill sentence is this run's skill: the same tool path, and most of
    the task words."""
    match = _STORED_PATH.search(stored)
    if match is None or match.group(1) != " → ".join(reflection.path):
        return False
    have = set(keywords(stored))
    shared = sum(1 for word in reflection.task if word in have)
    return shared >= max(1, (len(reflection.task) + 1) // 2)
