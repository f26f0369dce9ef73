"""The cache key: a SHA-256 over a canonical form of the request (pure).

What is in the key (`KEY_VERSION` 1), exactly:

* ``request`` — the JSON body's top-level fields, all of them except `stream`
  and `metadata`, after three normalisations:

  - the `x-anthropic-billing-header:` block is dropped from `system` (in a
    string `system`, its first line); a `system` left empty is dropped
    (docs/protocol.md A.4: Claude Code varies that block between conversations,
    and the Anthropic adapter removes it before the upstream anyway);
  - every `cache_control` marker is removed from where the API accepts one
    (B.1): system blocks, tool definitions, message content blocks, and the
    blocks nested in a tool_result's `content` or a document's
    `source.content`. It only steers the provider's prompt cache, and Claude
    Code moves it forward each turn (A.4). A `cache_control` key anywhere
    else (inside a tool's `input` or `input_schema`) is data and stays;
  - object keys are sorted (orjson `OPT_SORT_KEYS`), so key order and
    whitespace in the client's JSON never matter. Array order does.

  So `model` (as the client sent it, before any aliasing), `system`,
  `messages`, `tools`, `tool_choice`, `temperature`, `top_p`, `top_k`,
  `stop_sequences`, `max_tokens`, `thinking`, `output_config` (effort,
  format) and `context_management` are in, as is any field this module does
  not know (a new API field may change the answer, so unknown means "in").
  `context_management` is kept: its edits change what the model sees, and a
  client repeating a request repeats it identically, so keeping it costs no
  hits. `stream` is out because a stored answer is replayed in either form;
  `metadata` is out because it names the user/session, not the question.
* ``pool`` — the provider pool already chosen by routing (the request
  context's `pool`) when the cache runs after routing, else null;
* ``headers`` — the values of the configured request headers (by default
  `anthropic-beta`, which switches model features, and `x-lynkr-pool`, which
  picks the pool when routing runs after the cache), each header's values
  split on commas, trimmed and sorted; absent headers are left out;
* ``namespace`` — a label from the middleware's options ("" by default), so
  two caches sharing one SQLite file never serve each other's entries;
* ``caller`` — the name of the auth key the request presented (the request
  context's `caller`), when an `auth` layer runs before the cache: one
  caller's answers are never served to another. Left out without auth.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from lynkr.protocol.anthropic import BILLING_PREFIX, without_billing_header

__all__ = ["BILLING_PREFIX", "EXCLUDED_FIELDS", "KEY_VERSION", "cache_key", "canonical_request"]

KEY_VERSION = 1
EXCLUDED_FIELDS = frozenset({"stream", "metadata"})


def cache_key(
    body: Mapping[str, Any],
    *,
    pool: str | None = None,
    headers: Mapping[str, Iterable[str]] | None = None,
    namespace: str = "",
    caller: str | None = None,
) -> str:
    """The hex SHA-256 of the canonical request, pool, key headers, namespace and caller.

    `caller` (the auth key's name) keeps each caller's answers their own: a
    request of key B never gets the reply cached for key A.
    """
    material = {
        "v": KEY_VERSION,
        "request": canonical_request(body),
        "pool": pool,
        "headers": _header_values(headers or {}),
        "namespace": namespace,
    }
    if caller is not None:  # absent rather than null: keys made without auth stay as they were
        material["caller"] = caller
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


def canonical_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body as the key sees it: volatile fields and markers gone (see the module docstring).

    Containers are copied only where something is removed; the body itself is never changed.
    """
    out = {key: value for key, value in body.items() if key not in EXCLUDED_FIELDS}
    system = without_billing_header(out.get("system"))
    if system:
        out["system"] = _blocks(system)
    else:
        out.pop("system", None)
    if isinstance(out.get("tools"), list):
        out["tools"] = [_unmarked(tool) for tool in out["tools"]]
    if isinstance(out.get("messages"), list):
        out["messages"] = [_message(message) for message in out["messages"]]
    return out


def _message(message: Any) -> Any:
    if isinstance(message, dict) and isinstance(message.get("content"), list):
        content = _blocks(message["content"])
        if content is not message["content"]:
            return {**message, "content": content}
    return message


def _blocks(blocks: Any) -> Any:
    """Content blocks without `cache_control`, nested ones included (tool_result, document).

    Copies only what changes (a request's blocks are walked on every request:
    most carry no marker, and the unchanged ones are shared, not rebuilt).
    """
    if not isinstance(blocks, list):
        return blocks
    out: list[Any] | None = None
    for index, block in enumerate(blocks):
        new = _block(block)
        if out is None and new is not block:
            out = blocks[:index]
        if out is not None:
            out.append(new)
    return blocks if out is None else out


def _block(block: Any) -> Any:
    if not isinstance(block, dict):
        return block
    new = _unmarked(block)
    content = block.get("content")
    if isinstance(content, list):
        inner = _blocks(content)
        if inner is not content:
            new = {**new, "content": inner}
    source = block.get("source")
    if isinstance(source, dict) and isinstance(source.get("content"), list):
        inner = _blocks(source["content"])
        if inner is not source["content"]:
            new = {**new, "source": {**source, "content": inner}}
    return new


def _unmarked(item: Any) -> Any:
    """`item` without its own `cache_control` key (a copy only when it has one)."""
    if isinstance(item, dict) and "cache_control" in item:
        return {key: value for key, value in item.items() if key != "cache_control"}
    return item


def _header_values(headers: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Each header's comma-separated values, trimmed, sorted; empty headers left out."""
    out: dict[str, list[str]] = {}
    for name, values in headers.items():
        items = sorted(
            item.strip() for value in values for item in value.split(",") if item.strip()
        )
        if items:
            out[name.lower()] = items
    return out
