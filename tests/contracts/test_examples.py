"""Every shipped config is valid (secrets may be absent, as in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lynkr.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [ROOT / "lynkr.yaml", *sorted((ROOT / "examples").glob("*.yaml"))]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_is_valid(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--allow-missing-env", str(path)]) == 0, capsys.readouterr().out


def test_default_config_needs_no_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("LYNKR_LOCAL_URL", "LYNKR_LOCAL_API_KEY", "LYNKR_LOCAL_MODEL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["validate", str(ROOT / "lynkr.yaml")]) == 0, capsys.readouterr().out
