"""Routing decisions as a pure function over plain data, with the trail that explains them.

The order, first match wins (and every step is recorded for `explain`):

1. the pool header (`x-lynkr-pool: NAME`, if enabled) names a pool directly;
2. the configured `rules`, in order: each matches on any of model name
   (globs), estimated input tokens, thinking requested, tool count, headers;
3. session stickiness: a session keeps the pool it was routed to before, so it
   stays on the provider that holds its prompt cache (the pool's order is
   deterministic, so the same pool means the same provider while it is healthy);
4. the tool-count thresholds (0..simple → "simple", ..moderate → "moderate",
   more → "complex");
5. the default pool.

`explain(decision)` renders the trail in a stable, documented text format
(README "Routing"); `route_header(decision)` is the `x-lynkr-route` value.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lynkr.protocol import claude_code_session_id, estimate_input_tokens
from lynkr.protocol.claude_code import SESSION_HEADER

__all__ = [
    "TABLE_OPTIONS",
    "Check",
    "Decision",
    "RouteInput",
    "RoutingTable",
    "Rule",
    "decide",
    "explain",
    "route_header",
    "routing_table",
    "rules_from_options",
    "session_id",
]


@dataclass(frozen=True, slots=True)
class Rule:
    """One routing rule: every condition given must hold; `pool` is where it sends."""

    pool: str
    name: str
    model: tuple[str, ...] = ()
    min_input_tokens: int | None = None
    thinking: bool | None = None
    min_tools: int | None = None
    max_tools: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """Everything a decision is made from but the request: built once by `routing_table`."""

    default_pool: str | None = None
    tool_thresholds: Mapping[str, int] | None = None
    pool_header: str | None = "x-lynkr-pool"
    rules: tuple[Rule, ...] = ()
    sticky_sessions: bool = False

    def headers_read(self) -> frozenset[str]:
        """The request headers a decision may depend on (lower case).

        What a layer in front of routing must key on when it answers for the pool
        routing would choose (the response cache).
        """
        names = {name.lower() for rule in self.rules for name in rule.headers}
        if self.pool_header:
            names.add(self.pool_header)
        if self.sticky_sessions:
            names.add(SESSION_HEADER)
        return frozenset(names)


# The routing middleware's options that make its table (`routing_table`'s arguments).
TABLE_OPTIONS = ("default_pool", "tool_thresholds", "pool_header", "rules", "sticky_sessions")


def routing_table(
    *,
    default_pool: str | None = None,
    tool_thresholds: Mapping[str, int] | None = None,
    pool_header: str | None = "x-lynkr-pool",
    rules: Sequence[Mapping[str, Any]] | None = None,
    sticky_sessions: bool = False,
) -> RoutingTable:
    """The table for these options (the routing middleware's, as in lynkr.yaml).

    Raises `ValueError` with a fixable message for thresholds that cannot work.
    """
    if tool_thresholds is not None:
        missing = {"simple", "moderate"} - set(tool_thresholds)
        if missing:
            raise ValueError(
                "tool_thresholds needs both 'simple' and 'moderate' tool counts, "
                f"missing: {', '.join(sorted(missing))}"
            )
        if tool_thresholds["moderate"] < tool_thresholds["simple"]:
            raise ValueError("tool_thresholds.moderate must be at least tool_thresholds.simple")
    return RoutingTable(
        default_pool=default_pool,
        tool_thresholds=dict(tool_thresholds) if tool_thresholds else None,
        pool_header=pool_header.lower() if pool_header else None,
        rules=rules_from_options(rules or ()),
        sticky_sessions=sticky_sessions,
    )


@dataclass(frozen=True, slots=True)
class RouteInput:
    """What a decision may look at: lower-cased headers, the parsed body, the session's pool."""

    headers: Mapping[str, str]
    body: Mapping[str, Any] | None
    sticky_pool: str | None = None


@dataclass(frozen=True, slots=True)
class Check:
    step: str
    matched: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    pool: str | None
    rule: str
    reason: str
    checks: tuple[Check, ...]
    facts: Mapping[str, Any]


# A step either matches, giving (pool, rule name, reason), or says why it did not.
_Match = tuple[str | None, str, str]


def decide(table: RoutingTable, request: RouteInput, *, explain_all: bool = False) -> Decision:
    """The pool for `request`; `explain_all` evaluates every step for the trail."""
    facts = _Facts(request.body or {}, want_tokens=explain_all)
    checks: list[Check] = []
    found: _Match | None = None
    for step, outcome in _steps(table, request, facts):
        if isinstance(outcome, str):
            checks.append(Check(step, False, outcome))
            continue
        checks.append(Check(step, True, outcome[2]))
        if found is None:
            found = outcome
        if not explain_all:
            break
    if found is None:
        found = (table.default_pool, "default", "no rule matched")
        checks.append(Check("default", True, f"pool {table.default_pool or '-'}"))
    pool, rule, reason = found
    return Decision(pool, rule, reason, tuple(checks), facts.summary())


def _steps(table: RoutingTable, request: RouteInput, facts: _Facts) -> Iterator[tuple[str, Any]]:
    """The steps in order, each evaluated only when the loop asks for it."""
    yield "header", _header_step(table, request)
    for rule in table.rules:
        yield f"rule {rule.name}", _rule_step(rule, request, facts)
    yield "sticky session", _sticky_step(table, request)
    yield "tool_thresholds", _threshold_step(table, facts)


def _header_step(table: RoutingTable, request: RouteInput) -> _Match | str:
    if not table.pool_header:
        return "disabled"
    named = request.headers.get(table.pool_header.lower(), "").strip()
    if not named:
        return f"{table.pool_header} absent"
    return named, "header", f"{table.pool_header}: {named}"


def _sticky_step(table: RoutingTable, request: RouteInput) -> _Match | str:
    if not table.sticky_sessions:
        return "off"
    if request.sticky_pool is None:
        return "no earlier pool for this session"
    return request.sticky_pool, "sticky", "the session was routed there before"


def _threshold_step(table: RoutingTable, facts: _Facts) -> _Match | str:
    limits = table.tool_thresholds
    if not limits:
        return "not configured"
    tools = facts.tools
    if tools <= limits["simple"]:
        return "simple", "tool_thresholds", f"tools={tools}<=simple={limits['simple']}"
    if tools <= limits["moderate"]:
        return "moderate", "tool_thresholds", f"tools={tools}<=moderate={limits['moderate']}"
    return "complex", "tool_thresholds", f"tools={tools}>moderate={limits['moderate']}"


def _rule_step(rule: Rule, request: RouteInput, facts: _Facts) -> _Match | str:
    # Cheap conditions first: the token estimate is computed only if all else matched.
    for condition in (_model_ok, _tools_ok, _thinking_ok, _headers_ok, _tokens_ok):
        failure = condition(rule, request, facts)
        if failure:
            return failure
    return rule.pool, rule.name, _describe(rule)


def _model_ok(rule: Rule, request: RouteInput, facts: _Facts) -> str | None:
    if not rule.model:
        return None
    model = facts.model.lower()
    if any(fnmatch.fnmatchcase(model, pattern.lower()) for pattern in rule.model):
        return None
    return f"model '{facts.model}' matches none of {list(rule.model)}"


def _tools_ok(rule: Rule, request: RouteInput, facts: _Facts) -> str | None:
    if rule.min_tools is not None and facts.tools < rule.min_tools:
        return f"tools={facts.tools}<{rule.min_tools}"
    if rule.max_tools is not None and facts.tools > rule.max_tools:
        return f"tools={facts.tools}>{rule.max_tools}"
    return None


def _thinking_ok(rule: Rule, request: RouteInput, facts: _Facts) -> str | None:
    if rule.thinking is None or facts.thinking == rule.thinking:
        return None
    return f"thinking={'on' if facts.thinking else 'off'}"


def _headers_ok(rule: Rule, request: RouteInput, facts: _Facts) -> str | None:
    for name, pattern in rule.headers.items():
        value = request.headers.get(name.lower())
        if value is None or not fnmatch.fnmatchcase(value, pattern):
            return f"header {name}={value if value is not None else '(absent)'}"
    return None


def _tokens_ok(rule: Rule, request: RouteInput, facts: _Facts) -> str | None:
    if rule.min_input_tokens is None or facts.input_tokens >= rule.min_input_tokens:
        return None
    return f"estimated_input_tokens={facts.input_tokens}<{rule.min_input_tokens}"


def _describe(rule: Rule) -> str:
    parts = []
    if rule.model:
        parts.append(f"model in {list(rule.model)}")
    if rule.min_input_tokens is not None:
        parts.append(f"estimated_input_tokens>={rule.min_input_tokens}")
    if rule.thinking is not None:
        parts.append(f"thinking={'on' if rule.thinking else 'off'}")
    if rule.min_tools is not None:
        parts.append(f"tools>={rule.min_tools}")
    if rule.max_tools is not None:
        parts.append(f"tools<={rule.max_tools}")
    parts += [f"header {name}={pattern}" for name, pattern in rule.headers.items()]
    return ", ".join(parts) or "always"


class _Facts:
    """What rules look at, computed on demand (the token estimate costs the most)."""

    def __init__(self, body: Mapping[str, Any], *, want_tokens: bool) -> None:
        self.body = body
        tools = body.get("tools")
        self.tools = len(tools) if isinstance(tools, list) else 0
        self.model = str(body.get("model") or "")
        thinking = body.get("thinking")
        self.thinking = isinstance(thinking, dict) and thinking.get("type") in (
            "enabled",
            "adaptive",
        )
        self._tokens: int | None = None
        if want_tokens:
            self._tokens = self.input_tokens

    @property
    def input_tokens(self) -> int:
        if self._tokens is None:
            self._tokens = estimate_input_tokens(dict(self.body)) if self.body else 0
        return self._tokens

    def summary(self) -> dict[str, Any]:
        facts: dict[str, Any] = {
            "model": self.model or None,
            "tools": self.tools,
            "thinking": self.thinking,
        }
        if self._tokens is not None:
            facts["estimated_input_tokens"] = self._tokens
        return facts


def route_header(decision: Decision) -> str:
    """The `x-lynkr-route` response header: `pool=NAME; rule=RULE; reason=...`."""
    return f"pool={decision.pool or '-'}; rule={decision.rule}; reason={decision.reason}"


def explain(decision: Decision) -> str:
    """The decision trail, one line per step, in the stable format the README documents."""
    facts = " ".join(f"{k}={_show(v)}" for k, v in decision.facts.items())
    lines = [f"request: {facts}"]
    for check in decision.checks:
        verdict = "match" if check.matched else "no"
        lines.append(f"  {check.step:<24} {verdict:<5} {check.detail}")
    lines.append(f"decision: pool={decision.pool or '-'} rule={decision.rule}")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return "-" if value is None else str(value)


def session_id(headers: Mapping[str, str], body: Mapping[str, Any] | None) -> str | None:
    """Claude Code's session: its header, else `metadata.user_id`'s session_id.

    The rule (docs/protocol.md A.3, A.4) lives in `lynkr.protocol.claude_code`, shared with
    the session store.
    """
    return claude_code_session_id(headers, body)


def rules_from_options(rules: Sequence[Mapping[str, Any]]) -> tuple[Rule, ...]:
    """Rules from their YAML form; raises `ValueError` with a fixable message."""
    built = []
    for index, raw in enumerate(rules):
        if "pool" not in raw:
            raise ValueError(f"rules[{index}] needs a pool")
        model = raw.get("model", ())
        built.append(
            Rule(
                pool=raw["pool"],
                name=str(raw.get("name") or f"#{index}"),
                model=(model,) if isinstance(model, str) else tuple(model),
                min_input_tokens=raw.get("min_input_tokens"),
                thinking=raw.get("thinking"),
                min_tools=raw.get("min_tools"),
                max_tools=raw.get("max_tools"),
                headers=dict(raw.get("headers", {})),
            )
        )
        if not set(raw) - {"name", "pool"}:
            raise ValueError(f"rules[{index}] has no condition; it would match every request")
    return tuple(built)
