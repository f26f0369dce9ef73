"""Requests: may this Messages request go upstream, and in what shape?

`evaluate_request` applies the request rules to a Messages body and returns
the decision and the body to forward (rewritten when a rule rewrites: tools
stripped, thinking removed, `max_tokens` clamped).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lynkr.policy.aliases import canonical_name
from lynkr.policy.decision import Decision, Rewrite, deny
from lynkr.policy.globs import name_matches
from lynkr.policy.model import Denial, Policy

__all__ = ["evaluate_request"]


def evaluate_request(
    policy: Policy,
    body: Mapping[str, Any],
    *,
    count_tokens: Callable[[dict[str, Any]], int] | None = None,
) -> tuple[Decision, dict[str, Any]]:
    """The decision for a Messages request body, and the body to forward.

    Rules, in order: `request.allow_models`/`deny_models`, `strip_tools`
    (rewrite), `deny_tools`/`allow_tools`, `max_tools`, `thinking`,
    `max_tokens` (a clamp: rewrite), `max_request_tokens` (`count_tokens`
    estimates the body; without it the rule is skipped). The returned body is a
    copy when something was rewritten, else `body` itself.
    """
    rules = policy.request
    working: dict[str, Any] = dict(body)
    rewrites: list[Rewrite] = []
    steps: tuple[Callable[[Policy, dict[str, Any], list[Rewrite]], Denial | None], ...] = (
        _models,
        _strip_tools,
        _tool_names,
        _max_tools,
        _thinking,
        _clamp_max_tokens,
    )
    for step in steps:
        denial = step(policy, working, rewrites)
        if denial:
            return deny(denial), dict(body)
    limit = rules.max_request_tokens
    if limit is not None and count_tokens is not None:
        tokens = count_tokens(working)
        if tokens > limit:
            return deny(
                Denial(
                    "request.max_request_tokens",
                    f"the request is about {tokens} input tokens, over the policy's "
                    f"request.max_request_tokens {limit}; shorten the conversation (/compact)",
                )
            ), dict(body)
    reason = "; ".join(r.detail for r in rewrites) or "no request rule applies"
    rule = rewrites[0].rule if rewrites else "request"
    return Decision(True, rule, reason, tuple(rewrites)), (working if rewrites else dict(body))


def _models(policy: Policy, body: dict[str, Any], _: list[Rewrite]) -> Denial | None:
    rules = policy.request
    model = str(body.get("model", ""))
    hit = name_matches(rules.deny_models, model)
    if hit:
        return Denial("request.deny_models", f"model {model!r} matches request.deny_models {hit!r}")
    if not name_matches(rules.allow_models, model):
        allowed = ", ".join(rules.allow_models)
        return Denial(
            "request.allow_models",
            f"model {model!r} is not in request.allow_models ({allowed}); use one of those",
        )
    return None


def _tools_of(body: Mapping[str, Any]) -> list[Any]:
    tools = body.get("tools")
    return tools if isinstance(tools, list) else []


def _tool_name(tool: Any) -> str:
    return str(tool.get("name", "")) if isinstance(tool, Mapping) else ""


def _matches(patterns: Sequence[str], raw: str) -> str | None:
    return name_matches(patterns, raw) or name_matches(patterns, canonical_name(raw))


def _strip_tools(policy: Policy, body: dict[str, Any], rewrites: list[Rewrite]) -> Denial | None:
    patterns = policy.request.strip_tools
    tools = _tools_of(body)
    if not patterns or not tools:
        return None
    kept = [t for t in tools if not _matches(patterns, _tool_name(t))]
    if len(kept) == len(tools):
        return None
    gone = sorted({_tool_name(t) for t in tools} - {_tool_name(t) for t in kept})
    body["tools"] = kept
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("name") in gone:
        del body["tool_choice"]
    rewrites.append(Rewrite("request.strip_tools", f"removed tools {', '.join(gone)}"))
    return None


def _tool_names(policy: Policy, body: dict[str, Any], _: list[Rewrite]) -> Denial | None:
    rules = policy.request
    for tool in _tools_of(body):
        name = _tool_name(tool)
        hit = _matches(rules.deny_tools, name)
        if hit:
            return Denial(
                "request.deny_tools",
                f"tool {name!r} matches request.deny_tools {hit!r}; remove the tool from the "
                "request (or list it in request.strip_tools to have lynkr remove it)",
            )
        if not _matches(rules.allow_tools, name):
            return Denial(
                "request.allow_tools",
                f"tool {name!r} is not in request.allow_tools; add it there or strip it",
            )
    return None


def _max_tools(policy: Policy, body: dict[str, Any], _: list[Rewrite]) -> Denial | None:
    limit = policy.request.max_tools
    count = len(_tools_of(body))
    if limit is not None and count > limit:
        return Denial(
            "request.max_tools",
            f"the request declares {count} tools, over request.max_tools {limit}; send fewer "
            "tools or strip some with request.strip_tools",
        )
    return None


def _thinking_on(body: Mapping[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, Mapping) and thinking.get("type") not in (None, "disabled")


def _thinking(policy: Policy, body: dict[str, Any], rewrites: list[Rewrite]) -> Denial | None:
    mode = policy.request.thinking
    on = _thinking_on(body)
    if mode == "require" and not on:
        return Denial(
            "request.thinking",
            "this policy requires extended thinking (request.thinking: require); send "
            '"thinking": {"type": "enabled", "budget_tokens": …}',
        )
    if mode == "deny" and on:
        return Denial(
            "request.thinking",
            "this policy does not allow extended thinking (request.thinking: deny); turn it off "
            "(Claude Code: MAX_THINKING_TOKENS=0) or use request.thinking: strip",
        )
    if mode == "strip" and "thinking" in body:
        _remove_thinking(body)
        rewrites.append(Rewrite("request.thinking", "removed thinking (request.thinking: strip)"))
    return None


def _remove_thinking(body: dict[str, Any]) -> None:
    """Drop `thinking`, and the `clear_thinking` context edits that need it."""
    body.pop("thinking", None)
    management = body.get("context_management")
    if isinstance(management, Mapping) and isinstance(management.get("edits"), list):
        edits = [
            e
            for e in management["edits"]
            if not (isinstance(e, Mapping) and str(e.get("type", "")).startswith("clear_thinking"))
        ]
        if edits:
            body["context_management"] = {**management, "edits": edits}
        else:
            body.pop("context_management")


def _clamp_max_tokens(
    policy: Policy, body: dict[str, Any], rewrites: list[Rewrite]
) -> Denial | None:
    limit = policy.request.max_tokens
    asked = body.get("max_tokens")
    if limit is None or not isinstance(asked, int) or asked <= limit:
        return None
    body["max_tokens"] = limit
    rewrites.append(Rewrite("request.max_tokens", f"max_tokens {asked} → {limit}"))
    thinking = body.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, Mapping) else None
    if isinstance(thinking, Mapping) and isinstance(budget, int) and budget >= limit:
        if limit - 1 >= 1024:  # Anthropic: 1024 ≤ budget_tokens < max_tokens
            body["thinking"] = {**copy.deepcopy(dict(thinking)), "budget_tokens": limit - 1}
            detail = f"thinking.budget_tokens {budget} → {limit - 1}"
        else:
            _remove_thinking(body)
            detail = "removed thinking (its minimum budget of 1024 does not fit max_tokens)"
        rewrites.append(Rewrite("request.max_tokens", detail))
    return None
