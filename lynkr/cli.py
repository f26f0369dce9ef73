"""The `lynkr` command: `serve`, `validate`, `route`, `policy check`, `memory …`, `index …`.

This is the only module that configures logging and starts uvicorn.

Each command imports what it needs when it runs: `lynkr validate` must not pay
for uvicorn, the logging setup or anything else only `serve` uses (the target:
validate of the default config in at most 300 ms). tests/cli/test_lazy_imports.py
guards this; keep module-level imports to the standard library and `lynkr`'s
version.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lynkr import __version__

if TYPE_CHECKING:
    from lynkr.asgi import ASGIApp
    from lynkr.config import Config
    from lynkr.errors import ConfigIssue
    from lynkr.stack import LynkrApp

__all__ = ["main"]

DEFAULT_CONFIG = "lynkr.yaml"
# The ASGI server behind `lynkr serve`; the default was chosen by measurement
# (benchmarks/servers.py, benchmarks/README.md "ASGI server").
SERVERS = ("uvicorn", "granian")
DEFAULT_SERVER = "uvicorn"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve(args.config, host=args.host, port=args.port, server=args.server)
    if args.command == "route":
        return route(args.config, args.explain, headers=args.header)
    if args.command == "validate":
        return validate(
            args.files or [DEFAULT_CONFIG],
            output=args.format,
            allow_missing_env=args.allow_missing_env,
            strict=args.strict,
        )
    if args.command == "memory":
        from lynkr.cli_memory import memory_command

        return memory_command(args)
    if args.command == "index":
        from lynkr.cli_index import index_command

        return index_command(args)
    if args.command == "policy" and args.policy_command == "check":
        return policy_check(
            args.policy, args.tool, args.input, workspace=args.workspace, output=args.format
        )
    parser.print_help()
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lynkr", description="Run Claude Code against the model provider you choose."
    )
    parser.add_argument("--version", action="version", version=f"lynkr {__version__}")
    commands = parser.add_subparsers(dest="command")
    serve_cmd = commands.add_parser("serve", help="serve the stack a config file describes")
    serve_cmd.add_argument("--config", default=DEFAULT_CONFIG, help="config file (lynkr.yaml)")
    serve_cmd.add_argument("--host", help="interface to bind (default: server.host)")
    serve_cmd.add_argument("--port", type=int, help="port to bind (default: server.port)")
    serve_cmd.add_argument(
        "--server",
        choices=SERVERS,
        default=DEFAULT_SERVER,
        help="ASGI server (default: %(default)s; granian needs the lynkr[granian] extra)",
    )
    check = commands.add_parser("validate", help="check config files without serving")
    check.add_argument("files", nargs="*", help="config files (default: lynkr.yaml)")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument(
        "--allow-missing-env",
        action="store_true",
        help="do not report unset ${VARS} (for CI without secrets)",
    )
    check.add_argument(
        "--strict",
        action="store_true",
        help="fail on warnings too (unsafe orderings, routes without auth on an open bind)",
    )
    explain = commands.add_parser(
        "route", help="show which pool a request would be routed to, and why"
    )
    explain.add_argument("--config", default=DEFAULT_CONFIG, help="config file (lynkr.yaml)")
    explain.add_argument(
        "--explain", required=True, metavar="REQUEST.json", help="an Anthropic request body"
    )
    explain.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="a request header to assume (repeatable), e.g. x-lynkr-pool:fast",
    )
    _add_policy_parser(commands)
    from lynkr.cli_memory import add_memory_parser

    add_memory_parser(commands, DEFAULT_CONFIG)
    from lynkr.cli_index import add_index_parser

    add_index_parser(commands)
    return parser


# route ------------------------------------------------------------------------


def route(file: str, request_file: str, *, headers: Sequence[str] = ()) -> int:
    """Print the routing decision trail for one request (format: README "Routing")."""
    from lynkr.config import load_config
    from lynkr.config.report import format_text
    from lynkr.errors import ConfigError
    from lynkr.middleware.routing_rules import (
        TABLE_OPTIONS,
        RouteInput,
        decide,
        explain,
        routing_table,
    )
    from lynkr.stack import routing_options

    try:
        config = load_config(file)
    except ConfigError as error:
        print(format_text(error.issues, file), file=sys.stderr)
        return 2 if error.unreadable else 1
    try:
        body = json.loads(Path(request_file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"{request_file}: cannot read a JSON request body: {exc}", file=sys.stderr)
        return 2
    assumed = {}
    for item in headers:
        name, _, value = item.partition(":")
        assumed[name.strip().lower()] = value.strip()
    # The table the routing middleware builds from the same options: explain and serve agree.
    options = routing_options(config)
    table = routing_table(**{name: options[name] for name in TABLE_OPTIONS if name in options})
    decision = decide(
        table, RouteInput(assumed, body if isinstance(body, dict) else {}), explain_all=True
    )
    print(explain(decision))
    pool = config.pools.get(decision.pool or "")
    if pool is None:
        print(f"pool {decision.pool or '-'}: not defined in {file}")
        return 1
    fallback = f"; fallback: {', '.join(pool.fallback)}" if pool.fallback else ""
    print(f"pool {pool.name}: providers {', '.join(pool.providers)}{fallback}")
    return 0


async def _never_served(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
    """The inner app of a middleware built only to use its logic (`route`, `policy check`)."""
    raise AssertionError("this middleware was built to explain or check, not to serve")


# validate ---------------------------------------------------------------------


def validate(
    files: Sequence[str],
    *,
    output: str = "text",
    allow_missing_env: bool = False,
    strict: bool = False,
) -> int:
    """Check each file fully (schema, references, middleware options, safety).

    Returns the exit code: 0 valid, 1 invalid (or, with `strict`, unsafe), 2 unreadable.
    """
    from lynkr.config.report import format_json, format_text

    status = 0
    every_issue: list[ConfigIssue] = []
    for file in files:
        issues, unreadable = _check(file, allow_missing_env=allow_missing_env)
        every_issue += issues
        if output == "text":
            print(format_text(issues, file))
        failing = [i for i in issues if strict or i.severity == "error"]
        status = max(status, 2 if unreadable else 1 if failing else 0)
    if output == "json":
        print(format_json(every_issue))
    return status


def _check(file: str, *, allow_missing_env: bool) -> tuple[list[ConfigIssue], bool]:
    # Building the app is part of the check (every adapter and middleware refuses bad
    # options in its constructor); none of them opens a connection or a file here.
    from lynkr.config import load_config
    from lynkr.config.safety import safety_warnings
    from lynkr.errors import ConfigError
    from lynkr.stack import build_app

    try:
        config = load_config(file, allow_missing_env=allow_missing_env)
        build_app(config)
    except ConfigError as error:
        return error.issues, error.unreadable
    return safety_warnings(config), False


# policy -----------------------------------------------------------------------


def _add_policy_parser(commands: Any) -> None:
    policy = commands.add_parser("policy", help="work with policy files (policies/*.yaml)")
    actions = policy.add_subparsers(dest="policy_command")
    check = actions.add_parser(
        "check", help="the decision a policy file makes for one tool call, and the rule"
    )
    check.add_argument("--policy", required=True, metavar="FILE", help="a policy file")
    check.add_argument("--tool", required=True, help="the tool name, e.g. Bash, Write, shell")
    check.add_argument(
        "--input", default="{}", metavar="JSON", help='the tool input, e.g. {"command": "ls"}'
    )
    check.add_argument("--workspace", metavar="DIR", help="workspace root (default: cwd)")
    check.add_argument("--format", choices=("text", "json"), default="text")


def policy_check(
    file: str, tool: str, tool_input: str, *, workspace: str | None = None, output: str = "text"
) -> int:
    """Print the decision for one tool call: exit 0 allowed, 1 denied, 2 bad policy or input."""
    from lynkr.config.policy import load_policy_data
    from lynkr.config.report import format_json, format_text
    from lynkr.errors import ConfigError
    from lynkr.policy import Policy, ToolContext, Workspace, evaluate_tool_call

    try:
        data = load_policy_data(file)
    except ConfigError as error:
        text = format_json(error.issues) if output == "json" else format_text(error.issues, file)
        print(text, file=sys.stderr)
        return 2
    try:
        arguments = json.loads(tool_input)
    except ValueError as exc:
        print(f"--input is not JSON: {exc}", file=sys.stderr)
        return 2
    context = ToolContext(workspace=Workspace(workspace or os.getcwd()))
    decision = evaluate_tool_call(Policy.from_data(data), tool, arguments, context)
    if output == "json":
        print(json.dumps({"policy": file, **decision.as_dict()}, indent=2))
    else:
        verdict = "allowed" if decision.allowed else "denied"
        print(f"{verdict}: {tool} ({decision.tool})\nrule: {decision.rule}\n{decision.reason}")
    return 0 if decision.allowed else 1


# serve ------------------------------------------------------------------------


def serve(
    file: str, *, host: str | None = None, port: int | None = None, server: str = DEFAULT_SERVER
) -> int:
    """Load `file`, print what will be served, and run it under `server` until stopped."""
    from lynkr.config import load_config
    from lynkr.config.report import format_text
    from lynkr.errors import ConfigError
    from lynkr.stack import build_app, served_app

    try:
        config = load_config(file)
        if host is not None:  # the front door allows the address really bound
            config = dataclasses.replace(
                config, server=dataclasses.replace(config.server, host=host)
            )
        app = build_app(config)
    except ConfigError as error:
        print(format_text(error.issues, file), file=sys.stderr)
        return 2 if error.unreadable else 1
    _warn_unsafe(config)
    app.freeze_after_startup = True
    _configure_logging(config.server.log_level, _log_secrets(config))
    config.server.data_dir.mkdir(parents=True, exist_ok=True)
    bind_host = host or config.server.host
    bind_port = port or config.server.port
    print(summary(config, bind_host, bind_port, app), flush=True)
    served = served_app(config, app)
    if server == "granian":
        return _run_granian(file, served, bind_host, bind_port, config.server.log_level)
    from lynkr.serving import HeadLimits, run_uvicorn

    limits = config.server.limits
    return run_uvicorn(
        served,
        bind_host,
        bind_port,
        config.server.log_level,
        limits=HeadLimits(
            max_connections=limits.max_connections,
            max_header_bytes=limits.max_header_bytes,
            header_timeout=limits.header_timeout_seconds,
        ),
        keep_alive_seconds=limits.keep_alive_seconds,
    )


# The app `serve` built, for a granian worker forked from this process.
_granian_app: ASGIApp | None = None


def _log_secrets(config: Any) -> list[str]:
    """Every credential in the config: the providers' and the client keys of `auth`."""
    from lynkr.middleware.auth import named_keys
    from lynkr.stack.tools import configured_secrets

    keys = [
        key
        for route in config.routes
        for spec in route.middleware
        if spec.use == "auth"
        for key, _ in named_keys(spec.options.get("keys", []))
    ]
    return [*configured_secrets(config), *keys]


def _warn_unsafe(config: Any) -> None:
    """What `lynkr validate` warns about, said at start too (to stderr)."""
    from lynkr.config.safety import safety_warnings

    for warning in safety_warnings(config):
        print(warning, file=sys.stderr)


def _run_granian(file: str, app: ASGIApp, host: str, port: int, log_level: str) -> int:
    """granian's ASGI interface (with lifespan), one worker process, its default loop."""
    try:
        from granian import Granian
        from granian.constants import Interfaces
        from granian.log import LogLevels
    except ImportError:
        print("--server granian needs granian: pip install 'lynkr[granian]'", file=sys.stderr)
        return 2
    global _granian_app
    _granian_app = app
    server = Granian(
        "lynkr",  # only a name here: the worker gets its app from the loader below
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        log_level=LogLevels(log_level),
        log_access=False,
        workers_kill_timeout=10,
    )
    server.serve(target_loader=functools.partial(_granian_worker_app, file))
    return 0


def _granian_worker_app(file: str, _target: str) -> ASGIApp:
    """The worker's app: inherited when forked, built again from `file` when spawned."""
    if _granian_app is not None:
        return _granian_app
    from lynkr.config import load_config
    from lynkr.stack import build_app, served_app

    config = load_config(file)
    return served_app(config, build_app(config))


def summary(config: Config, host: str, port: int, app: LynkrApp | None = None) -> str:
    """One readable overview of what is served; secrets appear only as where they came from.

    With the built `app`, each route shows the layers it really has (the sessions
    layer the stack places included).
    """
    from lynkr.providers.http import redact_url

    lines = [f"lynkr {__version__} serving {config.file} on http://{host}:{port}"]
    lines.append(f"  data dir    {config.server.data_dir}")
    for name, provider in config.providers.items():
        key = f"key from {provider.api_key.source}" if provider.api_key else "no key"
        where = redact_url(provider.base_url) if provider.base_url else "(default URL)"
        model = provider.model or "(client's model)"
        lines.append(f"  provider    {name}: {provider.type} {where} model={model} {key}")
    for name, pool in config.pools.items():
        fallback = f" (fallback: {', '.join(pool.fallback)})" if pool.fallback else ""
        lines.append(f"  pool        {name}: {', '.join(pool.providers)}{fallback}")
    if config.routing.default_pool:
        lines.append(f"  default     pool {config.routing.default_pool}")
    built = {route.path: route.names for route in app.routes} if app is not None else {}
    for route in config.routes:
        names = built.get(route.path, tuple(spec.use for spec in route.middleware))
        lines.append(f"  route       {route.path}  " + " → ".join([*names, route.app]))
    if config.sessions.enabled:
        lines.append(f"  sessions    {config.server.data_dir / 'lynkr.sqlite3'}")
    if config.memory.enabled:
        lines.append(f"  memory      {config.server.data_dir / 'memory.sqlite3'}, "
                     + _embeddings_line(config.memory.embeddings))  # fmt: skip
    return "\n".join(lines)


def _embeddings_line(embeddings: Any) -> str:
    from lynkr.providers.http import redact_url

    kind = embeddings.get("type", "local")
    if kind == "none":
        return "keyword search only (memory.embeddings.type: none)"
    if kind == "local":
        return "embeddings: wordllama, offline"
    return f"embeddings: {kind} {redact_url(embeddings['base_url'])} model={embeddings['model']}"


def _configure_logging(level: str, secrets: Sequence[str] = ()) -> None:
    """JSON lines on stderr; every line scrubbed of every configured secret (in each
    form `secret_forms` knows) after rendering, so no field and no traceback escapes."""
    import logging

    import orjson
    import structlog

    from lynkr.providers.errors import redact_bytes, secret_forms

    forms = secret_forms(tuple(secrets))

    def scrubbed(_logger: object, _name: str, rendered: bytes) -> bytes:
        return redact_bytes(rendered, forms)

    numeric = getattr(logging, level.upper(), logging.INFO)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
            scrubbed,  # type: ignore[list-item]  # after the renderer: it gets the bytes
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.BytesLoggerFactory(sys.stderr.buffer),
        cache_logger_on_first_use=True,
    )


if __name__ == "__main__":
    raise SystemExit(main())
