"""Schema errors as short located messages, and defaults filled through $ref and if/then."""

from __future__ import annotations

from typing import Any

import pytest

from lynkr.config.source import Path, parse_yaml
from lynkr.config.validate import apply_defaults, validate

SERVER: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "host": {"type": "string", "minLength": 1},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "ttl": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
        "access_log": {"type": "boolean"},
        "level": {"enum": ["debug", "info", "warning"]},
        "version": {"const": 1},
        "path": {"type": "string", "pattern": "^/"},
        "tags": {"type": "array", "minItems": 2, "maxItems": 3, "uniqueItems": True},
        "name": {"type": ["string", "null"], "maxLength": 3},
        "email": {"type": "string", "format": "email"},
        "headers": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z-]+$"},
            "additionalProperties": {"type": "string"},
        },
    },
}


def check(
    text: str, schema: dict[str, Any], secret_paths: frozenset[Path] = frozenset()
) -> list[str]:
    document, issues = parse_yaml(text, "lynkr.yaml")
    assert issues == []
    return [str(issue) for issue in validate(document, schema, secret_paths=secret_paths)]


def test_valid_data_has_no_issues() -> None:
    assert check("host: a\nport: 80\naccess_log: true\nlevel: info\n", SERVER) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("port: ten", "port: expected integer, got string 'ten'"),
        ("port: 1.5", "port: expected integer, got number 1.5"),
        ("port: '80'", "port: expected integer, got string '80'"),
        ("port: true", "port: expected integer, got boolean true"),
        ("host: [a]", "host: expected string, got list"),
        ("host: {a: 1}", "host: expected string, got mapping"),
        ("host:", "host: expected string, got null"),
        ("name: 3", "name: expected string or null, got integer 3"),
        ("tags: x", "tags: expected list, got string 'x'"),
    ],
)
def test_type_messages(line: str, message: str) -> None:
    column = line.index(":") + 3 if not line.endswith(":") else len(line) + 1
    assert check(line + "\n", SERVER) == [f"lynkr.yaml:1:{column}: {message}"]


@pytest.mark.parametrize("word", ["yes", "no", "on", "off", "y", "n", "Yes", "NO"])
def test_yaml_1_1_booleans_get_a_hint(word: str) -> None:
    assert check(f"access_log: {word}\n", SERVER) == [
        f"lynkr.yaml:1:13: access_log: expected boolean, got string '{word}'"
        " (lynkr reads YAML 1.2: write true or false)"
    ]


def test_other_strings_for_booleans_get_no_hint() -> None:
    assert check("access_log: enabled\n", SERVER) == [
        "lynkr.yaml:1:13: access_log: expected boolean, got string 'enabled'"
    ]


def test_unknown_key_is_located_at_the_key_with_a_suggestion() -> None:
    assert check("host: a\ntll: 3\nzzzzzz: 1\n", SERVER) == [
        "lynkr.yaml:2:1: unknown key 'tll' (did you mean 'ttl'?)",
        "lynkr.yaml:3:1: unknown key 'zzzzzz'",
    ]


def test_unknown_key_names_the_parent_mapping() -> None:
    schema = {"type": "object", "properties": {"server": SERVER}}
    assert check("server:\n  host: a\n  prot: 1\n", schema) == [
        "lynkr.yaml:3:3: server: unknown key 'prot' (did you mean 'port'?)"
    ]


def test_unknown_key_suggests_the_closest_of_several_close_names() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"timeout": {}, "timeouts": {}, "time": {}},
    }
    assert check("timeoutt: 1\n", schema) == [
        "lynkr.yaml:1:1: unknown key 'timeoutt' (did you mean 'timeout'?)"
    ]


def test_pattern_properties_are_not_unknown() -> None:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"a": {}},
        "patternProperties": {"^x-": {}},
    }
    assert check("a: 1\nx-extra: 2\nb: 3\n", schema) == ["lynkr.yaml:3:1: unknown key 'b'"]


def test_unevaluated_properties_are_unknown_keys() -> None:
    schema = {
        "type": "object",
        "allOf": [{"properties": {"model": {"type": "string"}}}],
        "unevaluatedProperties": False,
    }
    assert check("model: m\nmodle: n\n", schema) == ["lynkr.yaml:2:1: unknown key 'modle'"]


def test_missing_required_key_is_located_at_the_parent_key() -> None:
    schema = {
        "type": "object",
        "properties": {"provider": {"type": "object", "required": ["type", "model"]}},
        "required": ["version"],
    }
    assert check("# head\nprovider:\n  base_url: u\n", schema) == [
        "lynkr.yaml:2:1: missing required key 'version'",
        "lynkr.yaml:2:1: provider: missing required key 'model'",
        "lynkr.yaml:2:1: provider: missing required key 'type'",
    ]


def test_missing_required_key_in_a_list_item_is_located_at_the_item() -> None:
    schema = {"type": "array", "items": {"type": "object", "required": ["use"]}}
    schema = {"type": "object", "properties": {"middleware": schema}}
    assert check("middleware:\n  - {}\n  - use: x\n  - cache: 1\n", schema) == [
        "lynkr.yaml:2:5: middleware[0]: missing required key 'use'",
        "lynkr.yaml:4:5: middleware[2]: missing required key 'use'",
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "level: infoo",
            "level: expected one of 'debug', 'info', 'warning', got 'infoo' (did you mean 'info'?)",
        ),
        ("level: 3", "level: expected one of 'debug', 'info', 'warning', got 3"),
        ("level: zzz", "level: expected one of 'debug', 'info', 'warning', got 'zzz'"),
        ("version: 2", "version: expected 1, got 2"),
        ("port: 0", "port: must be at least 1, got 0"),
        ("port: 70000", "port: must be at most 65535, got 70000"),
        ("ttl: 0", "ttl: must be greater than 0, got 0"),
        ("ttl: 10", "ttl: must be less than 10, got 10"),
        ("host: ''", "host: must not be empty"),
        ("name: abcd", "name: must have at most 3 characters, got 'abcd'"),
        ("tags: [a]", "tags: must have at least 2 items, got 1"),
        ("tags: [a, b, c, d]", "tags: must have at most 3 items, got 4"),
        ("tags: [a, a]", "tags: must not list the same item twice"),
        ("path: v1", "path: expected a value matching '^/', got 'v1'"),
        ("email: nope", "email: expected a valid email, got 'nope'"),
    ],
)
def test_value_messages(line: str, message: str) -> None:
    column = line.index(":") + 3
    assert check(line + "\n", SERVER) == [f"lynkr.yaml:1:{column}: {message}"]


def test_const_string_gets_a_suggestion() -> None:
    schema = {"properties": {"use": {"const": "cache"}}}
    assert check("use: cahce\n", schema) == [
        "lynkr.yaml:1:6: use: expected 'cache', got 'cahce' (did you mean 'cache'?)"
    ]


def test_bad_property_name_is_located_at_the_key() -> None:
    assert check("headers:\n  x-ok: a\n  Bad_Name: b\n", SERVER) == [
        "lynkr.yaml:3:3: headers: bad name 'Bad_Name': expected a value matching '^[a-z-]+$'"
    ]


def test_other_keywords_keep_jsonschema_messages() -> None:
    schema = {"properties": {"n": {"multipleOf": 5}}}
    assert check("n: 7\n", schema) == ["lynkr.yaml:1:4: n: 7 is not a multiple of 5"]


def test_secret_values_are_never_quoted() -> None:
    secret = frozenset({("level",), ("port",)})
    assert check("level: infoo\nport: sk-ant-123\n", SERVER, secret) == [
        "lynkr.yaml:1:8: level: expected one of 'debug', 'info', 'warning',"
        " got <redacted: from the environment>",
        "lynkr.yaml:2:7: port: expected integer, got string <redacted: from the environment>",
    ]


def test_all_errors_are_reported_sorted_and_without_repeats() -> None:
    text = "tags: [a]\nport: ten\nhost: 3\nlevel: x\nbogus: 1\n"
    assert check(text, SERVER) == [
        "lynkr.yaml:1:7: tags: must have at least 2 items, got 1",
        "lynkr.yaml:2:7: port: expected integer, got string 'ten'",
        "lynkr.yaml:3:7: host: expected string, got integer 3",
        "lynkr.yaml:4:8: level: expected one of 'debug', 'info', 'warning', got 'x'",
        "lynkr.yaml:5:1: unknown key 'bogus'",
    ]


def _dispatch(tag: str, variants: dict[str, str]) -> dict[str, Any]:
    """The shape of the real schema: a base enum, then if/then per variant."""
    return {
        "type": "object",
        "required": [tag],
        "properties": {tag: {"enum": list(variants)}},
        "allOf": [
            {
                "if": {"properties": {tag: {"const": name}}, "required": [tag]},
                "then": {"$ref": f"#/$defs/{ref}"},
            }
            for name, ref in variants.items()
        ],
    }


DISPATCH: dict[str, Any] = {
    "type": "object",
    "properties": {
        "middleware": {
            "type": "array",
            "items": _dispatch("use", {"cache": "cache", "auth": "auth"}),
        }
    },
    "$defs": {
        "cache": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "use": {"const": "cache"},
                "ttl_seconds": {"type": "integer", "default": 300},
                "store": {"type": "object", "default": {}, "properties": {"max": {"default": 10}}},
            },
        },
        "auth": {
            "type": "object",
            "additionalProperties": False,
            "required": ["keys"],
            "properties": {
                "use": {"const": "auth"},
                "keys": {"type": "array", "items": {"type": "string"}},
                "header": {"type": "string", "default": "x-api-key"},
            },
        },
    },
}


def test_errors_inside_an_if_then_variant_are_ordinary_located_errors() -> None:
    text = (
        "middleware:\n"
        "  - use: cache\n"
        "    ttl_seconds: ten\n"
        "    tll_seconds: 3\n"
        "  - use: auth\n"
        "  - use: cahce\n"
    )
    assert check(text, DISPATCH) == [
        "lynkr.yaml:3:18: middleware[0].ttl_seconds: expected integer, got string 'ten'",
        "lynkr.yaml:4:5: middleware[0]: unknown key 'tll_seconds' (did you mean 'ttl_seconds'?)",
        "lynkr.yaml:5:5: middleware[1]: missing required key 'keys'",
        "lynkr.yaml:6:10: middleware[2].use: expected one of 'cache', 'auth', got 'cahce'"
        " (did you mean 'cache'?)",
    ]


def test_one_of_reports_the_closest_branch_not_a_summary() -> None:
    schema = {
        "properties": {
            "timeout": {
                "oneOf": [
                    {"type": "number", "minimum": 1},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"read": {"type": "number"}},
                    },
                ]
            }
        }
    }
    assert check("timeout:\n  raed: 5\n", schema) == [
        "lynkr.yaml:2:3: timeout: unknown key 'raed' (did you mean 'read'?)"
    ]
    assert check("timeout: 0\n", schema) == ["lynkr.yaml:1:10: timeout: must be at least 1, got 0"]


def test_any_of_reports_a_branch_even_when_branches_tie() -> None:
    schema = {"properties": {"x": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}}}
    [issue] = check("x: s\n", schema)
    assert issue.startswith("lynkr.yaml:1:4: x: expected ")
    assert "is not valid under any of the given schemas" not in issue


def test_apply_defaults_through_ref_and_if_then() -> None:
    data = {
        "middleware": [
            {"use": "cache"},
            {"use": "auth", "keys": ["k"]},
            {"use": "cache", "ttl_seconds": 5},
        ]
    }
    assert apply_defaults(data, DISPATCH) == {
        "middleware": [
            {"use": "cache", "ttl_seconds": 300, "store": {"max": 10}},
            {"use": "auth", "keys": ["k"], "header": "x-api-key"},
            {"use": "cache", "ttl_seconds": 5, "store": {"max": 10}},
        ]
    }
    assert data["middleware"][0] == {"use": "cache"}  # the input is left alone


def test_apply_defaults_copies_defaults_and_follows_additional_properties() -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "server": {"type": "object", "default": {}, "properties": {"port": {"default": 8080}}},
            "pools": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"fallback": {"type": "array", "default": []}},
                },
            },
            "present": {"default": "unused"},
        },
    }
    result = apply_defaults({"pools": {"a": {}, "b": {"fallback": ["x"]}}, "present": None}, schema)
    assert result == {
        "pools": {"a": {"fallback": []}, "b": {"fallback": ["x"]}},
        "present": None,
        "server": {"port": 8080},
    }
    result["pools"]["a"]["fallback"].append("y")
    assert (
        schema["properties"]["pools"]["additionalProperties"]["properties"]["fallback"]["default"]
        == []
    )


def test_apply_defaults_uses_else_and_ignores_unmatched_branches() -> None:
    schema = {
        "type": "object",
        "if": {"properties": {"kind": {"const": "a"}}},
        "then": {"properties": {"x": {"default": "from-then"}}},
        "else": {"properties": {"y": {"default": "from-else"}}},
    }
    assert apply_defaults({"kind": "a"}, schema) == {"kind": "a", "x": "from-then"}
    assert apply_defaults({"kind": "b"}, schema) == {"kind": "b", "y": "from-else"}


def test_apply_defaults_resolves_refs_inside_if() -> None:
    schema = {
        "$defs": {"is_cache": {"properties": {"use": {"const": "cache"}}}},
        "if": {"$ref": "#/$defs/is_cache"},
        "then": {"properties": {"ttl": {"default": 1}}},
    }
    assert apply_defaults({"use": "cache"}, schema) == {"use": "cache", "ttl": 1}
    assert apply_defaults({"use": "auth"}, schema) == {"use": "auth"}


def test_apply_defaults_rejects_remote_refs() -> None:
    with pytest.raises(ValueError, match="only local"):
        apply_defaults({}, {"$ref": "https://example.com/s.json"})
