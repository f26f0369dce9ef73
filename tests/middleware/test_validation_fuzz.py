"""Fuzz ValidationMiddleware: random JSON and random mutations of a real Claude Code body.

Whatever arrives, the client never sees a 500, every 4xx is an Anthropic
error body, a 200 carries the client's exact bytes, and jsonschema-rs
agrees with the reference Draft 2020-12 validator (`jsonschema`): the same bodies
pass, and the problem a refused body is told is one the reference finds too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, ValidationError

from lynkr.asgi import Message, Receive, Scope, Send, read_body, send_json
from lynkr.middleware.validation import ValidationMiddleware, _expectation, _format_path, _shape

from .test_validation import claude_code_body

SETTINGS = settings(max_examples=150, deadline=None, database=None)
BASE_RAW = orjson.dumps(claude_code_body())
MESSAGES = _shape("messages_request")
REFERENCE = Draft202012Validator(MESSAGES.document)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
BLOCK_TYPES = ["text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking"]
BLOCK_TYPES += ["document", "server_tool_use", "web_search_tool_result", "search_result", "x"]
JUNK_BLOCK = st.dictionaries(
    st.sampled_from(["text", "id", "name", "input", "source", "content", "tool_use_id", "data"]),
    JSON,
    max_size=4,
).flatmap(lambda fields: st.sampled_from(BLOCK_TYPES).map(lambda kind: {**fields, "type": kind}))
TOP_KEYS = ["model", "messages", "max_tokens", "system", "tools", "tool_choice", "thinking"]
REQUEST_LIKE = st.dictionaries(st.sampled_from(TOP_KEYS) | st.text(max_size=4), JSON, max_size=6)


async def _inner(scope: Scope, receive: Receive, send: Send) -> None:
    await send_json(send, 200, await read_body(scope, receive))


APP = ValidationMiddleware(_inner)


def post(raw: bytes, path: str = "/v1/messages") -> tuple[int, bytes]:
    """The status and body lynkr answers to a POST of `raw`."""
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    asyncio.run(APP(scope, receive, send))
    return sent[0]["status"], sent[1]["body"]


def check_answer(raw: bytes, path: str = "/v1/messages") -> tuple[int, str | None]:
    """Post `raw`; assert the answer is a 200 echoing it or an Anthropic 4xx.

    Returns the status and, for a 4xx, the error message.
    """
    status, body = post(raw, path)
    assert status in {200, 400}, (status, body)
    if status == 200:
        assert body == raw
        return status, None
    error = orjson.loads(body)
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert isinstance(error["error"]["message"], str) and error["error"]["message"]
    assert error["request_id"].startswith("req_")
    return status, error["error"]["message"]


def reference_wording(error: ValidationError) -> str:
    """A `jsonschema` error in the words `describe_error` gives a jsonschema-rs one."""
    where = _format_path(error.absolute_path)
    keyword, expected, value = str(error.validator), error.validator_value, error.instance
    if keyword == "required":
        missing = next(name for name in expected if name not in value)
        return f"{where}.{missing}".removeprefix(".") + ": required"
    return f"{where or 'body'}: {_expectation(keyword, expected, value, error.message)}"


def check_body(body: Any) -> None:
    """Through the middleware, against the reference validator."""
    raw = orjson.dumps(body)
    status, message = check_answer(raw)
    body = orjson.loads(raw)  # what the middleware saw
    if isinstance(body, dict):
        valid = REFERENCE.is_valid(body)
        assert (status == 200) is valid
        assert MESSAGES.validator.is_valid(body) is valid, body
        if not valid:
            assert message in {reference_wording(e) for e in REFERENCE.iter_errors(body)}, body


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `node`, as tuples of keys and indexes."""
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    found = []
    for key, child in children:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


def mutate(data: st.DataObject) -> Any:
    """The Claude Code body with 1–3 keys deleted, values replaced or junk blocks inserted.

    Drawn step by step (not as one strategy) so a failure prints the small edits, not 80 KB.
    """
    body = orjson.loads(BASE_RAW)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(body) or [("model",)]))
        parent, key = _at(body, path[:-1]), path[-1]
        action = data.draw(st.sampled_from(["delete", "replace", "insert"]))
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = data.draw(JSON | JUNK_BLOCK)
        elif isinstance(parent, list):
            parent.insert(key, data.draw(JUNK_BLOCK))
        else:
            parent[key] = [data.draw(JUNK_BLOCK)]
    return body


@SETTINGS
@given(JSON)
def test_any_json_value_gets_a_clean_answer(value: Any) -> None:
    check_body(value)


@SETTINGS
@given(REQUEST_LIKE)
def test_request_like_objects_get_a_clean_answer(value: dict[str, Any]) -> None:
    check_body(value)


@SETTINGS
@given(st.data())
def test_mutated_claude_code_bodies_get_a_clean_answer(data: st.DataObject) -> None:
    check_body(mutate(data))


@settings(max_examples=60, deadline=None, database=None)
@given(
    st.integers(0, len(BASE_RAW) - 1),
    st.sampled_from(["/v1/messages", "/v1/messages/count_tokens"]),
)
def test_truncated_bodies_are_a_400(cut: int, path: str) -> None:
    assert check_answer(BASE_RAW[:cut], path)[0] == 400


@settings(max_examples=60, deadline=None, database=None)
@given(st.binary(max_size=64))
def test_random_bytes_get_a_clean_answer(raw: bytes) -> None:
    check_answer(raw)
