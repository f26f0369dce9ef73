"""Properties of the OpenAI translators (docs/protocol.md B.3–B.5), checked on generated data.

1. Anthropic → OpenAI → a simulated upstream echoing each assistant turn →
   Anthropic keeps roles, tool ids, names, arguments and result contents,
   whether the echo comes whole (B.4) or streamed in any fragments (B.5).
2. However the upstream's SSE bytes are cut, the Anthropic events are the same.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from lynkr.protocol.openai_request import OpenAIDialect, to_openai_request
from lynkr.protocol.openai_response import to_anthropic_message

from ._openai import assemble, events, sse, translate

Json = dict[str, Any]

SETTINGS = settings(max_examples=60, deadline=None)
TOOLS = ["Bash", "Read", "Edit", "Grep"]
DIALECT = OpenAIDialect(model="up-model")

texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts
inputs = st.dictionaries(
    st.text(min_size=1, max_size=6), scalars | st.lists(scalars, max_size=3), max_size=3
)
images = st.builds(
    lambda data: {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": data},
    },
    st.text("ABCDEFabcdef0123456789+/", min_size=4, max_size=8),
)


def text(value: str) -> Json:
    return {"type": "text", "text": value}


@st.composite
def tool_result(draw: st.DrawFn, tool_id: str) -> Json:
    content = draw(st.one_of(texts, st.just(""), st.lists(texts.map(text) | images, max_size=3)))
    result: Json = {"type": "tool_result", "tool_use_id": tool_id, "content": content}
    if draw(st.booleans()):
        result["is_error"] = draw(st.booleans())
    return result


@st.composite
def conversations(draw: st.DrawFn) -> Json:
    """A valid CC-like conversation: user, then rounds of assistant (text and tool_use) and user."""
    ids = (f"toolu_{n:02d}" for n in itertools.count())
    first = draw(st.lists(texts.map(text) | images, min_size=1, max_size=3))
    messages: list[Json] = [{"role": "user", "content": first}]
    for _ in range(draw(st.integers(1, 3))):
        calls: list[Json] = [
            {
                "type": "tool_use",
                "id": next(ids),
                "name": draw(st.sampled_from(TOOLS)),
                "input": draw(inputs),
            }
            for _ in range(draw(st.integers(0, 3)))
        ]
        lead = draw(st.lists(texts.map(text), min_size=0 if calls else 1, max_size=2))
        messages.append({"role": "assistant", "content": lead + calls})
        results = draw(st.permutations([draw(tool_result(call["id"])) for call in calls]))
        after = draw(st.lists(texts.map(text), min_size=0 if calls else 1, max_size=2))
        messages.append({"role": "user", "content": [*results, *after]})
    body: Json = {"model": "claude-x", "max_tokens": 1000, "messages": messages}
    if draw(st.booleans()):
        body["system"] = draw(st.lists(texts.map(text), min_size=1, max_size=2))
    return body


def expected_result_text(result: Json) -> str:
    """B.3's tool_result rows, restated: texts and `[image]` joined with "\\n", "Error: " prefix."""
    content = result["content"]
    if isinstance(content, list):
        content = "\n".join("[image]" if b["type"] == "image" else b["text"] for b in content)
    if result.get("is_error"):
        return f"Error: {content}" if content else "Error"
    return str(content)


def echo_stream(message: Json, cuts: list[int]) -> bytes:
    """The upstream streaming `message` back: text and each call's arguments in fragments."""
    chunks: list[Json] = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    content = message["content"] or ""
    for piece in _split(content, cuts):
        chunks.append({"choices": [{"index": 0, "delta": {"content": piece}}]})
    for index, call in enumerate(message.get("tool_calls", [])):
        function = call["function"]
        for n, piece in enumerate(_split(function["arguments"], cuts) or [""]):
            item: Json = {"index": index, "function": {"arguments": piece}}
            if n == 0:
                item.update(id=call["id"], type="function")
                item["function"]["name"] = function["name"]
            chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [item]}}]})
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    return sse(chunks)


def _split(value: str, cuts: list[int]) -> list[str]:
    points = sorted({cut % (len(value) + 1) for cut in cuts} | {0, len(value)})
    return [value[a:b] for a, b in itertools.pairwise(points) if b > a]


@SETTINGS
@given(conversations(), st.lists(st.integers(0, 200), max_size=6))
def test_round_trip_through_a_simulated_upstream(body: Json, cuts: list[int]) -> None:
    sent = to_openai_request(body, DIALECT)["messages"]
    if "system" in body:
        assert sent.pop(0) == {
            "role": "system",
            "content": "\n\n".join(b["text"] for b in body["system"]),
        }
    position = 0
    calls: list[str] = []
    for original in body["messages"]:
        blocks = original["content"]
        if original["role"] == "assistant":
            reply = sent[position]
            assert reply["role"] == "assistant"
            position += 1
            joined = "".join(b["text"] for b in blocks if b["type"] == "text")
            expected = [text(joined)] if joined else []
            expected += [b for b in blocks if b["type"] == "tool_use"]
            upstream = {"id": "c", "choices": [{"message": reply, "finish_reason": "stop"}]}
            assert to_anthropic_message(upstream, model="claude-x")["content"] == expected
            streamed, translator = translate([echo_stream(reply, cuts)], model="claude-x")
            assert translator.completed
            assert assemble(events(streamed))["content"] == expected
            calls = [b["id"] for b in blocks if b["type"] == "tool_use"]
            continue
        results = {b["tool_use_id"]: b for b in blocks if b["type"] == "tool_result"}
        tool_messages = sent[position : position + len(results)]
        assert [m["tool_call_id"] for m in tool_messages] == [c for c in calls if c in results]
        for sent_result in tool_messages:
            assert sent_result["content"] == expected_result_text(
                results[sent_result["tool_call_id"]]
            )
        position += len(results)
        if position < len(sent) and sent[position]["role"] == "user":
            _check_user(sent[position], blocks)
            position += 1
    assert position == len(sent)


def _check_user(sent: Json, blocks: list[Json]) -> None:
    """The user message after the tool messages: tool-result images, then the turn's own blocks."""
    tool_images = [
        b
        for r in blocks
        if r["type"] == "tool_result" and isinstance(r["content"], list)
        for b in r["content"]
        if b["type"] == "image"
    ]
    own = [b for b in blocks if b["type"] != "tool_result"]
    content = sent["content"]
    if isinstance(content, str):
        assert not tool_images
        assert content == "\n".join(b["text"] for b in own)
        return
    urls = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
    wanted = [*tool_images, *(b for b in own if b["type"] == "image")]
    assert len(urls) == len(wanted)
    assert [p["text"] for p in content if p["type"] == "text"] == (
        ["Images from tool results:"] if tool_images else []
    ) + [b["text"] for b in own if b["type"] == "text"]


# --- property 2: the SSE byte boundaries do not matter ---------------------------------------


@st.composite
def upstream_streams(draw: st.DrawFn) -> tuple[bytes, list[Json]]:
    """An OpenAI stream: reasoning, text, tool calls (sequential, interleaved or index-reusing),
    a finish_reason, maybe a usage chunk, comments and CRLF line endings; and the content
    blocks it means."""
    chunks: list[Any] = []
    thinking = draw(st.lists(texts, max_size=3))
    for piece in thinking:
        chunks.append({"choices": [{"index": 0, "delta": {"reasoning_content": piece}}]})
    content = draw(st.lists(texts, max_size=3))
    for piece in content:
        chunks.append({"choices": [{"index": 0, "delta": {"content": piece}}]})
    blocks: list[Json] = (
        [{"type": "thinking", "thinking": "".join(thinking), "signature": ""}] if thinking else []
    )
    blocks += [text("".join(content))] if content else []
    calls = draw(st.lists(st.tuples(st.sampled_from(TOOLS), inputs), max_size=3))
    reuse = draw(st.booleans())
    fragments = []
    for n, (name, tool_input) in enumerate(calls):
        arguments = orjson.dumps(tool_input).decode()
        middle = draw(st.integers(0, len(arguments)))
        index = 0 if reuse else n
        head = {"index": index, "id": f"call_{n}", "type": "function"}
        fragments.append([{**head, "function": {"name": name, "arguments": arguments[:middle]}}])
        fragments[-1].append({"index": index, "function": {"arguments": arguments[middle:]}})
        blocks.append({"type": "tool_use", "id": f"call_{n}", "name": name, "input": tool_input})
    if draw(st.booleans()) and not reuse:  # interleave: all first halves, then all second halves
        order = [part[0] for part in fragments] + [part[1] for part in fragments]
    else:
        order = [item for part in fragments for item in part]
    for item in order:
        chunks.append({"choices": [{"index": 0, "delta": {"tool_calls": [item]}}]})
    finish = draw(st.sampled_from(["stop", "tool_calls", "length", None]))
    if finish is not None:
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    if draw(st.booleans()):
        usage = {"prompt_tokens": draw(st.integers(0, 999)), "completion_tokens": 3}
        chunks.append({"choices": [], "usage": usage})
    stream = sse(chunks, done=draw(st.booleans()))
    if draw(st.booleans()):
        stream = b": OPENROUTER PROCESSING\n\n" + stream.replace(b"\n", b"\r\n")
    return stream, blocks


@SETTINGS
@given(upstream_streams(), st.lists(st.integers(0, 10_000), max_size=8))
def test_any_chunking_gives_the_same_events(
    upstream: tuple[bytes, list[Json]], cuts: list[int]
) -> None:
    stream, blocks = upstream
    whole, translator = translate([stream], model="claude-x", message_id="msg_test")
    points = sorted({cut % (len(stream) + 1) for cut in cuts} | {0, len(stream)})
    pieces = [stream[a:b] for a, b in itertools.pairwise(points)]
    again, other = translate(pieces, model="claude-x", message_id="msg_test")
    assert again == whole
    assert (other.completed, other.errored) == (translator.completed, translator.errored)
    assert translator.completed != translator.errored
    if translator.completed:
        assert assemble(events(whole))["content"] == blocks
