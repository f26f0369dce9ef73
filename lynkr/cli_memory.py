"""`lynkr memory …`: add, search, list, forget, stats and prune long-term memories.

Every subcommand reads `--config` (default ./lynkr.yaml) for its data dir and
its `memory:` settings, and works on `<data_dir>/memory.sqlite3` directly —
with or without a `lynkr serve` running on it (SQLite in WAL mode), and
whether or not `memory.enabled` is on (memories can be prepared first).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

__all__ = ["add_memory_parser", "memory_command"]

_SUBCOMMANDS = ("add", "search", "list", "forget", "stats", "prune")


def add_memory_parser(commands: Any, default_config: str) -> None:
    memory = commands.add_parser("memory", help="work with long-term memories (docs/memory.md)")
    actions = memory.add_subparsers(dest="memory_command")

    def command(name: str, help_text: str) -> Any:
        parser = actions.add_parser(name, help=help_text)
        parser.add_argument("--config", default=default_config, help="config file (lynkr.yaml)")
        return parser

    add = command("add", "keep a memory for a workspace (no surprise test)")
    add.add_argument("text")
    add.add_argument("--workspace", required=True, metavar="DIR", help="the project directory")
    add.add_argument("--type", default="fact", help="preference, decision, fact, entity, …")
    add.add_argument("--global", dest="everywhere", action="store_true",
                     help="seen by every workspace")  # fmt: skip
    search = command("search", "the memories a prompt in a workspace would get, best first")
    search.add_argument("query")
    search.add_argument("--workspace", required=True, metavar="DIR")
    search.add_argument("--limit", type=int, default=5)
    search.add_argument("--format", choices=("text", "json"), default="text")
    listing = command("list", "memories, newest first")
    listing.add_argument("--workspace", metavar="DIR", help="only this workspace (and global)")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--format", choices=("text", "json"), default="text")
    forget = command("forget", "delete memories (lists them first without --yes)")
    forget.add_argument("query", nargs="?")
    forget.add_argument("--id", type=int, dest="memory_id")
    forget.add_argument("--workspace", required=True, metavar="DIR")
    forget.add_argument("--yes", action="store_true", help="really delete")
    stats = command("stats", "how many memories, by type")
    stats.add_argument("--workspace", metavar="DIR")
    stats.add_argument("--format", choices=("text", "json"), default="text")
    command("prune", "delete what decay and the limits say (memory.max_age_days, max_count)")


def memory_command(args: Any) -> int:
    """Run `lynkr memory <subcommand>`; 0 done, 1 nothing matched / refused, 2 bad config."""
    if args.memory_command not in _SUBCOMMANDS:
        print("lynkr memory: say what to do: " + ", ".join(_SUBCOMMANDS), file=sys.stderr)
        return 2
    from lynkr.config import load_config
    from lynkr.config.report import format_text
    from lynkr.errors import ConfigError

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(format_text(error.issues, args.config), file=sys.stderr)
        return 2
    return asyncio.run(_run(args, config))


async def _run(args: Any, config: Any) -> int:
    from dataclasses import replace

    from lynkr.stack.memory import build_memory

    service = build_memory(replace(config, memory=replace(config.memory, enabled=True)))
    needs_vectors = args.memory_command in ("add", "search")
    if not needs_vectors:
        service.embedder = None  # counting and deleting need no model
    await service.start(background=False)
    try:
        if service.disabled:
            print(f"lynkr memory: {service.problem}", file=sys.stderr)
            return 2
        return await _COMMANDS[args.memory_command](service, args)
    finally:
        await service.close()


def _scope(service: Any, workspace: str | None) -> Any:
    from lynkr.memory.workspace import normalise_workspace

    return None if workspace is None else service.scope_for(normalise_workspace(workspace), None)


async def _add(service: Any, args: Any) -> int:
    try:
        outcome = await service.add(
            _scope(service, args.workspace), args.text, args.type, everywhere=args.everywhere
        )
    except ValueError as exc:
        print(f"lynkr memory add: {exc}", file=sys.stderr)
        return 1
    print(f"{outcome.verdict.action}: memory #{outcome.memory_id} ({outcome.verdict.reason})")
    return 0


async def _search(service: Any, args: Any) -> int:
    from lynkr.memory.endpoint import hit_payload

    hits = await service.retrieve(_scope(service, args.workspace), args.query, args.limit)
    if args.format == "json":
        print(json.dumps([hit_payload(hit) for hit in hits], indent=2))
    else:
        for hit in hits:
            print(f"#{hit.memory.id} {hit.score:.3f} [{hit.memory.type}] {hit.memory.content}")
        if not hits:
            print("no memory is relevant to that", file=sys.stderr)
    return 0


async def _list(service: Any, args: Any) -> int:
    from lynkr.memory.endpoint import memory_payload

    memories = await service.store.listing(_scope(service, args.workspace), args.limit)
    if args.format == "json":
        print(json.dumps([memory_payload(m) for m in memories], indent=2))
    for memory in memories if args.format == "text" else ():
        gone = f" (superseded by #{memory.superseded_by})" if memory.superseded_by else ""
        print(f"#{memory.id} [{memory.type}] {memory.workspace}: {memory.content}{gone}")
    return 0


async def _forget(service: Any, args: Any) -> int:
    scope = _scope(service, args.workspace)
    if args.memory_id is not None:
        found = await service.store.get([args.memory_id])
        targets = [m for m in found.values() if m.workspace in scope.workspaces]
    elif args.query:
        targets = await service.matching(scope, args.query)
    else:
        print("lynkr memory forget: give a QUERY or --id ID", file=sys.stderr)
        return 2
    if not targets:
        print("no memory of that workspace matches; nothing deleted", file=sys.stderr)
        return 1
    for memory in targets:
        print(f"#{memory.id} [{memory.type}] {memory.content}")
    if not args.yes:
        print(f"would delete {len(targets)}; run again with --yes to delete", file=sys.stderr)
        return 0
    deleted = await service.forget([m.id for m in targets])
    print(f"deleted {deleted}")
    return 0


async def _stats(service: Any, args: Any) -> int:
    stats = await service.store.stats(_scope(service, args.workspace))
    data = {
        "total": stats.total,
        "active": stats.active,
        "superseded": stats.superseded,
        "by_type": stats.by_type,
        "workspaces": stats.workspaces,
        "with_vectors": stats.with_vectors,
        "vector_model": stats.vector_model,
    }
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        types = ", ".join(f"{k} {v}" for k, v in stats.by_type.items()) or "none"
        vectors = stats.vector_model or "none"
        print(f"{stats.active} active ({types}), {stats.superseded} superseded, "
              f"{stats.workspaces} workspaces, vectors: {vectors}")  # fmt: skip
    return 0


async def _prune(service: Any, args: Any) -> int:
    print(f"pruned {await service.prune()}")
    return 0


_COMMANDS = {
    "add": _add,
    "search": _search,
    "list": _list,
    "forget": _forget,
    "stats": _stats,
    "prune": _prune,
}
