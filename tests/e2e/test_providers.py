"""End to end through translating providers: the `anthropic` SDK → `lynkr serve` → a fake
OpenAI-dialect upstream (OpenAI, OpenRouter, Azure OpenAI classic and v1, Databricks with
`format: openai`, llama.cpp) or a fake Ollama (native `/api/chat`).

One lynkr serves every dialect: each provider has a pool of its own name, chosen per
request with the ``x-lynkr-pool`` header (the routing middleware). Every request crosses
real sockets; the fakes record what lynkr sent, so each test checks both sides: what the
client saw (docs/protocol.md B.4/B.5) and what the upstream received (B.2/B.3, B.6–B.8).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest
from fakes import ollama_upstream as ol
from fakes import openai_upstream as oa
from fakes.anthropic_upstream import Recorded

pytestmark = pytest.mark.e2e

CLIENT_KEY = "client-key"
CLIENT_MODEL = "claude-opus-4-8"
MAX_OUT = 777  # every provider's max_output_tokens; clients ask for more
NUM_CTX = 32768
TIMEOUT = 15.0
BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
        "required": ["command"],
        "additionalProperties": False,
    },
}
READ_TOOL = {
    "name": "Read",
    "description": "Read a file",
    "input_schema": {
        "type": "object",
        "properties": {"file_path": {"type": "string"}},
        "required": ["file_path"],
    },
}
WEB_SEARCH_BODY = {
    "model": CLIENT_MODEL,
    "max_tokens": 32000,
    "system": [
        {"type": "text", "text": "You are an assistant for performing a web search tool use"}
    ],
    "messages": [{"role": "user", "content": "Perform a web search for the query: lynkr"}],
    "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 8}],
    "tool_choice": {"type": "tool", "name": "web_search"},
}


@dataclass(frozen=True, slots=True)
class Dialect:
    """One provider flavour: its config, and what the fake must see from lynkr."""

    id: str
    upstream: str  # "openai" or "ollama": which fake answers
    config: Callable[[str], dict[str, Any]]  # the fake's URL → the provider's config
    path: str
    query: str = ""
    auth: tuple[str, str] | None = None  # (header, value) the upstream must receive
    model: str | None = None  # the body model the upstream must receive (None: no check)
    flavour: str = "openai"  # the fake's quirks

    @property
    def ollama(self) -> bool:
        return self.upstream == "ollama"


def _limits(**more: Any) -> dict[str, Any]:
    return {"max_output_tokens": MAX_OUT, **more}


DIALECTS = [
    Dialect(
        "openai",
        "openai",
        lambda url: {
            "type": "openai",
            "base_url": f"{url}/v1",
            "api_key": "sk-up-openai",
            "model": "gpt-fake-1",
            **_limits(),
        },
        path="/v1/chat/completions",
        auth=("authorization", "Bearer sk-up-openai"),
        model="gpt-fake-1",
    ),
    Dialect(
        "openrouter",
        "openai",
        lambda url: {
            "type": "openrouter",
            "base_url": f"{url}/api/v1",
            "api_key": "sk-or-up",
            "model": "openai/gpt-oss-120b",
            **_limits(),
        },
        path="/api/v1/chat/completions",
        auth=("authorization", "Bearer sk-or-up"),
        model="openai/gpt-oss-120b",
        flavour="openrouter",
    ),
    Dialect(
        "azure-classic",
        "openai",
        lambda url: {
            "type": "azure-openai",
            "base_url": url,
            "api_key": "az-up-key",
            "deployment": "gpt4o-deploy",
            "api_version": "2024-10-21",
            **_limits(),
        },
        path="/openai/deployments/gpt4o-deploy/chat/completions",
        query="api-version=2024-10-21",
        auth=("api-key", "az-up-key"),
        flavour="azure",
    ),
    Dialect(
        "azure-v1",
        "openai",
        lambda url: {
            "type": "azure-openai",
            "base_url": url,
            "api_key": "az-up-key-v1",
            "deployment": "gpt5-deploy",
            **_limits(),
        },
        path="/openai/v1/chat/completions",
        auth=("api-key", "az-up-key-v1"),
        model="gpt5-deploy",
        flavour="azure",
    ),
    Dialect(
        "databricks",
        "openai",
        lambda url: {
            "type": "databricks",
            "format": "openai",
            "base_url": url,
            "api_key": "dapi-up",
            "endpoint": "databricks-llama-4-maverick",
            **_limits(),
        },
        path="/serving-endpoints/chat/completions",
        auth=("authorization", "Bearer dapi-up"),
        model="databricks-llama-4-maverick",
    ),
    Dialect(
        "llamacpp",
        "openai",
        lambda url: {
            "type": "llamacpp",
            "base_url": url,
            "api_key": "llama-up-key",
            "model": "qwen3-coder-gguf",
            **_limits(),
        },
        path="/v1/chat/completions",
        auth=("authorization", "Bearer llama-up-key"),
        model="qwen3-coder-gguf",
        flavour="llamacpp",
    ),
    Dialect(
        "ollama",
        "ollama",
        lambda url: {
            "type": "ollama",
            "base_url": url,
            "model": "qwen3-coder:fake",
            **_limits(num_ctx=NUM_CTX),
        },
        path="/api/chat",
        model="qwen3-coder:fake",
        flavour="ollama",
    ),
]
BY_ID = {d.id: d for d in DIALECTS}
ALL = [pytest.param(d, id=d.id) for d in DIALECTS]


def some(*ids: str) -> list[Any]:
    return [pytest.param(BY_ID[i], id=i) for i in ids]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def translated(lynkr_server: Callable[..., Any], openai_upstream: Any, ollama_upstream: Any) -> Any:
    """One lynkr with a provider (and a pool of the same name) per dialect, plus two
    providers with `tool_text_repair: true` (pools ``openai-repair``, ``ollama-repair``)."""
    providers = {
        d.id: d.config(ollama_upstream.url if d.ollama else openai_upstream.url) for d in DIALECTS
    }
    providers["openai-repair"] = {**BY_ID["openai"].config(openai_upstream.url)}
    providers["openai-repair"]["tool_text_repair"] = True
    providers["ollama-repair"] = {**BY_ID["ollama"].config(ollama_upstream.url)}
    providers["ollama-repair"]["tool_text_repair"] = True
    return lynkr_server(
        "translated",
        providers=providers,
        pools={name: {"providers": [name]} for name in providers},
        default_pool="openai",
    )


@pytest.fixture
def upstreams(openai_fake: Any, ollama_fake: Any) -> dict[str, Any]:
    """Both fakes, reset for the test."""
    return {"openai": openai_fake, "ollama": ollama_fake}


@pytest.fixture
def sdk(translated: Any) -> Iterator[Callable[[str], anthropic.Anthropic]]:
    """`sdk(pool)`: an Anthropic client whose requests go to that pool."""
    clients: list[anthropic.Anthropic] = []

    def make(pool: str) -> anthropic.Anthropic:
        client = anthropic.Anthropic(
            base_url=translated.url,
            api_key=CLIENT_KEY,
            max_retries=0,
            timeout=TIMEOUT,
            default_headers={"x-lynkr-pool": pool},
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def http(translated: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=translated.url, timeout=TIMEOUT, trust_env=False) as raw:
        yield raw


def headers_for(pool: str) -> dict[str, str]:
    return {
        "x-api-key": CLIENT_KEY,
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
        "x-lynkr-pool": pool,
    }


def request_body(stream: bool = True, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": CLIENT_MODEL,
        "max_tokens": 32000,
        "messages": [{"role": "user", "content": "hi"}],
        **fields,
    }
    if stream:
        body["stream"] = True  # the fallback omits the key (A.4), never sends false
    return body


def parse_sse(raw: str) -> list[tuple[str, dict[str, Any]]]:
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


# ----------------------------------------------------------------- scenarios per dialect


def say(d: Dialect, answer: str, prompt: int = 30, cached: int = 0, output: int = 7) -> Any:
    if d.ollama:
        return ol.text(answer, prompt_eval_count=prompt, eval_count=output)
    usage = {"prompt_tokens": prompt, "cached_tokens": cached, "completion_tokens": output}
    return oa.text(answer, usage=usage, flavour=d.flavour)


def calls(d: Dialect, *wanted: tuple[str, dict[str, Any], str], preamble: str | None = None) -> Any:
    if d.ollama:
        return ol.tool_calls(
            *(ol.ollama_call(n, a, i, index=k) for k, (n, a, i) in enumerate(wanted)),
            preamble=preamble,
        )
    return oa.tool_calls(
        *(oa.call(n, a, i) for n, a, i in wanted),
        preamble=preamble,
        flavour=d.flavour,
        interleave=len(wanted) > 1,
    )


def think(d: Dialect, thought: str, answer: str) -> Any:
    if d.ollama:
        return ol.thinking(thought, answer)
    field_name = "reasoning" if d.flavour == "openrouter" else "reasoning_content"
    return oa.reasoning(thought, answer, field_name=field_name, flavour=d.flavour)


def fake_of(d: Dialect, upstreams: dict[str, Any]) -> Any:
    return upstreams[d.upstream]


def assert_upstream_saw(d: Dialect, record: Recorded, *, stream: bool) -> None:
    """URL, credentials, model, token cap and stream flag of one upstream request."""
    assert record.method == "POST"
    assert record.path == d.path, record.path
    assert record.query == d.query, record.query
    for name, value in record.headers.items():
        assert CLIENT_KEY not in value, f"the client's key leaked upstream in {name}"
    assert record.header("x-api-key") is None, record.headers
    assert record.header("anthropic-version") is None and record.header("anthropic-beta") is None
    if d.auth is None:
        assert record.header("authorization") is None, record.headers
    else:
        assert record.header(d.auth[0]) == d.auth[1], record.headers
        if d.auth[0] == "api-key":
            assert record.header("authorization") is None, record.headers
    body = record.body
    assert isinstance(body, dict), record.raw_body[:200]
    if d.model is not None:
        assert body.get("model") == d.model, body.get("model")
    if d.ollama:
        assert body["stream"] is stream  # Ollama streams by default: always explicit
        assert body["options"]["num_predict"] == MAX_OUT, body.get("options")
        assert body["options"]["num_ctx"] == NUM_CTX, body.get("options")
        return
    tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    assert tokens == MAX_OUT, body
    if stream:
        assert body.get("stream") is True
        assert body.get("stream_options") == {"include_usage": True}, body
    else:
        assert not body.get("stream"), body
    for message in body["messages"]:
        assert message["role"] in ("system", "user", "assistant", "tool"), message


def upstream_tool_calls(d: Dialect, record: Recorded) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, name, arguments) of the assistant tool calls replayed in `record`."""
    found = []
    for message in record.body["messages"]:
        if message["role"] != "assistant":
            continue
        for item in message.get("tool_calls") or []:
            arguments = item["function"]["arguments"]
            if d.ollama:
                assert isinstance(arguments, dict), item  # objects for Ollama (B.6)
            else:
                assert item["type"] == "function", item
                assert isinstance(arguments, str), item  # JSON strings for OpenAI (B.3)
                arguments = json.loads(arguments)
            found.append((item.get("id"), item["function"]["name"], arguments))
    return found


def upstream_tool_messages(record: Recorded) -> list[dict[str, Any]]:
    return [m for m in record.body["messages"] if m["role"] == "tool"]


def tool_content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content)
    return str(content)


# --------------------------------------------------------------------------- text


@pytest.mark.parametrize("d", ALL)
def test_streaming_text_and_usage(
    d: Dialect, upstreams: dict[str, Any], sdk: Callable[[str], anthropic.Anthropic]
) -> None:
    fake = fake_of(d, upstreams)
    fake.script(say(d, f"Streaming hello via {d.id}.", prompt=120, cached=20, output=7))
    with sdk(d.id).messages.stream(
        model=CLIENT_MODEL, max_tokens=32000, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop", kinds
    assert final.model == CLIENT_MODEL
    assert [b.type for b in final.content] == ["text"], final.content
    assert final.content[0].text == f"Streaming hello via {d.id}."  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 7
    if d.ollama:
        assert final.usage.input_tokens == 120
    else:  # input = prompt − cached; the cached part is a cache read (B.4)
        assert final.usage.input_tokens == 100, final.usage
        assert final.usage.cache_read_input_tokens == 20, final.usage
    requests = fake.chat_requests()
    assert len(requests) == 1
    assert_upstream_saw(d, requests[0], stream=True)


@pytest.mark.parametrize("d", ALL)
def test_non_streaming_text(
    d: Dialect, upstreams: dict[str, Any], sdk: Callable[[str], anthropic.Anthropic]
) -> None:
    fake = fake_of(d, upstreams)
    fake.script(say(d, "A whole answer.", prompt=50, cached=10, output=4))
    message = sdk(d.id).messages.create(
        model=CLIENT_MODEL, max_tokens=32000, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.model == CLIENT_MODEL
    assert message.content[0].type == "text" and message.content[0].text == "A whole answer."
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 4
    assert message.usage.input_tokens == (50 if d.ollama else 40), message.usage
    assert_upstream_saw(d, fake.last_chat_request(), stream=False)


# --------------------------------------------------------------------------- tools


@pytest.mark.parametrize("d", ALL)
def test_tool_round_trip(
    d: Dialect, upstreams: dict[str, Any], sdk: Callable[[str], anthropic.Anthropic]
) -> None:
    fake = fake_of(d, upstreams)
    arguments = {"command": "echo LYNKR_TOOL_OK", "description": "say ok"}
    fake.script(
        calls(d, ("Bash", arguments, "call_rt_1"), preamble="I'll run it."),
        say(d, "The tool said OK."),
    )
    client = sdk(d.id)
    messages: list[Any] = [{"role": "user", "content": "run the tool"}]
    with client.messages.stream(
        model=CLIENT_MODEL, max_tokens=32000, messages=messages, tools=[BASH_TOOL]
    ) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"  # also for Ollama's done_reason "stop" (B.4)
    assert [b.type for b in first.content] == ["text", "tool_use"], first.content
    use = first.content[1]
    assert use.type == "tool_use"
    assert (use.id, use.name, use.input) == ("call_rt_1", "Bash", arguments)

    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_rt_1", "content": "LYNKR_TOOL_OK\n"}
            ],
        }
    )
    second = client.messages.create(
        model=CLIENT_MODEL, max_tokens=32000, messages=messages, tools=[BASH_TOOL]
    )
    assert second.content[0].type == "text" and second.content[0].text == "The tool said OK."

    first_sent, second_sent = fake.chat_requests()
    tools = first_sent.body["tools"]
    if d.ollama:
        assert tools[0]["function"]["name"] == "Bash"
    else:
        assert tools[0]["type"] == "function" and tools[0]["function"]["name"] == "Bash"
        assert "$schema" not in tools[0]["function"]["parameters"]
    assert upstream_tool_calls(d, second_sent) == [("call_rt_1", "Bash", arguments)]
    results = upstream_tool_messages(second_sent)
    assert len(results) == 1, second_sent.body["messages"]
    assert results[0]["tool_call_id"] == "call_rt_1"
    assert "LYNKR_TOOL_OK" in tool_content(results[0])
    if d.ollama:
        assert results[0].get("tool_name") == "Bash", results[0]
    assert second_sent.body["messages"][-1]["role"] == "tool"
    assert_upstream_saw(d, second_sent, stream=False)


@pytest.mark.parametrize("d", ALL)
def test_parallel_tool_calls(
    d: Dialect, upstreams: dict[str, Any], sdk: Callable[[str], anthropic.Anthropic]
) -> None:
    fake = fake_of(d, upstreams)
    bash = {"command": "ls -la"}
    read = {"file_path": "/tmp/lynkr.txt"}
    fake.script(
        calls(d, ("Bash", bash, "call_p_a"), ("Read", read, "call_p_b")), say(d, "Both done.")
    )
    client = sdk(d.id)
    messages: list[Any] = [{"role": "user", "content": "do both"}]
    with client.messages.stream(
        model=CLIENT_MODEL, max_tokens=1000, messages=messages, tools=[BASH_TOOL, READ_TOOL]
    ) as stream:
        first = stream.get_final_message()
    uses = [(b.id, b.name, b.input) for b in first.content if b.type == "tool_use"]
    assert uses == [("call_p_a", "Bash", bash), ("call_p_b", "Read", read)], first.content
    assert first.stop_reason == "tool_use"
    first_sent = fake.last_chat_request()
    if d.id == "llamacpp":
        assert first_sent.body.get("parallel_tool_calls") is True, first_sent.body

    # Results come back in completion order (A.6 #5); the upstream needs call order (B.3).
    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_p_b", "content": "file text"},
                {"type": "tool_result", "tool_use_id": "call_p_a", "content": "a.txt b.txt"},
            ],
        }
    )
    with client.messages.stream(
        model=CLIENT_MODEL, max_tokens=1000, messages=messages, tools=[BASH_TOOL, READ_TOOL]
    ) as stream:
        assert stream.get_final_message().stop_reason == "end_turn"
    sent = fake.last_chat_request()
    assert [c[0] for c in upstream_tool_calls(d, sent)] == ["call_p_a", "call_p_b"]
    results = upstream_tool_messages(sent)
    assert [m["tool_call_id"] for m in results] == ["call_p_a", "call_p_b"], results
    assert "a.txt" in tool_content(results[0]) and "file text" in tool_content(results[1])


# --------------------------------------------------------------------------- reasoning


@pytest.mark.parametrize("d", ALL)
def test_reasoning_becomes_a_thinking_block(
    d: Dialect, upstreams: dict[str, Any], sdk: Callable[[str], anthropic.Anthropic]
) -> None:
    fake = fake_of(d, upstreams)
    fake.script(think(d, "Pondering the question.", "Forty-two."))
    fake.script(think(d, "Whole thoughts.", "Whole answer."))
    client = sdk(d.id)
    messages: Any = [{"role": "user", "content": "think"}]
    with client.messages.stream(model=CLIENT_MODEL, max_tokens=2048, messages=messages) as s:
        streamed = s.get_final_message()
    whole = client.messages.create(model=CLIENT_MODEL, max_tokens=2048, messages=messages)
    for message, thought, answer in (
        (streamed, "Pondering the question.", "Forty-two."),
        (whole, "Whole thoughts.", "Whole answer."),
    ):
        assert [b.type for b in message.content] == ["thinking", "text"], message.content
        block = message.content[0]
        assert block.type == "thinking" and block.thinking == thought
        assert isinstance(block.signature, str)
        assert message.content[1].type == "text" and message.content[1].text == answer


# --------------------------------------------------------------------------- errors


def error_scenario(d: Dialect, case: str) -> Any:
    if d.ollama:
        return {
            "429": ol.error(429, "too many requests", headers={"retry-after": "7"}),
            "401": ol.error(401, "unauthorized"),
            "503": ol.error(503, "server busy, please try again"),
            "overflow": ol.error(
                400, "the input length exceeds the context length (131072 > 32768)"
            ),
        }[case]
    return {
        "429": oa.error(429, "Rate limit reached", headers={"retry-after": "7"}),
        "401": oa.error(401, "Incorrect API key provided: sk-up-***"),
        "503": oa.error(503, "The server is overloaded"),
        "overflow": oa.context_length_exceeded(limit=128000, prompt=120000, completion=30000),
    }[case]


ERROR_CASES = [
    # case, client status, client error type
    pytest.param("429", 429, "rate_limit_error", id="429"),
    pytest.param("401", 502, "api_error", id="401"),
    pytest.param("503", 529, "overloaded_error", id="503"),
    pytest.param("overflow", 400, "invalid_request_error", id="overflow"),
]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
@pytest.mark.parametrize(("case", "status", "error_type"), ERROR_CASES)
@pytest.mark.parametrize("d", some("openai", "azure-classic", "openrouter", "ollama"))
def test_upstream_errors_are_mapped(
    d: Dialect,
    upstreams: dict[str, Any],
    http: httpx.Client,
    case: str,
    status: int,
    error_type: str,
    stream: bool,
) -> None:
    fake = fake_of(d, upstreams)
    fake.default = error_scenario(d, case)  # retries, if any, fail the same way
    response = http.post(
        "/v1/messages", json=request_body(stream=stream), headers=headers_for(d.id)
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert payload["type"] == "error" and payload["error"]["type"] == error_type, payload
    message = payload["error"]["message"]
    if case == "429":
        assert response.headers.get("retry-after") == "7"
    elif case == "401":
        assert re.search(r"(?i)provider|upstream", message), message
        assert re.search(r"(?i)credential|api.?key|auth", message), message
        assert d.id in message, message  # names the provider to fix
    elif case == "overflow" and d.ollama:
        assert re.search(
            r"prompt is too long: \d+ tokens > \d+ maximum|"
            r"input length and `max_tokens` exceed context limit: \d+ \+ \d+ > \d+",
            message,
        ), message
    elif case == "overflow":
        assert (
            "input length and `max_tokens` exceed context limit: 120000 + 30000 > 128000" in message
        ), message
    assert fake.chat_requests(), "the request never reached the upstream"


def mid_stream_failure(d: Dialect, kind: str) -> Any:
    module: Any = ol if d.ollama else oa
    scenario = module.stream_error() if kind == "error" else module.cut_stream()
    if not d.ollama:
        scenario.flavour = d.flavour
    return scenario


@pytest.mark.parametrize("kind", ["error", "cut"])
@pytest.mark.parametrize("d", some("openai", "openrouter", "ollama"))
def test_mid_stream_failure_becomes_an_error_event(
    d: Dialect, upstreams: dict[str, Any], http: httpx.Client, kind: str
) -> None:
    fake = fake_of(d, upstreams)
    fake.default = mid_stream_failure(d, kind)
    response = http.post("/v1/messages", json=request_body(), headers=headers_for(d.id))
    assert response.status_code == 200, response.text
    frames = parse_sse(response.text)
    names = [name for name, _ in frames]
    assert names[0] == "message_start", names
    assert names[-1] == "error", names
    assert "message_stop" not in names and "message_delta" not in names, names
    assert frames[-1][1]["type"] == "error"
    assert frames[-1][1]["error"]["type"] in ("api_error", "overloaded_error"), frames[-1]
    if kind == "error" and not d.ollama:
        assert "Provider returned error" in frames[-1][1]["error"]["message"]
    texts = "".join(f["delta"].get("text", "") for n, f in frames if n == "content_block_delta")
    assert texts.startswith("Partial" if kind == "error" else "This")


@pytest.mark.parametrize("d", some("openai", "ollama"))
def test_client_disconnect_reaches_the_upstream(
    d: Dialect, upstreams: dict[str, Any], translated: Any
) -> None:
    fake = fake_of(d, upstreams)
    module: Any = ol if d.ollama else oa
    fake.default = module.slow_text(event_delay=0.25)
    with (
        httpx.Client(base_url=translated.url, timeout=TIMEOUT, trust_env=False) as raw,
        raw.stream(
            "POST", "/v1/messages", json=request_body(), headers=headers_for(d.id)
        ) as response,
    ):
        assert response.status_code == 200
        seen = b""
        for chunk in response.iter_raw():
            seen += chunk
            if b"content_block_delta" in seen:
                break
    assert fake.wait_for_disconnects(1, timeout=5), "the upstream never saw the client leave"
    assert fake.completed == 0


# --------------------------------------------------------------------------- local answers


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
@pytest.mark.parametrize("d", some("openai", "azure-v1", "ollama"))
def test_web_search_side_request_is_answered_locally(
    d: Dialect, upstreams: dict[str, Any], http: httpx.Client, stream: bool
) -> None:
    body = dict(WEB_SEARCH_BODY, **({"stream": True} if stream else {}))
    response = http.post("/v1/messages?beta=true", json=body, headers=headers_for(d.id))
    assert response.status_code == 200, response.text
    if stream:
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = parse_sse(response.text)
        names = [name for name, _ in frames]
        assert names[0] == "message_start" and names[-1] == "message_stop", names
        starts = [f["content_block"] for n, f in frames if n == "content_block_start"]
        assert [b["type"] for b in starts] == ["text"], starts
        answer = "".join(
            f["delta"].get("text", "") for n, f in frames if n == "content_block_delta"
        )
        stop = next(f for n, f in frames if n == "message_delta")["delta"]["stop_reason"]
    else:
        assert response.headers["content-type"].startswith("application/json")
        message = response.json()
        assert [b["type"] for b in message["content"]] == ["text"], message
        answer, stop = message["content"][0]["text"], message["stop_reason"]
        assert message["model"] == CLIENT_MODEL
    assert re.search(r"(?i)web search", answer), answer
    assert stop == "end_turn"
    assert upstreams["openai"].requests == [] and upstreams["ollama"].requests == []


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
@pytest.mark.parametrize("upstream", ["openai", "ollama"])
def test_tool_text_repair(
    upstreams: dict[str, Any],
    sdk: Callable[[str], anthropic.Anthropic],
    upstream: str,
    stream: bool,
) -> None:
    fake = upstreams[upstream]
    written = '{"name": "Bash", "arguments": {"command": "ls"}}'
    fake.script((ol if upstream == "ollama" else oa).text(written))
    client = sdk(f"{upstream}-repair")
    request: Any = {
        "model": CLIENT_MODEL,
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "list files"}],
        "tools": [BASH_TOOL],
    }
    if stream:
        with client.messages.stream(**request) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**request)
    uses = [b for b in message.content if b.type == "tool_use"]
    assert len(uses) == 1, message.content
    assert uses[0].name == "Bash" and uses[0].input == {"command": "ls"}
    assert uses[0].id
    assert not any(b.type == "text" and "arguments" in b.text for b in message.content)
    assert message.stop_reason == "tool_use"
    sent = fake.last_chat_request().body
    assert not sent.get("stream"), "tool_text_repair needs the whole answer"


@pytest.mark.parametrize("upstream", ["openai", "ollama"])
def test_tool_text_repair_is_off_by_default(
    upstreams: dict[str, Any], sdk: Callable[[str], anthropic.Anthropic], upstream: str
) -> None:
    written = '{"name": "Bash", "arguments": {"command": "ls"}}'
    upstreams[upstream].script((ol if upstream == "ollama" else oa).text(written))
    message = sdk(upstream).messages.create(
        model=CLIENT_MODEL,
        max_tokens=1000,
        messages=[{"role": "user", "content": "list files"}],
        tools=[BASH_TOOL],
    )
    assert [b.type for b in message.content] == ["text"], message.content
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param(MAX_OUT, "max_tokens", id="output-cap"),
        pytest.param(12, "model_context_window_exceeded", id="context-full"),
    ],
)
def test_llamacpp_length_tells_the_output_cap_from_a_full_context(
    upstreams: dict[str, Any], http: httpx.Client, output: int, expected: str, stream: bool
) -> None:
    # llama.cpp says "length" both when the answer reached max_tokens and when the context
    # filled up (B.4, B.7). The client asks for 32000; lynkr clamps it to max_output_tokens
    # (777), so 777 output tokens mean the cap was reached, 12 mean the context is full.
    upstreams["openai"].script(
        oa.text(
            "Cut short",
            finish_reason="length",
            flavour="llamacpp",
            usage={"prompt_tokens": 30, "completion_tokens": output},
        )
    )
    response = http.post(
        "/v1/messages", json=request_body(stream=stream), headers=headers_for("llamacpp")
    )
    assert response.status_code == 200, response.text
    if stream:
        frames = parse_sse(response.text)
        stop = next(f for n, f in frames if n == "message_delta")["delta"]["stop_reason"]
    else:
        stop = response.json()["stop_reason"]
    assert upstreams["openai"].last_chat_request().body["max_tokens"] == MAX_OUT
    assert stop == expected


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
def test_tool_calls_with_finish_reason_stop_are_tool_use(
    upstreams: dict[str, Any], http: httpx.Client, stream: bool
) -> None:
    # Some OpenAI-compatible servers report "stop" together with tool calls (B.4).
    upstreams["openai"].script(
        oa.tool_calls(oa.call("Bash", {"command": "ls"}, "call_stop_1"), finish_reason="stop")
    )
    body = request_body(stream=stream, tools=[BASH_TOOL])
    response = http.post("/v1/messages", json=body, headers=headers_for("openai"))
    assert response.status_code == 200, response.text
    if stream:
        frames = parse_sse(response.text)
        stop = next(f for n, f in frames if n == "message_delta")["delta"]["stop_reason"]
        blocks = [f["content_block"] for n, f in frames if n == "content_block_start"]
    else:
        stop, blocks = response.json()["stop_reason"], response.json()["content"]
    assert stop == "tool_use"
    assert [(b["type"], b["id"], b["name"]) for b in blocks] == [
        ("tool_use", "call_stop_1", "Bash")
    ]


@pytest.mark.parametrize(
    ("scenario", "status", "error_type"),
    [
        pytest.param(
            oa.openrouter_error(402, "Insufficient credits"), 402, "billing_error", id="402"
        ),
        pytest.param(
            oa.openrouter_error(408, "Upstream timed out"), 504, "timeout_error", id="408"
        ),
        pytest.param(oa.openrouter_error(502, "Model is down"), 529, "overloaded_error", id="502"),
        pytest.param(oa.error(504, "Gateway timeout"), 504, "timeout_error", id="504"),
    ],
)
def test_more_upstream_statuses_per_the_mapping_table(
    upstreams: dict[str, Any], http: httpx.Client, scenario: Any, status: int, error_type: str
) -> None:
    # docs/protocol.md B.4 error table: 402 → billing_error, 408/504 → 504 timeout_error,
    # 502/503 → 529 overloaded_error (Claude Code retries those with backoff).
    upstreams["openai"].default = scenario
    response = http.post("/v1/messages", json=request_body(), headers=headers_for("openrouter"))
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error"]["type"] == error_type, payload
