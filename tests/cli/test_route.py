"""`lynkr route --explain`: the decision trail for a request, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lynkr.cli import main

CONFIG = """\
version: 1
providers:
  local:  {type: anthropic, base_url: "http://127.0.0.1:9", model: small}
  claude: {type: anthropic, base_url: "http://127.0.0.1:9", model: big}
pools:
  simple:   {providers: [local]}
  moderate: {providers: [claude]}
  complex:  {providers: [claude], fallback: [local]}
routing:
  default_pool: moderate
  tool_thresholds: {simple: 2, moderate: 14}
routes:
  - path: /v1/messages
    middleware:
      - use: routing
        rules: [{name: background, model: "claude-*haiku*", pool: simple}]
    app: agent
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    config = tmp_path / "lynkr.yaml"
    config.write_text(CONFIG)
    request = tmp_path / "request.json"
    tools = [{"name": f"t{i}", "input_schema": {"type": "object"}} for i in range(24)]
    request.write_text(
        json.dumps(
            {
                "model": "claude-opus-4-8",
                "max_tokens": 1,
                "messages": [{"role": "user", "content": "hi"}],
                "tools": tools,
            }
        )
    )
    return config, request


def test_explains_the_tool_threshold_route(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, request = files
    assert main(["route", "--config", str(config), "--explain", str(request)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("request: model=claude-opus-4-8 tools=24 thinking=off")
    assert "rule background" in lines[2] and "matches none of" in lines[2]
    assert lines[-2] == "decision: pool=complex rule=tool_thresholds"
    assert lines[-1] == "pool complex: providers claude; fallback: local"


def test_inline_rules_and_headers(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, request = files
    body = json.loads(request.read_text())
    body["model"] = "claude-haiku-4-5"
    request.write_text(json.dumps(body))
    assert main(["route", "--config", str(config), "--explain", str(request)]) == 0
    assert "decision: pool=simple rule=background" in capsys.readouterr().out
    args = ["route", "--config", str(config), "--explain", str(request)]
    assert main([*args, "--header", "x-lynkr-pool: moderate"]) == 0
    assert "decision: pool=moderate rule=header" in capsys.readouterr().out


def test_unreadable_request_exits_2(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config, request = files
    request.write_text("{nope")
    assert main(["route", "--config", str(config), "--explain", str(request)]) == 2
    assert "cannot read a JSON request body" in capsys.readouterr().err
