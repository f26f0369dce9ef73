"""PolicyMiddleware around a two-line app: 403s, rewrites seen downstream, tool_use checks."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from lynkr.asgi import Receive, Scope, Send, send_json
from lynkr.middleware.policy import PolicyMiddleware
from lynkr.policy import Policy
from lynkr.protocol import SSEDecoder, encode_event

BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 32000,
    "thinking": {"type": "enabled", "budget_tokens": 31999},
    "tools": [
        {"name": "Bash", "input_schema": {"type": "object"}},
        {"name": "WebFetch", "input_schema": {"type": "object"}},
        {"name": "Read", "input_schema": {"type": "object"}},
    ],
    "messages": [{"role": "user", "content": "hi"}],
}


def client(echo: Any, **options: Any) -> TestClient:
    return TestClient(PolicyMiddleware(echo, **options))


def test_denied_model_is_a_403_naming_the_rule(echo: Any) -> None:
    policy = {"name": "team", "request": {"allow_models": ["claude-*haiku*"]}}
    response = client(echo, policy=policy).post("/v1/messages", json=BODY)
    assert response.status_code == 403
    assert response.json()["error"] == {
        "type": "permission_error",
        "message": "Request refused by lynkr policy 'team': model 'claude-sonnet-4-5' is not "
        "in request.allow_models (claude-*haiku*); use one of those "
        "(rule request.allow_models)",
    }
    assert response.headers["request-id"].startswith("req_lynkr_")


@pytest.mark.parametrize(
    ("rules", "rule"),
    [
        ({"deny_models": ["*sonnet*"]}, "request.deny_models"),
        ({"max_tools": 2}, "request.max_tools"),
        ({"deny_tools": ["shell"]}, "request.deny_tools"),  # canonical name of Bash
        ({"allow_tools": ["Read", "Bash"]}, "request.allow_tools"),
        ({"thinking": "deny"}, "request.thinking"),
        ({"max_request_tokens": 10}, "request.max_request_tokens"),
    ],
)
def test_request_rules_deny(echo: Any, rules: dict[str, Any], rule: str) -> None:
    response = client(echo, policy={"request": rules}).post("/v1/messages", json=BODY)
    assert response.status_code == 403
    assert response.json()["error"]["message"].endswith(f"(rule {rule})")


def test_require_thinking(echo: Any) -> None:
    app = client(echo, policy={"request": {"thinking": "require"}})
    without = {k: v for k, v in BODY.items() if k != "thinking"}
    assert app.post("/v1/messages", json=without).status_code == 403
    assert app.post("/v1/messages", json=BODY).status_code == 200


def test_rewrites_reach_the_app_and_are_logged(echo: Any) -> None:
    policy = Policy.from_data(
        {"request": {"strip_tools": ["web.*"], "max_tokens": 8192, "max_tools": 2}}
    )
    with capture_logs() as logs:
        response = client(echo, policy=policy).post("/v1/messages", json=BODY)
    assert response.status_code == 200
    seen = orjson.loads(response.json()["body"])
    assert [t["name"] for t in seen["tools"]] == ["Bash", "Read"]
    assert seen["max_tokens"] == 8192
    assert seen["thinking"] == {"type": "enabled", "budget_tokens": 8191}
    assert [(e["event"], e["rule"], e["detail"]) for e in logs] == [
        ("policy.rewrite", "request.strip_tools", "removed tools WebFetch"),
        ("policy.rewrite", "request.max_tokens", "max_tokens 32000 → 8192"),
        ("policy.rewrite", "request.max_tokens", "thinking.budget_tokens 31999 → 8191"),
    ]


def test_thinking_strip_and_a_tiny_clamp(echo: Any) -> None:
    body = {**BODY, "context_management": {"edits": [{"type": "clear_thinking_20251015"}]}}
    stripped = client(echo, policy={"request": {"thinking": "strip"}}).post(
        "/v1/messages", json=body
    )
    seen = orjson.loads(stripped.json()["body"])
    assert "thinking" not in seen and "context_management" not in seen
    tiny = client(echo, policy={"request": {"max_tokens": 1000}}).post("/v1/messages", json=BODY)
    assert "thinking" not in orjson.loads(tiny.json()["body"])


def test_without_request_rules_the_body_is_not_even_parsed(echo: Any) -> None:
    raw = b'{"model": "m",  "messages": []}'
    response = client(echo, policy=None).post("/v1/messages", content=raw)
    assert response.json() == {
        "body": raw.decode(),
        "parsed": False,
        "pool": None,
        "route_reason": None,
    }


def test_untouched_bodies_pass_byte_for_byte(echo: Any) -> None:
    raw = b'{"model": "m",  "max_tokens": 5, "messages": []}'
    response = client(echo, policy={"request": {"max_tokens": 10}}).post(
        "/v1/messages", content=raw
    )
    assert response.json()["body"] == raw.decode()


def test_a_broken_body_is_a_400(echo: Any) -> None:
    response = client(echo, policy={"request": {"max_tokens": 10}}).post(
        "/v1/messages", content=b"{nope"
    )
    assert response.status_code == 400


def test_a_file_name_is_refused_with_the_fix(echo: Any) -> None:
    with pytest.raises(ValueError, match="pass the loaded policy"):
        PolicyMiddleware(echo, policy="policies/strict.yaml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"shell\.default"):
        PolicyMiddleware(echo, policy={"shell": {"default": "perhaps"}})


# responses ---------------------------------------------------------------------------------

ANSWER: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [
        {"type": "text", "text": "Cleaning up."},
        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls; rm -rf /"}},
    ],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 1, "output_tokens": 1},
}


def answering(payload: dict[str, Any]) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, orjson.dumps(payload))

    return app


def test_a_denied_tool_use_becomes_text_and_the_turn_ends() -> None:
    app = PolicyMiddleware(answering(ANSWER), enforce_on_responses=True)
    response = TestClient(app).post("/v1/messages", json=BODY)
    message = response.json()
    assert message["stop_reason"] == "end_turn"
    assert message["content"][0] == ANSWER["content"][0]
    assert message["content"][1]["type"] == "text"
    assert message["content"][1]["text"].startswith(
        "[lynkr] The tool call Bash refused by lynkr policy: `rm` matches shell.builtin_deny"
    )
    assert int(response.headers["content-length"]) == len(response.content)


def test_allowed_tool_uses_pass_unchanged() -> None:
    mixed = {**ANSWER, "content": [*ANSWER["content"]]}
    mixed["content"].append(
        {"type": "tool_use", "id": "t2", "name": "Read", "input": {"file_path": "a.py"}}
    )
    app = PolicyMiddleware(answering(mixed), enforce_on_responses=True)
    message = TestClient(app).post("/v1/messages", json=BODY).json()
    assert message["stop_reason"] == "tool_use"  # Read still has to run
    assert message["content"][2] == mixed["content"][2]
    clean = {**ANSWER, "content": [mixed["content"][2]]}
    raw = orjson.dumps(clean)
    app = PolicyMiddleware(answering(clean), enforce_on_responses=True)
    assert TestClient(app).post("/v1/messages", json=BODY).content == raw


def test_workspace_root_confines_client_paths(tmp_path: Any) -> None:
    answer = {**ANSWER, "content": [
        {"type": "tool_use", "id": "t", "name": "Write", "input": {"file_path": "/etc/x"}},
    ]}  # fmt: skip
    app = PolicyMiddleware(
        answering(answer), enforce_on_responses=True, workspace_root=str(tmp_path)
    )
    text = TestClient(app).post("/v1/messages", json=BODY).json()["content"][0]["text"]
    assert "(rule files.workspace_only)" in text


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(encode_event(e["type"], orjson.dumps(e)) for e in events)


STREAM = [
    {"type": "message_start", "message": {**ANSWER, "content": [], "stop_reason": None}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Ok."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"command": "ls; su'},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": 'do rm x"}'},
    },
    {"type": "content_block_stop", "index": 1},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
    {"type": "message_stop"},
]


def streaming(raw: bytes, chunk: int) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for start in range(0, len(raw), chunk):
            piece = raw[start : start + chunk]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    return app


@pytest.mark.parametrize("chunk", [7, 64, 100_000])
def test_a_denied_tool_use_in_a_stream_is_replaced_at_its_index(chunk: int) -> None:
    app = PolicyMiddleware(streaming(sse(*STREAM), chunk), enforce_on_responses=True)
    response = TestClient(app).post("/v1/messages", json={**BODY, "stream": True})
    events = [orjson.loads(e.data) for e in SSEDecoder().feed(response.content + b"\n")]
    block = ["content_block_start", "content_block_delta", "content_block_stop"]
    assert [e["type"] for e in events] == [
        "message_start",
        *block,
        *block,
        *(e["type"] for e in STREAM[-2:]),
    ]
    assert events[:4] == STREAM[:4]
    assert events[4]["content_block"] == {"type": "text", "text": ""}
    assert {e["index"] for e in events[4:7]} == {1}
    assert "(rule shell.builtin_deny)" in events[5]["delta"]["text"]
    assert events[7]["delta"]["stop_reason"] == "end_turn"


def test_an_allowed_tool_use_stream_is_relayed_byte_for_byte() -> None:
    allowed = [dict(e) for e in STREAM]
    allowed[5] = {**STREAM[5], "delta": {"type": "input_json_delta", "partial_json": '{"command"'}}
    allowed[6] = {**STREAM[6], "delta": {"type": "input_json_delta", "partial_json": ': "ls"}'}}
    raw = sse(*allowed)
    app = PolicyMiddleware(streaming(raw, 13), enforce_on_responses=True)
    assert TestClient(app).post("/v1/messages", json=BODY).content == raw


# The stream path reads frames by their bytes: what it must still see ----------------------


def sent_chunks(
    chunks: list[bytes], run: Callable[[Any], Any] = asyncio.run, **options: Any
) -> list[tuple[bytes, bool]]:
    """The body messages the middleware sends for an SSE answer sent in `chunks`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    out: list[tuple[bytes, bool]] = []

    async def sink(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            out.append((message["body"], message.get("more_body", False)))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    middleware = PolicyMiddleware(app, enforce_on_responses=True, **options)
    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": []}
    run(middleware(scope, receive, sink))
    return out


def text_delta(text: str) -> dict[str, Any]:
    return {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }


TEXTS = ["Plain", ' "quoted" ', "back\\slash", "tool_use is a word", "é🎉", "line\n", "}}"]


def test_text_frames_pass_untouched_chunk_for_chunk() -> None:
    long = [STREAM[0], STREAM[1], *(text_delta(TEXTS[i % len(TEXTS)]) for i in range(300))]
    chunks = [sse(event) for event in [*long, STREAM[3], *STREAM[-2:]]]
    chunks[5] = b": keep-alive\n\n" + chunks[5]
    chunks.append(sse(text_delta("never finished"))[:-1])  # dropped at the end, as ever
    out = sent_chunks(chunks)
    assert out == [*((chunk, True) for chunk in chunks[:-1]), (b"", False)]


def test_a_comment_alone_waits_for_the_next_event() -> None:
    chunks = [sse(STREAM[0]), b": keep-alive\n\n", sse(STREAM[1]), sse(STREAM[2], STREAM[3])]
    out = sent_chunks(chunks)
    assert out == [
        (chunks[0], True),
        (chunks[1] + chunks[2], True),
        (chunks[3], True),
        (b"", False),
    ]


def tool_stream(command: str, fragment: int) -> list[dict[str, Any]]:
    """STREAM with the Bash block's input sent `fragment` characters at a time."""
    raw = orjson.dumps({"command": command}).decode()
    deltas = [
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", **p}}
        for p in [
            {"partial_json": ""},
            *({"partial_json": raw[i : i + fragment]} for i in range(0, len(raw), fragment)),
        ]
    ]
    return [*STREAM[:5], *deltas, *STREAM[7:]]


def events_of(out: list[tuple[bytes, bool]]) -> list[dict[str, Any]]:
    body = b"".join(chunk for chunk, _ in out)
    return [orjson.loads(e.data) for e in [*SSEDecoder().feed(body), *SSEDecoder().flush()]]


@pytest.mark.parametrize("chunk", [0, 1, 5, 64, 100_000])
@pytest.mark.parametrize("fragment", [1, 3, 1000])
def test_a_denied_tool_use_split_across_many_chunks_is_caught(fragment: int, chunk: int) -> None:
    """0: one chunk per event, as a paced model sends them."""
    raw = sse(*tool_stream("cd /tmp && ls -la; sudo rm -rf /var/lib", fragment))
    if chunk:
        chunks = [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    else:
        chunks = [frame + b"\n\n" for frame in raw.split(b"\n\n")[:-1]]
    events = events_of(sent_chunks(chunks))
    assert events[:4] == STREAM[:4]
    assert [e["type"] for e in events[4:]] == [
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert "(rule shell.builtin_deny)" in events[5]["delta"]["text"]
    assert events[7]["delta"]["stop_reason"] == "end_turn"


def test_an_allowed_tool_use_split_in_fragments_is_relayed_byte_for_byte() -> None:
    raw = sse(*tool_stream("git status && ls -la src", 2))
    chunks = [frame + b"\n\n" for frame in raw.split(b"\n\n")[:-1]]
    out = sent_chunks(chunks)
    assert b"".join(chunk for chunk, _ in out) == raw
    assert out[:4] == [(chunk, True) for chunk in chunks[:4]]  # text passes as it comes


@pytest.mark.parametrize(
    "spelling",
    [
        pytest.param(
            lambda raw: raw.replace(b'"type":"tool_use"', b'"type":"\\u0074ool_use"'), id="escaped"
        ),
        pytest.param(lambda raw: raw.replace(b"\n", b"\r\n"), id="crlf"),
        pytest.param(
            lambda raw: raw.replace(b'"type":"tool_use",', b'"type": "tool_use", '), id="spaced"
        ),
        pytest.param(
            lambda raw: raw.replace(b"event: ", b"event:").replace(b"data: ", b"data:"),
            id="no spaces",
        ),
    ],
)
@pytest.mark.parametrize("chunk", [3, 100_000])
def test_a_denied_tool_use_is_caught_however_it_is_framed(spelling: Any, chunk: int) -> None:
    raw = spelling(sse(*tool_stream("sudo rm -rf /var/lib", 4)))
    chunks = [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    events = events_of(sent_chunks(chunks))
    assert "(rule shell.builtin_deny)" in events[5]["delta"]["text"]
    assert events[7]["delta"]["stop_reason"] == "end_turn"


@pytest.mark.parametrize("chunk", [0, 7, 100_000])
def test_held_input_is_read_as_the_decoder_reads_it(chunk: int) -> None:
    """Input fragments framed otherwise than Anthropic does are parsed, and mean what they say."""
    frames = sse(*tool_stream("sudo rm -rf /var/lib", 4)).split(b"\n\n")[:-1]
    fragments = [i for i, frame in enumerate(frames) if b"input_json_delta" in frame][2:]
    frames[fragments[0]] = frames[fragments[0]].replace(b'"partial_json":', b'"partial_json": ')
    frames[fragments[1]] = frames[fragments[1]].replace(b',"delta"', b'\ndata: ,"delta"')
    # Not JSON (the `}}` line is no `data:` line): held, but no part of the input.
    bogus = frames[fragments[2]].replace(b'"}}', b'"\n}}')
    frames.insert(fragments[2], bogus.replace(b'"partial_json":"', b'"partial_json":"x'))
    raw = b"".join(frame + b"\n\n" for frame in frames)
    if chunk:
        chunks = [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
    else:
        chunks = [frame + b"\n\n" for frame in frames]
    events = events_of(sent_chunks(chunks))
    assert "(rule shell.builtin_deny)" in events[5]["delta"]["text"]


# A stream that breaks the grammar around a tool_use fails closed -------------------------


def _bash_start(index: int) -> dict[str, Any]:
    block = {"type": "tool_use", "id": f"t{index}", "name": "Bash", "input": {}}
    return {"type": "content_block_start", "index": index, "content_block": block}


def _input(index: int, partial: str) -> dict[str, Any]:
    delta = {"type": "input_json_delta", "partial_json": partial}
    return {"type": "content_block_delta", "index": index, "delta": delta}


@pytest.mark.parametrize("chunk", [0, 9, 100_000])
def test_deltas_of_another_block_inside_a_held_tool_use_stop_the_stream(chunk: int) -> None:
    """Index 2's fragments must not be joined into index 1's input (where `ls` would pass
    while a client joining per index sees `sudo rm` at index 1)."""
    server = {"type": "server_tool_use", "id": "s2", "name": "web_search", "input": {}}
    events = [
        *STREAM[:4],
        {"type": "content_block_start", "index": 2, "content_block": server},
        _input(2, '{"command":"ls","z":'),
        _bash_start(1),
        _input(1, '{"command":"sudo rm -rf /var/lib"}'),
        _input(2, "}"),
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_stop", "index": 2},
        *STREAM[-2:],
    ]
    raw = sse(*events)
    chunks = (
        [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
        if chunk
        else [frame + b"\n\n" for frame in raw.split(b"\n\n")[:-1]]
    )
    body = b"".join(part for part, _ in sent_chunks(chunks))
    assert b"sudo rm" not in body
    assert body.rstrip().endswith(b'the stream was stopped. Retry the request."}}')


def test_a_tool_use_start_lynkr_cannot_parse_stops_the_stream() -> None:
    """A lone surrogate: orjson refuses it, laxer readers (JS JSON.parse) see a tool_use."""
    frame = (
        b'event: content_block_start\ndata: {"type":"content_block_start","index":1,'
        b'"content_block":{"type":"tool_use","id":"t\\ud800","name":"Bash","input":'
        b'{"command":"sudo rm -rf /"}}}\n\n'
    )
    body = b"".join(part for part, _ in sent_chunks([sse(*STREAM[:4]), frame, sse(*STREAM[-2:])]))
    assert b"sudo rm" not in body
    assert b"event: error" in body and b"not valid JSON" in body
    assert not body.endswith(sse(STREAM[-1]))  # nothing after the error


@pytest.mark.parametrize("chunk", [100, 4096])
def test_a_long_frame_in_many_small_chunks_passes_whole(chunk: int) -> None:
    """Past 64 KiB an unfinished frame goes to the decoder (no copy of the carry per chunk)."""
    big = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": "x" * 300_000},
    }
    raw = sse(STREAM[0], big, *STREAM[2:4], *STREAM[-2:])
    out = sent_chunks([raw[i : i + chunk] for i in range(0, len(raw), chunk)])
    assert b"".join(part for part, _ in out) == raw


@pytest.mark.parametrize("holding", [False, True])
def test_an_event_that_never_ends_stops_the_stream(
    holding: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upstream's endless line is not held without bound: past the cap the client gets
    the stream's error (and never the tool call held meanwhile)."""
    monkeypatch.setattr("lynkr.middleware.policy._MAX_FRAME", 10_000)
    head = sse(*STREAM[:4], *(tool_stream("sudo rm -rf /", 3)[4:7] if holding else []))
    endless = [b'event: content_block_delta\ndata: {"type":"content_block_delta","index":1,']
    endless += [b"x" * 1000] * 30
    body = b"".join(part for part, _ in sent_chunks([head, *endless, sse(STREAM[-1])]))
    assert body.startswith(sse(*STREAM[:4]))
    assert b'"name":"Bash"' not in body and b"x" * 100 not in body
    assert body.endswith(
        b"an event not ended within 10,000 bytes, so lynkr's policy could not check its "
        b'tool calls; the stream was stopped. Retry the request."}}\n\n'
    )


def test_a_stream_is_checked_without_a_reference_cycle() -> None:
    """What a response held (a held tool call, the scanner's bytes) is freed with it."""

    def run_without_the_collector(coroutine: Any) -> None:
        gc.collect()
        gc.disable()
        try:
            with pytest.raises(StopIteration):
                coroutine.send(None)  # nothing here really waits
            assert gc.collect() == 0
        finally:
            gc.enable()

    out = sent_chunks([sse(e) for e in tool_stream("git status", 3)], run_without_the_collector)
    assert b"".join(part for part, _ in out) == sse(*tool_stream("git status", 3))


def test_a_json_answer_lynkr_cannot_parse_is_not_passed_when_it_may_hold_a_tool_use() -> None:
    raw = (
        b'{"type":"message","role":"assistant","content":[{"type":"tool_use","id":"t\\ud800",'
        b'"name":"Bash","input":{"command":"sudo rm -rf /"}}],"stop_reason":"tool_use"}'
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

    response = TestClient(PolicyMiddleware(app, enforce_on_responses=True)).post(
        "/v1/messages", json=BODY
    )
    assert response.status_code == 502
    assert b"sudo rm" not in response.content
    assert response.json()["error"]["type"] == "api_error"


@pytest.mark.parametrize("chunk", [0, 11])
def test_a_held_tool_use_whose_input_is_cut_short_stops_the_stream(chunk: int) -> None:
    """`{"remote":"origin","force":true` (no closing brace): a partial-JSON reader still
    sees `force`, so the call cannot be checked as `{}` and passed."""
    events = [*STREAM[:5], _input(1, '{"command":"sudo rm -rf /var/lib"'), *STREAM[7:]]
    raw = sse(*events)
    chunks = (
        [raw[i : i + chunk] for i in range(0, len(raw), chunk)]
        if chunk
        else [frame + b"\n\n" for frame in raw.split(b"\n\n")[:-1]]
    )
    body = b"".join(part for part, _ in sent_chunks(chunks))
    assert b"sudo rm" not in body
    assert b"event: error" in body and b"not a whole JSON object" in body


def test_a_json_answer_is_checked_whatever_the_case_of_its_content_type() -> None:
    """`Application/JSON; charset=UTF-8` and `content-encoding: identity` are still JSON."""
    answer = {**ANSWER, "content": [{"type": "tool_use", "id": "t", "name": "Bash",
                                      "input": {"command": "sudo rm -rf /var/lib"}}],
              "stop_reason": "tool_use"}  # fmt: skip

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"Content-Type", b"Application/JSON; charset=UTF-8"),
            (b"content-encoding", b"identity"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": orjson.dumps(answer)})

    response = TestClient(PolicyMiddleware(app, enforce_on_responses=True)).post(
        "/v1/messages", json=BODY
    )
    assert "sudo rm" not in response.text
    assert response.json()["stop_reason"] == "end_turn"
