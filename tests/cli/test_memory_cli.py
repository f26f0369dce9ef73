"""`lynkr memory …` as a user runs it, in process (the e2e tests run it as a subprocess)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lynkr.cli import main

CONFIG = """\
version: 1
server: {data_dir: state}
providers:
  up: {type: anthropic, base_url: "http://127.0.0.1:9", model: m}
pools: {main: {providers: [up]}}
routes:
  - {path: /v1/messages, middleware: [{use: validation}], app: agent}
memory: {embeddings: {type: none}}
"""


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "lynkr.yaml"
    path.write_text(CONFIG)
    return str(path)


def test_add_search_list_stats_forget_prune(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = ["--workspace", "/home/dev/shop", "--config", config]
    assert main(["memory", "add", "Deploys go out on Tuesdays", "--type", "decision", *shop]) == 0
    assert "store: memory #1" in capsys.readouterr().out
    assert main(["memory", "add", "Every timestamp is UTC", "--global", *shop]) == 0
    assert main(["memory", "add", "PK\x03\x04\x00\x00", *shop]) == 1
    assert "binary" in capsys.readouterr().err
    assert main(["memory", "search", "when do deploys go out", "--format", "json", *shop]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert {"id", "content", "type", "score"} <= set(hit) and hit["type"] == "decision"
    assert main(["memory", "search", "completely unrelated words", *shop]) == 0
    assert "no memory is relevant" in capsys.readouterr().err
    assert main(["memory", "list", "--config", config]) == 0
    listed = capsys.readouterr().out
    assert "/home/dev/shop: Deploys go out on Tuesdays" in listed and "*global*" in listed
    assert main(["memory", "list", "--format", "json", "--workspace", "/home/dev/shop",
                 "--config", config]) == 0  # fmt: skip
    assert len(json.loads(capsys.readouterr().out)) == 2  # its own and the global one
    assert main(["memory", "stats", "--format", "json", "--config", config]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["active"], stats["by_type"]) == (2, {"decision": 1, "fact": 1})
    assert main(["memory", "stats", "--config", config]) == 0
    assert "2 active" in capsys.readouterr().out
    assert main(["memory", "forget", "--id", "1", *shop]) == 0
    assert "would delete 1" in capsys.readouterr().err
    assert main(["memory", "forget", "--id", "1", "--yes", *shop]) == 0
    assert "deleted 1" in capsys.readouterr().out
    assert main(["memory", "forget", "deploys", *shop]) == 1
    assert main(["memory", "forget", *shop]) == 2
    assert main(["memory", "prune", "--config", config]) == 0
    assert "pruned 0" in capsys.readouterr().out


def test_mistakes_say_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["memory"]) == 2
    assert "say what to do" in capsys.readouterr().err
    assert main(["memory", "stats", "--config", str(tmp_path / "missing.yaml")]) == 2
