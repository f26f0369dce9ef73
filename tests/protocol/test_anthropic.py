"""Anthropic-format upstreams: request rewriting (anthropic.py, docs/protocol.md B.9, case 48)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from lynkr.protocol import (
    AnthropicStreamRelay,
    UpstreamRewrite,
    filter_betas,
    prepare_request,
    rewrite_model_in_message,
)

from ._golden import cases, load


def rewrite(options: dict[str, Any]) -> UpstreamRewrite:
    return UpstreamRewrite(**{**options, "betas": tuple(options["betas"])})


@pytest.mark.parametrize("case", cases("prepare.json"))
def test_prepare_golden(case: dict[str, Any]) -> None:
    body = case["input"]
    changed = prepare_request(body, rewrite(case["options"]))
    assert body == case["expected"]["body"]
    assert changed is case["expected"]["changed"]


@pytest.mark.parametrize("case", cases("prepare.json"))
def test_prepare_is_idempotent(case: dict[str, Any]) -> None:
    body = case["input"]
    prepare_request(body, rewrite(case["options"]))
    again = copy.deepcopy(body)
    assert prepare_request(again, rewrite(case["options"])) is False
    assert again == body


@pytest.mark.parametrize("case", cases("betas.json"))
def test_filter_betas_golden(case: dict[str, Any]) -> None:
    assert filter_betas(case["input"], **case["options"]) == case["expected"]


def test_golden_case_48() -> None:
    case = load("case48.json")
    given, options, expected = case["input"], case["options"], case["expected"]
    betas = filter_betas(given["anthropic-beta"], allow=options["allow"], drop=options["drop"])
    assert betas == expected["anthropic-beta"]
    body = given["body"]
    assert prepare_request(body, UpstreamRewrite(model=options["model"], betas=tuple(betas)))
    assert body == expected["body"]
    state = AnthropicStreamRelay(options["client_model"])
    stream = given["stream"].encode()
    out = b"".join(state.feed(stream[at : at + 7]) for at in range(0, len(stream), 7))
    assert out + state.finish() == expected["stream"].encode()
    assert state.completed and not state.errored


def test_case_48_with_everything_allowed_changes_only_the_model_and_billing() -> None:
    body = load("case48.json")["input"]["body"]
    header = load("case48.json")["input"]["anthropic-beta"]
    betas = tuple(filter_betas(header, allow=None, drop=[]))
    prepare_request(body, UpstreamRewrite(model=None, betas=betas, strip_empty_text=False))
    assert [m["role"] for m in body["messages"]] == ["user", "system", "assistant", "user"]
    assert "context_management" in body
    assert len(body["system"]) == 2


def test_rewrite_model_in_message() -> None:
    message = {"id": "msg_1", "type": "message", "model": "up", "content": []}
    rewrite_model_in_message(message, "claude-opus-4-8")
    assert message == {"id": "msg_1", "type": "message", "model": "claude-opus-4-8", "content": []}
