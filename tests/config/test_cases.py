"""Golden cases: each `cases/NAME.yaml` and the exact output of `lynkr validate` on it.

A case file starts with `# expect-exit: N`, then optional `# env: NAME=value`
lines. Every variable a case mentions as `${NAME...}` is cleared first, so the
developer's own environment (a real ANTHROPIC_API_KEY) cannot change a result.
The file is named relative to the repository root, as a user would type it,
so the expected text does not depend on where the checkout lives.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lynkr.cli import main

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "cases"

_EXIT = re.compile(r"# expect-exit: (\d)\n")
_ENV = re.compile(r"^# env: (\w+)=(.*)$", re.MULTILINE)
_REFERENCE = re.compile(r"\$\{(\w+)")


def run_validate(
    file: Path,
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, str]:
    monkeypatch.chdir(ROOT)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status = main(["validate", file.relative_to(ROOT).as_posix()])
    return status, capsys.readouterr().out


@pytest.mark.parametrize("case", sorted(CASES.glob("*.yaml")), ids=lambda case: case.stem)
def test_case(
    case: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = case.read_text(encoding="utf-8")
    header = _EXIT.match(text)
    assert header, f"{case.name} must start with '# expect-exit: N'"
    for name in _REFERENCE.findall(text):
        monkeypatch.delenv(name, raising=False)
    status, out = run_validate(case, dict(_ENV.findall(text)), monkeypatch, capsys)
    assert out == case.with_suffix(".expected").read_text(encoding="utf-8")
    assert status == int(header.group(1))


def test_missing_file(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    missing = CASES / "missing_file.yaml"
    assert not missing.exists()
    status, out = run_validate(missing, {}, monkeypatch, capsys)
    assert out == (CASES / "missing_file.expected").read_text(encoding="utf-8")
    assert status == 2


def test_every_expected_output_has_its_case() -> None:
    orphans = {path.stem for path in CASES.glob("*.expected")} - {
        path.stem for path in CASES.glob("*.yaml")
    }
    assert orphans == {"missing_file"}
