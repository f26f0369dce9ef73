"""The memory family: the model searches, adds, forgets and counts long-term memories.

Offered when `memory.enabled` and lynkr runs tools (`server` / `hybrid`). Each
call works on the memories of the request's own scope (its workspace, and its
caller under `memory.scope: key`), which the memory layer put in the tool
context; the policy sees `memory.search`, `memory.add`, `memory.forget`,
`memory.stats` like any other tool.
"""

from __future__ import annotations

from typing import Any

from lynkr.agent.tools.base import ToolContext, ToolError, ToolResult, ToolSpec, object_schema
from lynkr.memory import MEMORY_TYPES, MemoryService, Scope

__all__ = ["memory_tools"]

_FORGET_LIMIT = 50


def _spec(action: str, description: str, schema: dict[str, Any]) -> ToolSpec:
    return ToolSpec(f"lynkr_memory_{action}", description, schema, "memory", f"memory.{action}")


def _bound(context: ToolContext) -> tuple[MemoryService, Scope]:
    service, scope = context.memory, context.memory_scope
    if not isinstance(service, MemoryService) or not isinstance(scope, Scope):
        raise ToolError("memory is not on for this request (memory.enabled in lynkr.yaml)")
    if service.disabled:
        raise ToolError(f"memory is unavailable in this process: {service.problem}")
    return service, scope


class _Search:
    spec = _spec(
        "search",
        "Search the long-term memories of this project (preferences, decisions, facts kept from "
        "earlier sessions). Use words of the subject; results are ranked, best first.",
        object_schema(
            {
                "query": {"type": "string", "minLength": 1, "maxLength": 2000},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50},
            },
            ("query",),
        ),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        service, scope = _bound(context)
        hits = await service.retrieve(scope, arguments["query"], arguments.get("limit", 10))
        lines = [f"#{h.memory.id} [{h.memory.type}] {h.memory.content} (score {h.score:.2f})"
                 for h in hits]  # fmt: skip
        return ToolResult("\n".join(lines) or "no memory matches that")


class _Add:
    spec = _spec(
        "add",
        "Keep something for later sessions of this project: a preference, decision or fact the "
        "user stated or you verified. One self-contained sentence.",
        object_schema(
            {
                "content": {"type": "string", "minLength": 1, "maxLength": 2000},
                "type": {"enum": list(MEMORY_TYPES)},
            },
            ("content",),
        ),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        service, scope = _bound(context)
        try:
            outcome = await service.add(scope, arguments["content"], arguments.get("type", "fact"))
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        verb = {"store": "stored", "merge": "merged into", "supersede": "stored, superseding"}
        action = verb.get(outcome.verdict.action, outcome.verdict.action)
        return ToolResult(f"{action} memory #{outcome.memory_id} ({outcome.verdict.reason})")


class _Forget:
    spec = _spec(
        "forget",
        "Delete memories of this project: by id, or those matching a query. Without "
        "confirm: true it only lists what would be deleted.",
        object_schema(
            {
                "query": {"type": "string", "minLength": 1, "maxLength": 2000},
                "id": {"type": "integer", "minimum": 1},
                "confirm": {"type": "boolean"},
            }
        ),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        service, scope = _bound(context)
        if "id" in arguments:
            found = await service.store.get([arguments["id"]])
            targets = [m for m in found.values() if m.workspace in scope.workspaces]
        elif "query" in arguments:
            targets = await service.matching(scope, arguments["query"], _FORGET_LIMIT)
        else:
            raise ToolError("give `id` (one memory) or `query` (the memories matching it)")
        if not targets:
            return ToolResult("no memory matches that; nothing deleted")
        listing = "\n".join(f"#{m.id} [{m.type}] {m.content}" for m in targets)
        if not arguments.get("confirm"):
            return ToolResult(f"would delete {len(targets)} (call again with confirm: true):\n"
                              + listing)  # fmt: skip
        deleted = await service.forget([m.id for m in targets])
        return ToolResult(f"deleted {deleted}:\n{listing}")


class _Stats:
    spec = _spec(
        "stats",
        "Count this project's long-term memories: active, superseded, by type.",
        object_schema({}),
    )

    async def run(self, arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        service, scope = _bound(context)
        stats = await service.store.stats(scope)
        types = ", ".join(f"{name} {count}" for name, count in stats.by_type.items()) or "none"
        return ToolResult(
            f"{stats.active} active memories ({types}); {stats.superseded} superseded; "
            f"vectors: {stats.vector_model or 'none (keyword search only)'}"
        )


def memory_tools() -> list[Any]:
    return [_Search(), _Add(), _Forget(), _Stats()]
