"""End to end: the real `anthropic` SDK → `lynkr serve` (subprocess) → the fake upstream.

Every request crosses real sockets on loopback. The fake upstream records what lynkr sent
it, so these tests check both sides: what the client sees and what the provider saw.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import pytest
from fakes.anthropic_upstream import (
    FakeAnthropic,
    context_overflow,
    cut_stream,
    error,
    odd_chunks,
    slow_text,
    stream_error,
    text,
    thinking,
    tool_use,
)

pytestmark = pytest.mark.e2e

CLIENT_KEY = "client-key"
CLIENT_MODEL = "claude-opus-4-8"  # not in the SDK's deprecated list (that warns)
UPSTREAM_KEY = "upstream-secret-key"
PROVIDER_MODEL = "fake-model-1"
TIMEOUT = 15.0
BILLING = "x-anthropic-billing-header: cc_version=2.1.197.a1b; cc_entrypoint=sdk-cli;"
BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
        "required": ["command"],
    },
}


@pytest.fixture
def client(lynkr_url: str) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=lynkr_url, api_key=CLIENT_KEY, max_retries=0, timeout=TIMEOUT
    ) as sdk:
        yield sdk


@pytest.fixture
def http(lynkr_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lynkr_url, timeout=TIMEOUT, trust_env=False) as raw:
        yield raw


def body(stream: bool = True, **fields: Any) -> dict[str, Any]:
    return {
        "model": CLIENT_MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        **fields,
    }


CLIENT_HEADERS = {
    "x-api-key": CLIENT_KEY,
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
}


def parse_sse(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) pairs of an SSE body; tolerant of comments and CRLF."""
    frames = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if event is not None:
            frames.append((event, json.loads("".join(data)) if data else {}))
    return frames


def assert_upstream_credentials(fake: FakeAnthropic) -> None:
    for record in fake.message_requests():
        assert record.header("x-api-key") == UPSTREAM_KEY, record.headers
        assert record.header("authorization") is None, record.headers
        for name, value in record.headers.items():
            assert "client-key" not in value, f"client credential leaked in {name}"


# --------------------------------------------------------------------------- happy paths


def test_streaming_text(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.script(text("Streaming hello through lynkr."))
    with client.messages.stream(
        model=CLIENT_MODEL, max_tokens=256, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and "content_block_delta" in kinds
    assert kinds[-1] == "message_stop"
    start = events[0]
    assert isinstance(start, anthropic.types.RawMessageStartEvent)
    assert start.message.model == CLIENT_MODEL  # the client's name, not the provider's
    assert final.content[0].type == "text"
    assert final.content[0].text == "Streaming hello through lynkr."
    assert final.stop_reason == "end_turn"
    sent = fake.last_message_request()
    assert sent.body["model"] == PROVIDER_MODEL and sent.body["stream"] is True
    assert_upstream_credentials(fake)


def test_non_streaming_text(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.script(text("A whole message at once."))
    message = client.messages.create(
        model=CLIENT_MODEL, max_tokens=256, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.model == CLIENT_MODEL
    assert message.content[0].type == "text"
    assert message.content[0].text == "A whole message at once."
    assert message.usage.output_tokens > 0
    assert fake.last_message_request().body["model"] == PROVIDER_MODEL
    assert_upstream_credentials(fake)


def test_odd_chunk_splits_and_thinking_survive(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    fake.script(odd_chunks(), thinking(thought="Pondering.", answer="Thought it through."))
    messages: Any = [{"role": "user", "content": "hi"}]
    with client.messages.stream(model=CLIENT_MODEL, max_tokens=256, messages=messages) as s:
        first = s.get_final_message()
    assert first.content[0].type == "text"
    assert first.content[0].text == "Ünïcödé ✓ — split everywhere 🎉"
    with client.messages.stream(model=CLIENT_MODEL, max_tokens=2048, messages=messages) as s:
        second = s.get_final_message()
    assert second.content[0].type == "thinking"
    assert second.content[0].thinking == "Pondering."
    assert second.content[0].signature == "c2lnbmF0dXJlLWZha2U="
    assert second.content[1].type == "text" and second.content[1].text == "Thought it through."


def test_tool_use_round_trip(fake: FakeAnthropic, client: anthropic.Anthropic) -> None:
    fake.script(tool_use("echo LYNKR_TOOL_OK", tool_id="toolu_e2e_1"), text("The tool said OK."))
    messages: list[Any] = [{"role": "user", "content": "run the tool"}]
    with client.messages.stream(
        model=CLIENT_MODEL, max_tokens=256, messages=messages, tools=[BASH_TOOL]
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    calls = [block for block in first.content if block.type == "tool_use"]
    assert len(calls) == 1
    assert calls[0].name == "Bash" and calls[0].id == "toolu_e2e_1"
    assert calls[0].input == {
        "command": "echo LYNKR_TOOL_OK",
        "description": "Run a command for the test",
    }

    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_e2e_1", "content": "LYNKR_TOOL_OK\n"}
            ],
        }
    )
    with client.messages.stream(
        model=CLIENT_MODEL, max_tokens=256, messages=messages, tools=[BASH_TOOL]
    ) as stream:
        second = stream.get_final_message()
    assert second.content[0].type == "text" and second.content[0].text == "The tool said OK."

    requests = fake.message_requests()
    assert len(requests) == 2
    last_turn = requests[1].body["messages"][-1]
    assert last_turn["role"] == "user"
    result = last_turn["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_e2e_1"
    assert "LYNKR_TOOL_OK" in json.dumps(result["content"])
    assert requests[1].body["tools"][0]["name"] == "Bash"
    assert_upstream_credentials(fake)


# ----------------------------------------------------------------- what reaches the upstream


def test_credentials_versions_betas_and_query(fake: FakeAnthropic, http: httpx.Client) -> None:
    headers = {
        **CLIENT_HEADERS,
        "authorization": "Bearer client-key",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
    }
    response = http.post("/v1/messages?beta=true", json=body(stream=False), headers=headers)
    assert response.status_code == 200, response.text
    sent = fake.last_message_request()
    assert_upstream_credentials(fake)
    assert sent.header("anthropic-version") == "2023-06-01"
    betas = {b.strip() for b in (sent.header("anthropic-beta") or "").split(",")}
    assert {"claude-code-20250219", "interleaved-thinking-2025-05-14"} <= betas
    assert "beta=true" not in sent.query


def test_empty_text_blocks_and_billing_header_are_stripped(
    fake: FakeAnthropic, http: httpx.Client
) -> None:
    request = body(
        system=[
            {"type": "text", "text": BILLING},
            {
                "type": "text",
                "text": "You are a careful assistant.",
                "cache_control": {"type": "ephemeral"},
            },
        ],
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": ""}, {"type": "text", "text": "hi"}],
            },
            {
                "role": "assistant",
                "content": [{"type": "text", "text": ""}, {"type": "text", "text": "hello"}],
            },
            {"role": "user", "content": "again"},
        ],
    )
    response = http.post("/v1/messages", json=request, headers=CLIENT_HEADERS)
    assert response.status_code == 200, response.text
    sent = fake.last_message_request().body
    system = (
        sent["system"]
        if isinstance(sent["system"], list)
        else [{"type": "text", "text": sent["system"]}]
    )
    assert not any("x-anthropic-billing-header" in block["text"] for block in system)
    assert any("You are a careful assistant." in block["text"] for block in system)
    for message in sent["messages"]:
        if isinstance(message["content"], list):
            for block in message["content"]:
                assert not (block["type"] == "text" and block["text"] == ""), sent["messages"]
    assert "hi" in json.dumps(sent["messages"]) and "hello" in json.dumps(sent["messages"])


# --------------------------------------------------------------------------- errors


ERROR_CASES = [
    # upstream scenario, client status, client error type
    pytest.param(error(400, "messages.0: bad block"), 400, "invalid_request_error", id="400"),
    pytest.param(error(401), 502, "api_error", id="401"),
    pytest.param(error(403), 502, "api_error", id="403"),
    pytest.param(error(404, "model: fake-model-1 not found"), 404, "not_found_error", id="404"),
    pytest.param(error(413), 413, "request_too_large", id="413"),
    pytest.param(error(429, headers={"retry-after": "30"}), 429, "rate_limit_error", id="429"),
    pytest.param(error(500), 502, "api_error", id="500"),
    pytest.param(error(503), 529, "overloaded_error", id="503"),
    pytest.param(error(529), 529, "overloaded_error", id="529"),
]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
@pytest.mark.parametrize(("scenario", "status", "error_type"), ERROR_CASES)
def test_upstream_errors_map_to_anthropic_errors(
    fake: FakeAnthropic,
    http: httpx.Client,
    scenario: Any,
    status: int,
    error_type: str,
    stream: bool,
) -> None:
    fake.default = scenario  # every attempt fails the same way, retries included
    response = http.post("/v1/messages", json=body(stream=stream), headers=CLIENT_HEADERS)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["type"] == "error", payload
    assert payload["error"]["type"] == error_type, payload
    message = payload["error"]["message"]
    assert UPSTREAM_KEY not in response.text
    upstream_status = scenario.status
    if upstream_status == 400:
        assert "messages.0: bad block" in message
    if upstream_status in (401, 403):
        assert re.search(r"(?i)provider|upstream|fake", message), message
        assert re.search(r"(?i)credential|api.?key|auth", message), message
    if upstream_status == 429:
        assert response.headers.get("retry-after") == "30"
    assert fake.message_requests(), "the request never reached the upstream"


def test_upstream_errors_raise_sdk_exceptions(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    fake.default = error(429, headers={"retry-after": "30"})
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(
            model=CLIENT_MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.response.headers.get("retry-after") == "30"
    fake.default = error(400, "messages.0: bad block")
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(
            model=CLIENT_MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_openai_context_overflow_becomes_anthropic_wording(
    fake: FakeAnthropic, http: httpx.Client, stream: bool
) -> None:
    # The prompt fits, prompt + max_tokens does not: Claude Code retries with a smaller
    # max_tokens when it sees Anthropic's "input length and `max_tokens`" wording (A.9).
    fake.default = context_overflow(limit=128000, prompt=100000, completion=30000)
    response = http.post(
        "/v1/messages", json=body(stream=stream, max_tokens=30000), headers=CLIENT_HEADERS
    )
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["error"]["type"] == "invalid_request_error"
    assert (
        "input length and `max_tokens` exceed context limit: 100000 + 30000 > 128000"
        in payload["error"]["message"]
    ), payload


def test_openai_prompt_alone_too_long(fake: FakeAnthropic, http: httpx.Client) -> None:
    # The prompt alone is over the limit: either Anthropic wording is usable by Claude Code
    # ("prompt is too long" makes it compact; "input length" makes it shrink max_tokens).
    fake.default = context_overflow(limit=128000, prompt=136000, completion=4000)
    response = http.post("/v1/messages", json=body(max_tokens=4000), headers=CLIENT_HEADERS)
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert (
        "prompt is too long: 136000 tokens > 128000 maximum" in message
        or "input length and `max_tokens` exceed context limit: 136000 + 4000 > 128000" in message
    ), message


def test_connection_refused_names_the_provider(
    fake: FakeAnthropic, lynkr_server: Callable[..., Any], closed_port: int
) -> None:
    closed = closed_port
    server = lynkr_server(
        "refused",
        providers={
            "closedport": {
                "type": "anthropic",
                "base_url": f"http://127.0.0.1:{closed}",
                "api_key": UPSTREAM_KEY,
                "model": PROVIDER_MODEL,
                "timeout": {"connect": 2},
            }
        },
        pools={"main": {"providers": ["closedport"]}},
    )
    with httpx.Client(base_url=server.url, timeout=TIMEOUT, trust_env=False) as raw:
        response = raw.post("/v1/messages", json=body(), headers=CLIENT_HEADERS)
    assert response.status_code == 502, response.text
    payload = response.json()
    assert payload["error"]["type"] == "api_error"
    assert "closedport" in payload["error"]["message"]
    assert UPSTREAM_KEY not in response.text


# --------------------------------------------------------------------------- broken streams


def test_stream_cut_mid_way_ends_with_an_error_event(
    fake: FakeAnthropic, http: httpx.Client, client: anthropic.Anthropic
) -> None:
    fake.default = cut_stream("This answer will be cut off", after_deltas=2)
    with http.stream("POST", "/v1/messages", json=body(), headers=CLIENT_HEADERS) as response:
        assert response.status_code == 200
        raw = response.read().decode()
    names = [name for name, _ in parse_sse(raw)]
    assert names[0] == "message_start", raw
    assert "content_block_delta" in names
    assert names[-1] == "error", raw
    assert "message_stop" not in names
    error_data = parse_sse(raw)[-1][1]
    assert error_data["type"] == "error" and error_data["error"]["type"], error_data

    with (
        pytest.raises(anthropic.APIError),
        client.messages.stream(
            model=CLIENT_MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        for _ in stream:
            pass


def test_upstream_error_event_is_forwarded(fake: FakeAnthropic, http: httpx.Client) -> None:
    fake.default = stream_error(error_type="overloaded_error", message="Overloaded")
    with http.stream("POST", "/v1/messages", json=body(), headers=CLIENT_HEADERS) as response:
        assert response.status_code == 200
        frames = parse_sse(response.read().decode())
    assert frames[-1][0] == "error"
    assert frames[-1][1]["error"]["type"] == "overloaded_error"
    assert "message_stop" not in [name for name, _ in frames]


def test_client_disconnect_reaches_the_upstream(fake: FakeAnthropic, lynkr_url: str) -> None:
    fake.default = slow_text("word " * 60, event_delay=0.2)  # ~12 s if nobody hangs up
    with (
        httpx.Client(base_url=lynkr_url, timeout=TIMEOUT, trust_env=False) as raw,
        raw.stream("POST", "/v1/messages", json=body(), headers=CLIENT_HEADERS) as response,
    ):
        assert response.status_code == 200
        seen = b""
        for chunk in response.iter_raw():
            seen += chunk
            if b"content_block_delta" in seen:
                break
    assert fake.wait_for_disconnects(1, timeout=5), "the upstream never saw the client leave"
    assert fake.completed == 0


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_client_leaving_before_the_first_byte_reaches_the_upstream(
    fake: FakeAnthropic, lynkr_url: str, stream: bool
) -> None:
    # The upstream takes 8 s to answer; the client gives up after 0.5 s.
    fake.default = text("too late", headers_delay=8)
    with (
        httpx.Client(base_url=lynkr_url, timeout=0.5, trust_env=False) as raw,
        pytest.raises(httpx.ReadTimeout),
    ):
        raw.post("/v1/messages", json=body(stream=stream), headers=CLIENT_HEADERS)
    assert fake.wait_for_requests(1, timeout=5)
    assert fake.wait_for_disconnects(1, timeout=5), "the upstream call outlived its client"
    assert fake.completed == 0


# --------------------------------------------------------------------------- other endpoints


def test_models_list(client: anthropic.Anthropic) -> None:
    page = client.models.list()
    ids = [model.id for model in page.data]
    assert ids, "GET /v1/models listed nothing"


def test_count_tokens_forwarded_then_estimated(
    fake: FakeAnthropic, client: anthropic.Anthropic
) -> None:
    fake.count_tokens_value = 4242
    counted = client.messages.count_tokens(
        model=CLIENT_MODEL, messages=[{"role": "user", "content": "hello there"}]
    )
    assert counted.input_tokens == 4242
    forwarded = [r for r in fake.requests if r.route == "/v1/messages/count_tokens"]
    assert forwarded and forwarded[-1].header("x-api-key") == UPSTREAM_KEY
    assert forwarded[-1].body["model"] == PROVIDER_MODEL

    fake.count_tokens_enabled = False
    estimated = client.messages.count_tokens(
        model=CLIENT_MODEL, messages=[{"role": "user", "content": "hello there " * 50}]
    )
    assert isinstance(estimated.input_tokens, int) and estimated.input_tokens > 0


def test_head_health_ready(http: httpx.Client) -> None:
    head = http.head("/")
    assert head.status_code in (200, 404)
    assert head.content == b""
    assert http.get("/health").status_code == 200
    assert http.get("/ready").status_code == 200


# --------------------------------------------------------------------------- other provider types


@pytest.mark.parametrize(
    ("provider", "path", "auth_header", "auth_value", "model"),
    [
        ("foundry", "/anthropic/v1/messages", "x-api-key", "k2", "my-deployment"),
        (
            "dbx",
            "/serving-endpoints/anthropic/v1/messages",
            "authorization",
            "Bearer dapi-k3",
            "databricks-claude-sonnet-4-5",
        ),
    ],
)
def test_azure_and_databricks_shapes(
    fake: FakeAnthropic,
    lynkr_server: Callable[..., Any],
    provider: str,
    path: str,
    auth_header: str,
    auth_value: str,
    model: str,
) -> None:
    server = lynkr_server(provider, pools={"main": {"providers": [provider]}})
    fake.script(text(f"Hello from {provider}."))
    with (
        anthropic.Anthropic(
            base_url=server.url, api_key=CLIENT_KEY, max_retries=0, timeout=TIMEOUT
        ) as sdk,
        sdk.messages.stream(
            model=CLIENT_MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == f"Hello from {provider}."
    assert final.model == CLIENT_MODEL
    sent = fake.last_message_request()
    assert sent.path == path
    assert sent.header(auth_header) == auth_value
    other = "authorization" if auth_header == "x-api-key" else "x-api-key"
    assert sent.header(other) is None, sent.headers
    assert sent.body["model"] == model
    assert all("client-key" not in v for v in sent.headers.values())
