"""Check config data against the JSON Schema (2020-12), and fill in its defaults.

jsonschema finds the errors; this module says them the way a person editing
lynkr.yaml thinks: `expected integer, got string 'ten'` at the value's line
and column, `unknown key 'tll' (did you mean 'ttl'?)` at the key. Every error
is reported, not just the first, so one `lynkr validate` run shows them all.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, relevance

from lynkr.config.source import Document, Path, format_path
from lynkr.errors import ConfigIssue

__all__ = ["apply_defaults", "validate"]

_TYPE_NAMES = {
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "object": "mapping",
    "array": "list",
    "null": "null",
}

# What YAML 1.1 (and so many other YAML readers) would have turned into booleans.
_YAML11_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n"})

_REDACTED = "<redacted: from the environment>"


def validate(
    document: Document, schema: dict[str, Any], *, secret_paths: Collection[Path] = frozenset()
) -> list[ConfigIssue]:
    """Every schema error in `document`, located, in reading order, without repeats.

    Values at `secret_paths` (what `interpolate` took from the environment)
    are never quoted in a message.
    """
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    issues = {
        issue
        for error in validator.iter_errors(document.data)
        for issue in _issues(_failure(_most_relevant(error), secret_paths), document)
    }
    return sorted(issues, key=lambda issue: (issue.line, issue.column, issue.path, issue.message))


def _most_relevant(error: ValidationError) -> ValidationError:
    """For oneOf/anyOf, the failure inside the branch that came closest, not "not valid
    under any of the given schemas" (the descent `best_match` does, also through ties)."""
    while error.context:
        error = min(error.context, key=relevance)
    return error


@dataclass(frozen=True)
class _Failure:
    """What the messages need from a jsonschema error, as plain data."""

    keyword: str
    expected: Any  # the keyword's value in the schema
    value: Any  # the offending value (for propertyNames: the key)
    path: Path
    schema: Any
    message: str  # jsonschema's own, for keywords without a message here
    names_a_key: bool  # raised under `propertyNames`
    secret: bool  # came from the environment: never quote it

    @property
    def shown(self) -> str:
        return _REDACTED if self.secret else _show(self.value)


def _failure(error: ValidationError, secret_paths: Collection[Path]) -> _Failure:
    path: Path = tuple(error.absolute_path)
    return _Failure(
        keyword=str(error.validator),
        expected=error.validator_value,
        value=error.instance,
        path=path,
        schema=error.schema,
        message=error.message,
        names_a_key="propertyNames" in error.relative_schema_path,
        secret=path in secret_paths,
    )


def _issues(failure: _Failure, document: Document) -> Iterator[ConfigIssue]:
    if failure.keyword in ("additionalProperties", "unevaluatedProperties"):
        yield from _unknown_keys(failure, document)
    elif failure.keyword == "required":
        # jsonschema raises one error per missing key; reporting all of them for
        # each error is simpler than telling which is which, and repeats merge.
        for name in failure.expected:
            if isinstance(failure.value, dict) and name not in failure.value:
                yield document.issue(failure.path, f"missing required key {name!r}", key=True)
    elif failure.names_a_key:
        # The bad value is the name itself: say it once.
        explained = _message(failure).removesuffix(f", got {failure.shown}")
        message = f"bad name {failure.value!r}: {explained}"
        line, column = document.locate((*failure.path, failure.value), key=True)
        yield ConfigIssue(document.file, line, column, format_path(failure.path), message)
    else:
        yield document.issue(failure.path, _message(failure))


def _unknown_keys(failure: _Failure, document: Document) -> Iterator[ConfigIssue]:
    """One issue per unexpected key, at the key but naming the mapping it is in."""
    keys = _unexpected_keys(failure)
    if not keys:
        yield document.issue(failure.path, failure.message)
    allowed = list(failure.schema.get("properties", {}))
    for key in keys:
        line, column = document.locate((*failure.path, key), key=True)
        message = f"unknown key {key!r}" + _did_you_mean(key, allowed)
        yield ConfigIssue(document.file, line, column, format_path(failure.path), message)


def _unexpected_keys(failure: _Failure) -> list[str]:
    instance = failure.value if isinstance(failure.value, dict) else {}
    if failure.keyword == "additionalProperties":
        known = failure.schema.get("properties", {})
        patterns = failure.schema.get("patternProperties", {})
        return [
            key
            for key in instance
            if key not in known and not any(re.search(pattern, key) for pattern in patterns)
        ]
    # unevaluatedProperties: which keys were evaluated depends on every applicator
    # around it, which jsonschema has already worked out and names in its message.
    return [key for key in instance if repr(key) in failure.message]


def _message(failure: _Failure) -> str:
    explain = _MESSAGES.get(failure.keyword)
    return explain(failure) if explain else failure.message


def _type(failure: _Failure) -> str:
    expected = failure.expected
    names = [expected] if isinstance(expected, str) else list(expected)
    message = f"expected {' or '.join(_TYPE_NAMES.get(n, n) for n in names)}, got "
    message += _json_type(failure.value)
    if failure.value is not None and not isinstance(failure.value, (dict, list)):
        message += f" {failure.shown}"
    if "boolean" in names and str(failure.value).lower() in _YAML11_BOOLEANS:
        message += " (lynkr reads YAML 1.2: write true or false)"
    return message


def _enum(failure: _Failure) -> str:
    choices = ", ".join(_show(choice) for choice in failure.expected)
    return f"expected one of {choices}, got {failure.shown}" + _hint(failure, failure.expected)


def _const(failure: _Failure) -> str:
    expected = failure.expected
    return f"expected {_show(expected)}, got {failure.shown}" + _hint(failure, [expected])


def _hint(failure: _Failure, allowed: list[Any]) -> str:
    """`(did you mean 'anthropic'?)` for a string close to one of the allowed strings."""
    if not isinstance(failure.value, str) or failure.secret:
        return ""
    return _did_you_mean(failure.value, [choice for choice in allowed if isinstance(choice, str)])


def _bound(relation: str) -> Callable[[_Failure], str]:
    return lambda failure: f"must be {relation} {failure.expected}, got {failure.shown}"


def _size(relation: str, unit: str) -> Callable[[_Failure], str]:
    """minLength, maxItems and the like: "must have at least 2 items, got 1"."""

    def explain(failure: _Failure) -> str:
        if relation == "at least" and failure.expected == 1:
            return "must not be empty"
        got = failure.shown if unit == "character" else str(len(failure.value))
        return f"must have {relation} {_count(failure.expected, unit)}, got {got}"

    return explain


_MESSAGES: dict[str, Callable[[_Failure], str]] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "minimum": _bound("at least"),
    "maximum": _bound("at most"),
    "exclusiveMinimum": _bound("greater than"),
    "exclusiveMaximum": _bound("less than"),
    "minLength": _size("at least", "character"),
    "maxLength": _size("at most", "character"),
    "minItems": _size("at least", "item"),
    "maxItems": _size("at most", "item"),
    "minProperties": _size("at least", "entry"),
    "maxProperties": _size("at most", "entry"),
    "pattern": lambda failure: (
        f"expected a value matching {failure.expected!r}, got {failure.shown}"
    ),
    "format": lambda failure: f"expected a valid {failure.expected}, got {failure.shown}",
    "uniqueItems": lambda failure: "must not list the same item twice",
}


def _did_you_mean(word: str, choices: Collection[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    for kind, name in ((int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    return "mapping" if isinstance(value, dict) else "list" if isinstance(value, list) else "null"


def _show(value: Any) -> str:
    """A value as the user would write it in YAML, strings quoted."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, (dict, list)):
        return f"a {_json_type(value)}"
    return str(value)


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}" + ("" if number == 1 else "s")


def apply_defaults(data: Any, schema: dict[str, Any]) -> Any:
    """A copy of valid `data` with every missing property that has a `default` filled in.

    Follows `properties`, `items`, `additionalProperties`, local `$ref`s and the
    `allOf` branches whose `if` holds (that is how provider and middleware
    variants get their own defaults). Defaults are copied, never shared.
    """
    filler = _DefaultFiller(schema)
    return filler.fill(copy.deepcopy(data), schema)


class _DefaultFiller:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.validator = Draft202012Validator(root)

    def fill(self, value: Any, schema: Any) -> Any:
        """`value` (owned by the caller, changed in place) with the defaults of `schema`."""
        if not isinstance(schema, dict):
            return value
        if isinstance(value, dict):
            self.fill_properties(value, schema)
        if isinstance(value, list) and "items" in schema:
            value[:] = [self.fill(item, schema["items"]) for item in value]
        if "$ref" in schema:
            value = self.fill(value, self.resolve(schema["$ref"]))
        for subschema in schema.get("allOf", []):
            value = self.fill(value, subschema)
        if "if" in schema:
            branch = "then" if self.holds(schema["if"], value) else "else"
            value = self.fill(value, schema.get(branch))
        return value

    def fill_properties(self, value: dict[str, Any], schema: dict[str, Any]) -> None:
        properties: dict[str, Any] = schema.get("properties", {})
        for name, subschema in properties.items():
            if name not in value and isinstance(subschema, dict) and "default" in subschema:
                value[name] = copy.deepcopy(subschema["default"])
            if name in value:
                value[name] = self.fill(value[name], subschema)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for name in value.keys() - properties.keys():
                value[name] = self.fill(value[name], additional)

    def holds(self, condition: Any, value: Any) -> bool:
        return bool(self.validator.evolve(schema=condition).is_valid(value))

    def resolve(self, ref: str) -> Any:
        """A local `#/$defs/name` reference (JSON Pointer, RFC 6901)."""
        if not ref.startswith("#"):
            raise ValueError(f"only local $refs are supported, got {ref!r}")
        target: Any = self.root
        for token in filter(None, ref[1:].split("/")):
            token = token.replace("~1", "/").replace("~0", "~")
            target = target[int(token)] if isinstance(target, list) else target[token]
        return target
