"""ValidationMiddleware: every shape Claude Code sends passes; broken ones get path-named 400s.

Bodies are built from a real Claude Code request (data/claude-code-request-sample.json,
a sanitized recording), restored to its full size.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

from lynkr.asgi import Message, get_context
from lynkr.middleware.validation import (
    _EXPECTATIONS,
    ValidationMiddleware,
    load_request_schema,
)

SAMPLE = orjson.loads(
    (Path(__file__).parent / "data" / "claude-code-request-sample.json").read_bytes()
)
GOOD = {"model": "claude-x", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
PNG = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}


def claude_code_body() -> dict[str, Any]:
    """Request 2 of the recorded tool round trip (docs/protocol.md A.7) at its real size (~80 KB).

    The sample lists its 24 tools by name and shows only Bash: every tool is
    restored as a copy of Bash, Workflow with its 18.8k-character description,
    and the truncated prompts get their recorded lengths back (A.4, A.6.1).
    """
    body = copy.deepcopy(SAMPLE["body"])
    bash = body.pop("_tool_example_Bash")
    names = body["tools"][0].split(": ", 1)[1].rstrip(">").split(", ")
    body["tools"] = [
        {
            **copy.deepcopy(bash),
            "name": name,
            "description": "d" * (18_800 if name == "Workflow" else 1_200),
        }
        for name in names
    ]
    body["system"][2]["text"] = "p" * 5_700
    body["messages"][1]["content"] = "a" * 6_062
    return body


def with_messages(*messages: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The full Claude Code body with other messages (and top-level fields)."""
    return {**claude_code_body(), "messages": list(messages), **fields}


def client(app: Any, **options: Any) -> TestClient:
    return TestClient(ValidationMiddleware(app, **options))


def user(*content: Any) -> dict[str, Any]:
    return {"role": "user", "content": list(content)}


def assistant(*content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": list(content)}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(id_: str, name: str = "Bash", **input_: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": id_, "name": name, "input": input_}


def _sample_messages() -> list[dict[str, Any]]:
    return copy.deepcopy(SAMPLE["body"]["messages"])


FIRST, SYSTEM, _, _ = _sample_messages()

# Every shape docs/protocol.md A.4–A.8 records; each must reach the inner app.
CLAUDE_CODE_SHAPES: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "first request [user, system] (A.7.1)": (
        "/v1/messages",
        lambda: with_messages(FIRST, SYSTEM),
    ),
    "tool round trip, request 2 (A.7.4)": ("/v1/messages", claude_code_body),
    "parallel tool results in completion order, an image, errors (A.6.5, A.6.6)": (
        "/v1/messages",
        lambda: with_messages(
            FIRST,
            SYSTEM,
            assistant(
                text("Two at once."),
                tool_use("toolu_A", command="ls"),
                tool_use("toolu_B", "Read", file_path="/x.png"),
            ),
            user(
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_B",
                    "content": [{"type": "image", "source": PNG}],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_A",
                    "content": "Exit code 1\ncat: x: No such file",
                    "is_error": True,
                },
                {"type": "tool_result", "tool_use_id": "toolu_C", "content": "file text"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_D",
                    "content": [text("a"), text("b")],
                    "cache_control": {"type": "ephemeral"},
                },
            ),
        ),
    ),
    "thinking + redacted_thinking replayed, empty signature (A.6.7)": (
        "/v1/messages",
        lambda: with_messages(
            FIRST,
            assistant(
                {"type": "thinking", "thinking": "Let me look.", "signature": ""},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
                text("I'll run a command."),
                tool_use("toolu_1", command="ls"),
            ),
            user({"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}),
        ),
    ),
    "empty text blocks replayed (A.6.7)": (
        "/v1/messages",
        lambda: with_messages(FIRST, assistant(text(""), text("done")), user(text(""))),
    ),
    "__unparsedToolInput with its error tool_result (A.6.8)": (
        "/v1/messages",
        lambda: with_messages(
            FIRST,
            assistant(
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "Bash",
                    "input": {"__unparsedToolInput": {"raw": '{"command": "ls', "len": 15}},
                },
            ),
            user(
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": "<tool_use_error>InputValidationError: not JSON</tool_use_error>",
                    "is_error": True,
                }
            ),
        ),
    ),
    "mid-conversation system, same-role runs, mixed content forms (A.6.1–A.6.4)": (
        "/v1/messages",
        lambda: with_messages(
            {"role": "user", "content": "<system-reminder>Called the Read tool</system-reminder>"},
            user({"type": "image", "source": PNG}, text("what is this?"), text("and this?")),
            SYSTEM,
            assistant(text("An image.")),
            {"role": "user", "content": "Thanks"},
        ),
    ),
    "session title: tools [], thinking disabled, output_config.format (A.8)": (
        "/v1/messages",
        lambda: {
            "model": "claude-opus-4-8",
            "messages": [{"role": "user", "content": "show me hello.txt"}],
            "system": [text("Generate a concise, sentence-case title")],
            "tools": [],
            "metadata": {"user_id": '{"device_id":"ab","account_uuid":"","session_id":"u"}'},
            "max_tokens": 32000,
            "thinking": {"type": "disabled"},
            "output_config": {
                "effort": "high",
                "format": {
                    "type": "json_schema",
                    "schema": {
                        "type": "object",
                        "properties": {"title": {"type": "string"}},
                        "required": ["title"],
                        "additionalProperties": False,
                    },
                },
            },
            "stream": True,
        },
    ),
    "WebSearch sub-request: server tool, tool_choice (A.8)": (
        "/v1/messages",
        lambda: {
            "model": "claude-opus-4-8",
            "messages": [{"role": "user", "content": "Perform a web search for the query: lynkr"}],
            "system": [text("You are an assistant for performing a web search tool use")],
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 8}],
            "tool_choice": {"type": "tool", "name": "web_search"},
            "max_tokens": 32000,
            "stream": True,
        },
    ),
    "server tool blocks replayed (B.1)": (
        "/v1/messages",
        lambda: with_messages(
            FIRST,
            assistant(
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "input": {"query": "q"},
                },
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": "srvtoolu_1",
                    "content": [
                        {
                            "type": "web_search_result",
                            "url": "u",
                            "title": "t",
                            "encrypted_content": "e",
                        }
                    ],
                },
                text("Found it."),
            ),
            user(text("thanks")),
        ),
    ),
    "older model names: thinking enabled with budget, no output_config (A.5)": (
        "/v1/messages",
        lambda: {
            k: v
            for k, v in with_messages(
                FIRST, thinking={"type": "enabled", "budget_tokens": 31999}, max_tokens=32000
            ).items()
            if k != "output_config"
        },
    ),
    "claude-3-5-haiku: no thinking, no context_management (A.5)": (
        "/v1/messages",
        lambda: {
            k: v
            for k, v in with_messages(FIRST, max_tokens=8192).items()
            if k not in {"thinking", "output_config", "context_management"}
        },
    ),
    "non-streaming fallback: no stream key (A.9)": (
        "/v1/messages?beta=true",
        lambda: {k: v for k, v in claude_code_body().items() if k != "stream"},
    ),
    "unknown future fields and block types": (
        "/v1/messages",
        lambda: with_messages(
            user(text("hi"), {"type": "hologram_20300101", "payload": {"any": ["thing"]}}),
            future_field={"nested": True},
            container=None,
        ),
    ),
    "count_tokens: {model, messages, tools}, no system (A.2)": (
        "/v1/messages/count_tokens?beta=true",
        lambda: {
            "model": "claude-opus-4-8",
            "messages": [{"role": "user", "content": "foo"}],
            "tools": claude_code_body()["tools"],
        },
    ),
}


@pytest.mark.parametrize("name", CLAUDE_CODE_SHAPES)
def test_every_claude_code_shape_reaches_the_app_untouched(echo: Any, name: str) -> None:
    path, build = CLAUDE_CODE_SHAPES[name]
    raw = orjson.dumps(build())
    response = client(echo).post(path, content=raw)
    assert response.status_code == 200, response.text
    assert response.json()["body"] == raw.decode()


def test_the_inner_app_gets_the_exact_original_bytes(echo: Any) -> None:
    raw = b'{ "model" : "claude-x",\n"max_tokens":10, '
    raw += b'"messages":[{"content":"h\\u00e9","role":"user"}] }'
    response = client(echo).post("/v1/messages", content=raw)
    assert response.status_code == 200
    assert response.json() == {
        "body": raw.decode(),
        "parsed": True,
        "pool": None,
        "route_reason": None,
    }


def _broken(mutate: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    body = claude_code_body()
    mutate(body)
    return body


# (mutation of the full Claude Code body, the exact message the client reads)
BROKEN: dict[str, tuple[Callable[[dict[str, Any]], Any], str]] = {
    "tool_result without tool_use_id": (
        lambda b: b["messages"][3]["content"][0].pop("tool_use_id"),
        "messages[3].content[0].tool_use_id: required",
    ),
    "max_tokens as a string": (
        lambda b: b.update(max_tokens="64000"),
        "max_tokens: expected integer, got string '64000'",
    ),
    "max_tokens zero": (
        lambda b: b.update(max_tokens=0),
        "max_tokens: expected a number ≥ 1, got 0",
    ),
    "unknown role": (
        lambda b: b["messages"][0].update(role="bot"),
        "messages[0].role: expected one of 'user', 'assistant', 'system', got 'bot'",
    ),
    "no model": (lambda b: b.pop("model"), "model: required"),
    "no messages": (lambda b: b.pop("messages"), "messages: required"),
    "empty messages": (
        lambda b: b.update(messages=[]),
        "messages: expected at least 1 item, got an empty array",
    ),
    "message without content": (
        lambda b: b["messages"][1].pop("content"),
        "messages[1].content: required",
    ),
    "content a number": (
        lambda b: b["messages"][0].update(content=5),
        "messages[0].content: expected string or array, got integer 5",
    ),
    "block without type": (
        lambda b: b["messages"][0]["content"][1].pop("type"),
        "messages[0].content[1].type: required",
    ),
    "tool_use without input": (
        lambda b: b["messages"][2]["content"][1].pop("input"),
        "messages[2].content[1].input: required",
    ),
    "tool_use input a string": (
        lambda b: b["messages"][2]["content"][1].update(input='{"command": "ls"}'),
        'messages[2].content[1].input: expected object, got string \'{"command": "ls"}\'',
    ),
    "image without source": (
        lambda b: b["messages"][0]["content"].append({"type": "image"}),
        "messages[0].content[2].source: required",
    ),
    "image of an unknown media type": (
        lambda b: b["messages"][0]["content"].append(
            {"type": "image", "source": {**PNG, "media_type": "image/bmp"}}
        ),
        "messages[0].content[2].source.media_type: expected one of 'image/jpeg', 'image/png', "
        "'image/gif', 'image/webp', got 'image/bmp'",
    ),
    "text block without text": (
        lambda b: b["system"][0].pop("text"),
        "system[0].text: required",
    ),
    "client tool without input_schema": (
        lambda b: b["tools"][3].pop("input_schema"),
        "tools[3].input_schema: required",
    ),
    "tool without name": (lambda b: b["tools"][0].pop("name"), "tools[0].name: required"),
    "thinking enabled without a budget": (
        lambda b: b.update(thinking={"type": "enabled"}),
        "thinking.budget_tokens: required",
    ),
    "unknown thinking type": (
        lambda b: b.update(thinking={"type": "on"}),
        "thinking.type: expected one of 'enabled', 'disabled', 'adaptive', got 'on'",
    ),
    "tool_choice tool without a name": (
        lambda b: b.update(tool_choice={"type": "tool"}),
        "tool_choice.name: required",
    ),
    "system an object": (
        lambda b: b.update(system={"text": "x"}),
        "system: expected string or array, got object",
    ),
    "stream a string": (
        lambda b: b.update(stream="yes"),
        "stream: expected boolean, got string 'yes'",
    ),
    "cache_control of an unknown type": (
        lambda b: b["system"][1].update(cache_control={"type": "forever"}),
        "system[1].cache_control.type: expected one of 'ephemeral', got 'forever'",
    ),
    "metadata.user_id an object": (
        lambda b: b["metadata"].update(user_id={"device_id": "x"}),
        "metadata.user_id: expected string or null, got object",
    ),
}


@pytest.mark.parametrize("name", BROKEN)
def test_broken_request_gets_a_400_naming_the_path(echo: Any, name: str) -> None:
    mutate, message = BROKEN[name]
    response = client(echo).post("/v1/messages", content=orjson.dumps(_broken(mutate)))
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"] == {"type": "invalid_request_error", "message": message}
    assert body["request_id"] == response.headers["request-id"]


def test_a_long_bad_value_is_quoted_cut_short(echo: Any) -> None:
    body = {**GOOD, "max_tokens": "x" * 500}
    message = client(echo).post("/v1/messages", json=body).json()["error"]["message"]
    assert message == f"max_tokens: expected integer, got string '{'x' * 40}…'"


def test_count_tokens_needs_no_max_tokens_but_a_model(echo: Any) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "foo"}]}
    assert client(echo).post("/v1/messages/count_tokens", json=body).status_code == 200
    assert (
        client(echo).post("/v1/messages", json=body).json()["error"]["message"]
        == "max_tokens: required"
    )
    response = client(echo).post("/v1/messages/count_tokens", json={"messages": body["messages"]})
    assert response.json()["error"]["message"] == "model: required"


def test_invalid_json_is_400_saying_so(echo: Any) -> None:
    response = client(echo).post("/v1/messages", content=b"{not json")
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in body["error"]["message"]


def test_a_json_array_is_not_a_request(echo: Any) -> None:
    response = client(echo).post("/v1/messages", content=b"[1, 2]")
    assert response.status_code == 400
    assert "must be a JSON object, got list" in response.json()["error"]["message"]


def _nested_tool_results(depth: int, leaf: bytes) -> bytes:
    block = b'{"type":"tool_result","tool_use_id":"t","content":[' * depth + leaf + b"]}" * depth
    return b'{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[' + block + b"]}]}"


def test_a_deep_valid_body_passes(echo: Any) -> None:
    raw = _nested_tool_results(120, b'{"type":"text","text":"leaf"}')  # 245 JSON levels
    assert client(echo).post("/v1/messages", content=raw).status_code == 200


def test_a_valid_body_too_deep_to_serialise_again_is_a_400(echo: Any) -> None:
    """orjson parses 1024 levels but writes only 254: past that the cache key, a translation
    or a changed body could not be written again, so the request is refused up front."""
    raw = _nested_tool_results(480, b'{"type":"text","text":"leaf"}')
    response = client(echo).post("/v1/messages", content=raw)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]


def test_a_deep_broken_body_is_named(echo: Any) -> None:
    """~200 JSON levels (jsonschema could not recurse past ~60 to name the error)."""
    raw = _nested_tool_results(100, b'{"type":"text"}')
    response = client(echo).post("/v1/messages", content=raw)
    assert response.status_code == 400
    assert (
        response.json()["error"]["message"]
        == "messages[0]" + ".content[0]" * 101 + ".text: required"
    )


def test_a_body_too_deep_to_check_is_a_400(echo: Any) -> None:
    opening = b'{"type":"document","source":{"type":"content","content":['
    block = opening * 335 + b'{"type":"text","text":"x"}' + b"]}}" * 335
    raw = b'{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[' + block + b"]}]}"
    response = client(echo).post("/v1/messages", content=raw)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]


def test_a_large_broken_body_is_explained_like_a_small_one(echo: Any) -> None:
    body = claude_code_body()
    body["messages"][1]["content"] = "a" * 300_000
    del body["messages"][3]["content"][0]["tool_use_id"]
    response = client(echo).post("/v1/messages", content=orjson.dumps(body))
    assert response.json()["error"]["message"] == "messages[3].content[0].tool_use_id: required"


def test_a_body_with_many_problems_is_told_the_first(echo: Any) -> None:
    """Not the most relevant of all: finding every error costs ~15 µs each (module docstring)."""
    body = {**GOOD, "messages": [{"role": "user", "content": [1] * 10_000}]}
    response = client(echo).post("/v1/messages", json=body)
    assert response.json()["error"]["message"] == (
        "messages[0].content[0]: expected object, got integer 1"
    )


def test_count_tokens_errors_are_worded_from_its_own_definition(echo: Any) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": 5}]}
    response = client(echo).post("/v1/messages/count_tokens", json=body)
    assert response.json()["error"]["message"] == (
        "messages[0].content: expected string or array, got integer 5"
    )


def test_body_over_the_limit_is_413_before_the_app(echo: Any) -> None:
    response = client(echo, max_body_bytes=50).post("/v1/messages", json=GOOD)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"
    assert "50 bytes" in response.json()["error"]["message"]


async def _call(
    app: Any, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[list[Message], int]:
    """Drive `app` with a POST whose body arrives in `chunks`; the messages sent and chunks read."""
    sent: list[Message] = []
    read = 0

    async def receive() -> Message:
        nonlocal read
        read += 1
        return {"type": "http.request", "body": chunks[read - 1], "more_body": read < len(chunks)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": headers}
    await app(scope, receive, send)
    return sent, read


@pytest.mark.anyio
async def test_declared_oversize_is_refused_without_reading_the_body(echo: Any) -> None:
    middleware = ValidationMiddleware(echo, max_body_bytes=100)
    sent, read = await _call(middleware, [(b"content-length", b"5000")], [b"x" * 1000] * 5)
    assert sent[0]["status"] == 413
    assert read == 0


@pytest.mark.anyio
async def test_streamed_oversize_stops_reading_at_the_limit(echo: Any) -> None:
    middleware = ValidationMiddleware(echo, max_body_bytes=100)
    sent, read = await _call(middleware, [], [b"x" * 60] * 10)
    assert sent[0]["status"] == 413
    assert read == 2


def test_the_parsed_body_is_left_in_the_context(echo: Any) -> None:
    seen: dict[str, Any] = {}

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen["body"] = get_context(scope).body
        await echo(scope, receive, send)

    body = claude_code_body()
    assert client(inner).post("/v1/messages", content=orjson.dumps(body)).status_code == 200
    assert seen["body"] == body


def test_validate_schema_false_keeps_the_limit_and_the_parse(echo: Any) -> None:
    loose = client(echo, validate_schema=False)
    assert loose.post("/v1/chat/completions", json={"messages": "anything"}).status_code == 200
    assert loose.post("/v1/chat/completions", content=b"{oops").status_code == 400


def test_get_requests_pass_untouched(echo: Any) -> None:
    response = client(echo).get("/v1/models")
    assert response.status_code == 200
    assert response.json()["parsed"] is False


def test_constructor_refuses_a_bad_limit(echo: Any) -> None:
    with pytest.raises(ValueError, match="max_body_bytes must be a positive integer, got 0"):
        ValidationMiddleware(echo, max_body_bytes=0)


# --------------------------------------------------------------------------- the schema itself


def test_the_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(load_request_schema())


def test_every_schema_key_has_a_description() -> None:
    missing: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                if "description" not in sub and "$ref" not in sub:
                    missing.append(f"{path}.{key}")
            for key, sub in node.items():
                if key != "if":  # a condition, not a place where keys are written
                    walk(sub, f"{path}.{key}")
        elif isinstance(node, list):
            for index, sub in enumerate(node):
                walk(sub, f"{path}[{index}]")

    walk(load_request_schema(), "")
    assert not missing


def test_every_keyword_the_schema_checks_has_its_own_wording() -> None:
    """`describe_error` words each assertion keyword the schema uses (no jsonschema fallback)."""
    structural = {"$schema", "$ref", "$defs", "title", "description", "properties", "items"}
    structural |= {"allOf", "if", "then", "else"}
    used: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            used.update(node)
            for key, sub in node.items():
                named_schemas = key in {"properties", "$defs"}
                for child in sub.values() if named_schemas else [sub]:
                    walk(child)
        elif isinstance(node, list):
            for sub in node:
                walk(sub)

    walk(load_request_schema())
    assert used - structural <= {"required", "type", *_EXPECTATIONS}
