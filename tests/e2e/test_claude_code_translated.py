"""End to end with the real Claude Code CLI through lynkr to translated upstreams: the fake
OpenAI Chat Completions server and the fake Ollama (`/api/chat`).

Binary discovery and skip rules are those of tests/e2e/test_claude_code.py (its helpers are
reused). One lynkr serves both upstreams: pool ``openai`` is the default, and the Ollama
run picks pool ``ollama`` with ``ANTHROPIC_CUSTOM_HEADERS: x-lynkr-pool: ollama`` (A.3).
Each test checks the CLI's JSON result and what the fake received: the tool messages, their
ids matching the calls, in call order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import ollama_upstream as ol
from fakes import openai_upstream as oa
from fakes.anthropic_upstream import Recorded

from e2e.test_claude_code import claude_bin, describe, run_claude

pytestmark = pytest.mark.e2e

__all__ = ["claude_bin"]  # the session fixture, shared with test_claude_code.py

UPSTREAM_KEY = "sk-up-cc"
OPENAI_MODEL = "gpt-fake-cc"
OLLAMA_MODEL = "qwen3-coder:cc"


@pytest.fixture
def cc_lynkr(lynkr_server: Callable[..., Any], openai_upstream: Any, ollama_upstream: Any) -> Any:
    providers = {
        "openai": {
            "type": "openai",
            "base_url": f"{openai_upstream.url}/v1",
            "api_key": UPSTREAM_KEY,
            "model": OPENAI_MODEL,
            "max_output_tokens": 4096,
        },
        "ollama": {
            "type": "ollama",
            "base_url": ollama_upstream.url,
            "model": OLLAMA_MODEL,
            "max_output_tokens": 4096,
            "num_ctx": 65536,
        },
    }
    base = openai_upstream.url
    dialects = {
        "azure": {"type": "azure-openai", "base_url": base, "deployment": OPENAI_MODEL,
                  "api_version": "2024-10-21"},
        "openrouter": {"type": "openrouter", "base_url": f"{base}/api/v1", "model": OPENAI_MODEL},
        "databricks": {"type": "databricks", "format": "openai", "base_url": base,
                       "endpoint": OPENAI_MODEL},
        "llamacpp": {"type": "llamacpp", "base_url": base, "model": OPENAI_MODEL},
    }  # fmt: skip
    for name, dialect in dialects.items():
        providers[name] = {**dialect, "api_key": UPSTREAM_KEY, "max_output_tokens": 4096}
    return lynkr_server(
        "cc-translated",
        providers=providers,
        pools={name: {"providers": [name]} for name in providers},
        default_pool="openai",
    )


def tool_messages(record: Recorded) -> list[dict[str, Any]]:
    return [m for m in record.body["messages"] if m["role"] == "tool"]


def assistant_call_ids(record: Recorded) -> list[str]:
    return [
        call.get("id")
        for message in record.body["messages"]
        if message["role"] == "assistant"
        for call in message.get("tool_calls") or []
    ]


def content_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content)
    return str(content)


# Where each dialect's requests land on the fake, and how it carries the key (B.2, B.7-B.9).
DIALECT_PATHS = {
    "openai": "/v1/chat/completions",
    "azure": f"/openai/deployments/{OPENAI_MODEL}/chat/completions",
    "openrouter": "/api/v1/chat/completions",
    "databricks": "/serving-endpoints/chat/completions",
    "llamacpp": "/v1/chat/completions",
}


def assert_openai_requests(fake: Any, dialect: str = "openai") -> None:
    for record in fake.chat_requests():
        assert record.path == DIALECT_PATHS[dialect]
        if dialect == "azure":
            assert record.header("api-key") == UPSTREAM_KEY, record.headers
            assert record.header("authorization") is None
        else:
            assert record.header("authorization") == f"Bearer {UPSTREAM_KEY}", record.headers
        assert record.header("x-api-key") is None
        assert all("dummy" not in value for value in record.headers.values())
        body = record.body
        assert body.get("model", OPENAI_MODEL) == OPENAI_MODEL  # Azure classic: in the URL
        assert body.get("max_tokens", body.get("max_completion_tokens")) <= 4096
        roles = [m["role"] for m in body["messages"]]
        assert roles[0] == "system" and "system" not in roles[1:], roles  # A.6 #1, case 3
        assert "x-anthropic-billing-header" not in json.dumps(body["messages"][0])
        assert all(t["type"] == "function" for t in body.get("tools", []))


# --------------------------------------------------------------------------- OpenAI upstream


def test_text_through_openai(
    claude_bin: Path, openai_fake: Any, cc_lynkr: Any, tmp_path: Path
) -> None:
    openai_fake.default = oa.text("LYNKR_TRANSLATED_HELLO from the OpenAI fake")
    done, result = run_claude(claude_bin, cc_lynkr.url, tmp_path, "say hi")
    assert done.returncode == 0, describe(done, openai_fake)
    assert result.get("is_error") is False, describe(done, openai_fake)
    assert "LYNKR_TRANSLATED_HELLO" in result.get("result", ""), describe(done, openai_fake)
    requests = openai_fake.chat_requests()
    assert requests, describe(done, openai_fake)
    assert requests[0].body.get("stream") is True
    assert len(requests[0].body.get("tools", [])) > 5  # Claude Code's tools, as functions
    assert_openai_requests(openai_fake)


def test_bash_round_trip_through_openai(
    claude_bin: Path, openai_fake: Any, cc_lynkr: Any, tmp_path: Path
) -> None:
    arguments = {"command": "echo LYNKR_TOOL_OK", "description": "Print a marker"}
    openai_fake.script(
        oa.tool_calls(oa.call("Bash", arguments, "call_cc_1"), preamble="I'll run it."),
        oa.text("The command printed LYNKR_TOOL_OK. Done."),
    )
    openai_fake.default = oa.text("unexpected extra request")
    done, result = run_claude(
        claude_bin, cc_lynkr.url, tmp_path, "run echo LYNKR_TOOL_OK", "--allowedTools", "Bash"
    )
    assert done.returncode == 0, describe(done, openai_fake)
    assert "Done." in result.get("result", ""), describe(done, openai_fake)
    requests = openai_fake.chat_requests()
    assert len(requests) == 2, describe(done, openai_fake)
    follow_up = requests[1]
    assert assistant_call_ids(follow_up) == ["call_cc_1"], follow_up.body["messages"]
    results = tool_messages(follow_up)
    assert [m["tool_call_id"] for m in results] == ["call_cc_1"], results
    assert "LYNKR_TOOL_OK" in content_text(results[0]), results
    replayed = next(m for m in follow_up.body["messages"] if m.get("tool_calls"))
    assert json.loads(replayed["tool_calls"][0]["function"]["arguments"]) == arguments
    assert_openai_requests(openai_fake)


@pytest.mark.parametrize("dialect", list(DIALECT_PATHS))
def test_parallel_tools_through_each_openai_dialect(
    claude_bin: Path, openai_fake: Any, cc_lynkr: Any, tmp_path: Path, dialect: str
) -> None:
    """A multi-tool Claude Code task completes through every OpenAI dialect."""
    flavour = {"azure": "azure", "openrouter": "openrouter", "llamacpp": "llamacpp"}
    quirks = {"flavour": flavour[dialect]} if dialect in flavour else {}
    work = tmp_path / "work"
    work.mkdir()
    notes = work / "lynkr_notes.txt"
    notes.write_text("LYNKR_READ_OK: the file's contents\n")
    openai_fake.script(
        oa.tool_calls(
            oa.call("Bash", {"command": "echo LYNKR_PAR_A", "description": "marker"}, "call_p1"),
            oa.call("Read", {"file_path": str(notes)}, "call_p2"),
            preamble="Doing both at once.",
            interleave=True,
            **quirks,
        ),
        oa.text("Both tools worked. Done.", **quirks),
    )
    openai_fake.default = oa.text("unexpected extra request")
    done, result = run_claude(
        claude_bin,
        cc_lynkr.url,
        tmp_path,
        "print a marker and read lynkr_notes.txt",
        "--allowedTools",
        "Bash",
        "Read",
        extra_env={"ANTHROPIC_CUSTOM_HEADERS": f"x-lynkr-pool: {dialect}"},
    )
    assert done.returncode == 0, describe(done, openai_fake)
    assert "Done." in result.get("result", ""), describe(done, openai_fake)
    requests = openai_fake.chat_requests()
    assert len(requests) == 2, describe(done, openai_fake)
    follow_up = requests[1]
    assert assistant_call_ids(follow_up) == ["call_p1", "call_p2"]
    results = tool_messages(follow_up)
    # Claude Code answers in completion order (A.6 #5); the upstream gets call order (B.3).
    assert [m["tool_call_id"] for m in results] == ["call_p1", "call_p2"], results
    assert "LYNKR_PAR_A" in content_text(results[0]), results
    assert "LYNKR_READ_OK" in content_text(results[1]), results
    assert_openai_requests(openai_fake, dialect)


def test_mid_stream_error_falls_back_to_non_streaming(
    claude_bin: Path, openai_fake: Any, cc_lynkr: Any, tmp_path: Path
) -> None:
    openai_fake.script(oa.stream_error("Partial ans", message="Provider returned error"))
    openai_fake.default = oa.text("LYNKR_FALLBACK_OK after the stream failed")
    done, result = run_claude(claude_bin, cc_lynkr.url, tmp_path, "say hi")
    assert done.returncode == 0, describe(done, openai_fake)
    assert "LYNKR_FALLBACK_OK" in result.get("result", ""), describe(done, openai_fake)
    requests = openai_fake.chat_requests()
    assert len(requests) >= 2, describe(done, openai_fake)
    assert requests[0].body.get("stream") is True
    assert any(not r.body.get("stream") for r in requests[1:]), [
        r.body.get("stream") for r in requests
    ]
    assert_openai_requests(openai_fake)


# --------------------------------------------------------------------------- Ollama upstream


def test_bash_round_trip_through_ollama(
    claude_bin: Path, ollama_fake: Any, cc_lynkr: Any, tmp_path: Path
) -> None:
    arguments = {"command": "echo LYNKR_TOOL_OK", "description": "Print a marker"}
    ollama_fake.script(
        ol.tool_calls(ol.ollama_call("Bash", arguments, "call_ol_1"), preamble="Running it."),
        ol.text("Ollama saw LYNKR_TOOL_OK. Done."),
    )
    ollama_fake.default = ol.text("unexpected extra request")
    done, result = run_claude(
        claude_bin,
        cc_lynkr.url,
        tmp_path,
        "run echo LYNKR_TOOL_OK",
        "--allowedTools",
        "Bash",
        extra_env={"ANTHROPIC_CUSTOM_HEADERS": "x-lynkr-pool: ollama"},
    )
    assert done.returncode == 0, describe(done, ollama_fake)
    assert "Done." in result.get("result", ""), describe(done, ollama_fake)
    requests = ollama_fake.chat_requests()
    assert len(requests) == 2, describe(done, ollama_fake)
    for record in requests:
        assert record.body["model"] == OLLAMA_MODEL
        assert record.body["options"]["num_ctx"] == 65536
        assert record.body["options"]["num_predict"] <= 4096
        assert record.header("authorization") is None
    follow_up = requests[1]
    calls = [c for m in follow_up.body["messages"] for c in m.get("tool_calls") or []]
    assert [c.get("id") for c in calls] == ["call_ol_1"], calls
    assert calls[0]["function"]["arguments"] == arguments  # an object, not a string
    results = tool_messages(follow_up)
    assert [m["tool_call_id"] for m in results] == ["call_ol_1"], results
    assert results[0].get("tool_name") == "Bash"
    assert "LYNKR_TOOL_OK" in content_text(results[0]), results
