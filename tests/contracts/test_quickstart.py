"""The README's quickstart is exactly two commands, and CI runs the second one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quickstart", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the Quickstart section needs a ```sh block"
    lines = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line]


def test_quickstart_has_two_commands() -> None:
    commands = _quickstart_commands()
    assert len(commands) == 2, commands
    assert "serve" in commands[0] and "test" in commands[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    run_lines = [
        line.strip() for line in ci.splitlines() if line.strip() and not line.startswith("#")
    ]
    test_command = _quickstart_commands()[1]
    assert f"exec {test_command}" in run_lines


def test_the_commands_exist_and_are_executable() -> None:
    for command in _quickstart_commands():
        script = ROOT / command.split()[0]
        assert script.is_file() and script.stat().st_mode & 0o111, script


def test_default_config_starts_with_the_schema_line() -> None:
    for path in [ROOT / "lynkr.yaml", *sorted((ROOT / "examples").glob("**/*.yaml"))]:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
