"""Request validation: a body size limit, one JSON parse, and a check of the request's shape.

The body is read and parsed once here and kept in the request context; inner
layers get the parsed object from the context and the raw bytes through a
replaying `receive`, untouched unless a layer changed them.

The shape is `schema/anthropic-messages.schema.json` (PROTOCOL.md B.1, made
permissive for what Claude Code really sends, A.4–A.8): a POST whose path ends
in ``/count_tokens`` is checked against its `$defs/count_tokens_request`, any
other POST against the Messages request. Three validators share the schema:

* `jsonschema-rs` (Rust) answers yes or no on every request: 12 µs for a
  78 KB Claude Code body, where a compiled `fastjsonschema` function takes
  250 µs and `jsonschema` 1.6 ms (benchmarks/README.md, "Request validation");
* only on a no, `jsonschema`'s Draft 2020-12 validator finds the most relevant
  error (`best_match`) and names its JSON path. It is the reference: when it
  finds nothing wrong, the request passes. Bodies over 256 KB, or nested
  deeper than it can recurse, get a compiled `fastjsonschema` validator's
  first error instead (compiled on first need), worded the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match

from lynkr.asgi import (
    DEFAULT_BODY_LIMIT,
    ASGIApp,
    ClientDisconnected,
    Receive,
    Scope,
    Send,
    get_context,
    nested_too_deeply,
    parsed_body,
    replay_receive,
    send_error,
)
from lynkr.errors import ClientError, LynkrError

__all__ = ["ValidationMiddleware", "describe_error", "load_request_schema"]

_SCHEMA_FILE = "anthropic-messages.schema.json"
_COUNT_TOKENS = "count_tokens_request"
# jsonschema explains a refused body up to this size: ~15 ms for 256 KB of a
# real conversation, but ~150 ms at worst (thousands of tiny blocks).
_EXPLAIN_LIMIT = 256 * 1024

_FastError = fastjsonschema.JsonSchemaValueException
_AnyError = ValidationError | _FastError


class ValidationMiddleware:
    """Rejects oversized, unparsable or malformed requests with Anthropic-shaped 4xx errors.

    `max_body_bytes`: larger bodies get 413 `request_too_large` (Anthropic's
    limit is 32 MB, PROTOCOL.md A.9). `validate_schema=False` keeps the limit
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
        # Built once per process, shared by every instance (fastjsonschema's compiled
        # function only when a first body fails).
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
                size = len(get_context(scope).raw_body or b"")
                (self._count_tokens if counting else self._messages).check(body, size=size)
        except ClientDisconnected:
            return
        except LynkrError as error:
            await send_error(send, error, request_id=get_context(scope).request_id)
            return
        await self.app(scope, replay_receive(scope, receive), send)


@dataclass(frozen=True, slots=True)
class _Shape:
    """One request shape: a quick yes/no check, and the validators that explain a no."""

    definition: str
    quick: Any  # a jsonschema_rs validator (the package ships no type hints)
    reference: Draft202012Validator

    @property
    def fast(self) -> Callable[[Any], Any]:
        """The compiled validator that names a first error where the reference cannot."""
        return _compiled(self.definition)

    def check(self, body: dict[str, Any], *, size: int) -> None:
        """Raise `ClientError` naming the JSON path of a problem in `body` (`size` bytes long)."""
        if self.quick.is_valid(body):
            return
        try:
            self.fast(body)
            return
        except fastjsonschema.JsonSchemaValueException as first:
            error = self._most_relevant(body, size, first)
        except RecursionError:
            raise nested_too_deeply() from None
        if error is not None:
            raise ClientError(describe_error(error))

    def _most_relevant(
        self, body: dict[str, Any], size: int, first: _FastError
    ) -> _AnyError | None:
        """jsonschema's `best_match`, or None if the reference finds nothing wrong.

        Past `_EXPLAIN_LIMIT` bytes, or nested deeper than it can recurse (~60
        levels), the reference would cost too much: the fast validator's first
        error is named instead.
        """
        if size > _EXPLAIN_LIMIT:
            return first
        try:
            error: ValidationError | None = best_match(self.reference.iter_errors(body))
        except RecursionError:
            return first
        return error


@cache
def _shape(definition: str) -> _Shape:
    """The validators of `$defs/<definition>` (the top level is the Messages request)."""
    document = _document(definition)
    quick = jsonschema_rs.Draft202012Validator(document)
    return _Shape(definition, quick, Draft202012Validator(document))


@cache
def _compiled(definition: str) -> Callable[[Any], Any]:
    """`fastjsonschema`'s function for a shape, compiled when a body first fails (~40 ms)."""
    return fastjsonschema.compile(_document(definition))


def _document(definition: str) -> dict[str, Any]:
    return {**load_request_schema(), "$ref": f"#/$defs/{definition}"}


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


def describe_error(error: _AnyError) -> str:
    """`<JSON path>: <what was expected>, got <what came>`: one schema error, for the client.

    For example `messages[3].content[1].tool_use_id: required` or
    `max_tokens: expected integer, got string '64000'` (STYLE.md rule 5: the
    message says where, what, and quotes the bad value). Both validators'
    errors read the same.
    """
    expected: Any
    value: Any
    if isinstance(error, ValidationError):
        where = _format_path(error.absolute_path)
        keyword, expected, value = str(error.validator), error.validator_value, error.instance
    else:  # fastjsonschema names the place `data.messages[3].content[1]`
        where = (error.name or "data").removeprefix("data").removeprefix(".")
        keyword, expected, value = str(error.rule), error.rule_definition, error.value
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
    """`messages[3].content[1]` from the deque jsonschema gives; "" for the top level."""
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
