"""Request validation: a body size limit, one JSON parse, and a check of the request's shape.

The body is read and parsed once here and kept in the request context; inner
layers get the parsed object from the context and the raw bytes through a
replaying `receive`, untouched unless a layer changed them.

The shape is `schema/anthropic-messages.schema.json` (docs/protocol.md B.1, made
permissive for what Claude Code really sends, A.4–A.8): a POST whose path ends
in ``/count_tokens`` is checked against its `$defs/count_tokens_request`, any
other POST against the Messages request.

One validator, `jsonschema-rs` (Rust), does both jobs. It answers yes or no on
every request (~10 µs for a 78 KB Claude Code body, where `jsonschema` takes
2–3 ms; benchmarks/README.md, "Request validation"), and on a no its first
error names the JSON path, the failed keyword and its place in the schema,
which is all `describe_error` needs. `validate` stops at that first error, so
a refusal costs one pass over the body plus turning the failing value back
into Python (the whole body for a top-level error: ~10 ms for 29 MB), however
many errors the body holds. Not the most relevant of all errors: jsonschema-rs'
`iter_errors` builds every error before handing out the first (~15 µs each,
4.5 s for 256 KB of numbers as content blocks), and `jsonschema`'s
`best_match`, which named the error before, walked them all too (9 s for those
256 KB) and cannot recurse past ~60 levels. A body with several problems is
told the first one jsonschema-rs meets where `best_match` preferred the
shallowest; both are real problems, and a body with one problem (the usual
case) reads exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from lynkr.asgi import (
    DEFAULT_BODY_LIMIT,
    ASGIApp,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    get_context,
    parsed_body,
    replay_receive,
    send_error,
)
from lynkr.errors import ClientError, LynkrError

__all__ = ["ValidationMiddleware", "describe_error", "load_request_schema"]

_SCHEMA_FILE = "anthropic-messages.schema.json"
_COUNT_TOKENS = "count_tokens_request"


class ValidationMiddleware:
    """Rejects oversized, unparsable or malformed requests with Anthropic-shaped 4xx errors.

    `max_body_bytes`: larger bodies get 413 `request_too_large` (Anthropic's
    limit is 32 MB, docs/protocol.md A.9). `validate_schema=False` keeps the limit
    and the parse but skips the shape check, for an inner app that is not an
    Anthropic Messages endpoint.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = DEFAULT_BODY_LIMIT,
        validate_schema: bool = True,
    ) -> None:
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be a positive integer, got {max_body_bytes!r}")
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.validate_schema = validate_schema
        # Compiled once per process, shared by every instance.
        self._messages = _shape("messages_request")
        self._count_tokens = _shape(_COUNT_TOKENS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            body = await parsed_body(scope, receive, limit=self.max_body_bytes)
            if self.validate_schema:
                counting = scope["path"].endswith("/count_tokens")
                (self._count_tokens if counting else self._messages).check(body)
        except ClientDisconnected:
            return
        except LynkrError as error:
            await send_error(send, error, request_id=get_context(scope).request_id)
            return
        await self.app(scope, replay_receive(scope, receive), send)


@dataclass(frozen=True, slots=True)
class _Shape:
    """One request shape: its schema document and the validator compiled from it."""

    document: dict[str, Any]
    validator: jsonschema_rs.Validator

    def check(self, body: dict[str, Any]) -> None:
        """Raise `ClientError` naming the JSON path of a problem in `body`."""
        # `is_valid` first: `validate` would cost ~0.5 µs more on every body that passes.
        if self.validator.is_valid(body):
            return
        try:
            self.validator.validate(body)
        except jsonschema_rs.ValidationError as error:
            raise ClientError(describe_error(error, self.document)) from None


@cache
def _shape(definition: str) -> _Shape:
    """The validator of `$defs/<definition>` (the top level is the Messages request)."""
    document = {**load_request_schema(), "$ref": f"#/$defs/{definition}"}
    # `mask`: an error's own message says "the value" instead of writing the failing value
    # out, which for a top-level error is the whole body (~35 ms for 29 MB, 4x the rest of
    # the refusal). `describe_error` quotes values itself and needs no such message.
    return _Shape(document, jsonschema_rs.Draft202012Validator(document, mask="the value"))


@cache
def load_request_schema() -> dict[str, Any]:
    """The Anthropic request schema: packaged with the wheel, or from the source tree.

    The same lookup as `lynkr.config.schema()`, which a middleware may not import.
    """
    package = Path(__file__).resolve().parent.parent
    for folder in (package / "_schema", package.parent / "schema"):
        path = folder / _SCHEMA_FILE
        if path.is_file():
            loaded: dict[str, Any] = orjson.loads(path.read_bytes())
            return loaded
    raise FileNotFoundError(f"{_SCHEMA_FILE} is missing from this installation")


def describe_error(error: jsonschema_rs.ValidationError, document: dict[str, Any]) -> str:
    """`<JSON path>: <what was expected>, got <what came>`: one schema error, for the client.

    For example `messages[3].content[1].tool_use_id: required` or
    `max_tokens: expected integer, got string '64000'`: where, what, and the
    bad value quoted, so a client can fix the request. What was expected is
    read from `document`, the schema the error came from, at the error's
    `schema_path` (the keyword's place in the document, `$ref`s resolved, since
    jsonschema-rs 0.39): the error's own `kind` lists a `type`'s names in its
    own order, not the schema's.
    """
    keyword = str(error.schema_path[-1])
    expected: Any = document
    for part in error.schema_path:
        expected = expected[part]
    value: Any = error.instance  # an object for `required`, whatever failed otherwise
    where = _format_path(error.instance_path)
    if keyword == "required":
        missing = next(name for name in expected if name not in value)
        return f"{where}.{missing}".removeprefix(".") + ": required"
    return f"{where or 'body'}: {_expectation(keyword, expected, value, error.message)}"


def _expectation(keyword: str, expected: Any, value: Any, own_words: str) -> str:
    """`expected …, got …` for the keyword that failed (the validator's own words if unknown)."""
    if keyword == "type":
        types = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {types}, got {_json_type(value)}{_scalar(value)}"
    explain = _EXPECTATIONS.get(keyword)
    if explain is None:
        return own_words
    return f"expected {explain(expected)}, got {_shown(value)}"


_EXPECTATIONS: dict[str, Callable[[Any], str]] = {
    "enum": lambda allowed: "one of " + ", ".join(_short(v) for v in allowed),
    "const": lambda allowed: _short(allowed),
    "minimum": lambda bound: f"a number ≥ {bound}",
    "maximum": lambda bound: f"a number ≤ {bound}",
    "minLength": lambda bound: f"a string of at least {_count(bound, 'character')}",
    "minItems": lambda bound: f"at least {_count(bound, 'item')}",
}


def _format_path(path: Iterable[str | int]) -> str:
    """`messages[3].content[1]` from an error's `instance_path`; "" for the top level."""
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return text.removeprefix(".")


def _json_type(value: Any) -> str:
    """The JSON name of a parsed value's type."""
    for kind, name in _JSON_TYPES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


# bool before int: in Python a bool is an int, in JSON it is not a number.
_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
    (type(None), "null"),
)


def _scalar(value: Any) -> str:
    """` 'the value'` after a type name for a scalar; nothing for an array or an object."""
    return "" if isinstance(value, list | dict) or value is None else f" {_short(value)}"


def _shown(value: Any) -> str:
    """A scalar quoted, or a container described (never dumped whole)."""
    if isinstance(value, list):
        return f"an array of {_count(len(value), 'item')}" if value else "an empty array"
    if isinstance(value, dict):
        return "an object"
    return _short(value)


def _count(number: int, noun: str) -> str:
    """`1 item`, `2 items`."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _short(value: Any, limit: int = 40) -> str:
    """`'text'` for a string (cut to `limit` characters), JSON for other scalars."""
    if isinstance(value, str):
        return repr(value if len(value) <= limit else value[:limit] + "…")
    return orjson.dumps(value).decode()
