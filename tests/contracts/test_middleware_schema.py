"""Each middleware's `$defs/<name>` section lists exactly its constructor's options and defaults.

So a user mounting the class alone and a user writing lynkr.yaml get the same
behaviour (docs/architecture.md, Middlewares).
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from lynkr.config import schema
from lynkr.middleware import MIDDLEWARE, load_middleware

_NO_DEFAULT = object()


def _constructor_options(cls: type) -> dict[str, Any]:
    parameters = list(inspect.signature(cls.__init__).parameters.values())[2:]  # self, app
    for parameter in parameters:
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, (
            f"{cls.__name__}.{parameter.name} must be keyword-only"
        )
    return {
        p.name: (_NO_DEFAULT if p.default is inspect.Parameter.empty else p.default)
        for p in parameters
    }


@pytest.mark.parametrize("name", sorted(MIDDLEWARE))
def test_schema_section_equals_constructor(name: str) -> None:
    section = schema()["$defs"][name]
    options = _constructor_options(load_middleware(name))
    properties = section["properties"]
    assert set(properties) == set(options)
    for option, default in options.items():
        if default is _NO_DEFAULT:
            assert option in section.get("required", []), f"{option} has no default: required"
        else:
            expected = list(default) if isinstance(default, tuple) else default  # JSON has lists
            assert properties[option].get("default", _NO_DEFAULT) == expected, option
    assert section["additionalProperties"] is False


@pytest.mark.parametrize("name", sorted(MIDDLEWARE))
def test_yaml_entry_accepts_exactly_the_section(name: str) -> None:
    defs = schema()["$defs"]
    entry = defs[f"entry_{name}"]["properties"]
    assert set(entry) - {"use"} == set(defs[name]["properties"])
    assert name in schema()["$defs"]["middleware_entry"]["properties"]["use"]["enum"]


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(MIDDLEWARE))
async def test_first_call_lines_pass_through_lifespan(name: str) -> None:
    """Scopes a middleware does not handle (here lifespan) go straight through."""

    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    cls = load_middleware(name)
    required = {k: ["k"] for k, v in _constructor_options(cls).items() if v is _NO_DEFAULT}
    middleware = cls(inner, **required)

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        raise AssertionError("a middleware answered a lifespan scope itself")

    await middleware({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]


def test_every_schema_key_has_a_description() -> None:
    missing: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                if "description" not in sub and "$ref" not in sub:
                    missing.append(f"{path}.{key}")
            for key, sub in node.items():
                if key == "if":
                    continue  # a condition, not a place where keys are written
                walk(sub, f"{path}.{key}" if key != "properties" else path)
        elif isinstance(node, list):
            for index, sub in enumerate(node):
                walk(sub, f"{path}[{index}]")

    walk(schema(), "")
    assert not missing
