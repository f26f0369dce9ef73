"""Micro benchmark: the validation middleware's shape check, passing and refusing.

    .venv/bin/python benchmarks/validation.py            # ≈ 20 s
    .venv/bin/python benchmarks/validation.py --quick    # ≈ 6 s, noisier

What `_Shape.check` costs on the realistic 78 KB Claude Code body (`payloads.py`), with
`jsonschema`'s `is_valid` beside it for scale, then what a refusal costs — the check plus
the message — for bodies chosen to be expensive: large, deep, or with an error in every
block. CPU µs per call, the minimum over a few batches (`micro.cpu_per_call`); the bodies
are parsed dicts, as the middleware holds them after `orjson.loads`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lynkr.errors import ClientError
from lynkr.middleware.validation import _shape

sys.path.insert(0, str(Path(__file__).resolve().parent))
from micro import cpu_per_call
from payloads import claude_code_request


def _refused(body: dict[str, Any]) -> Callable[[], str]:
    shape = _shape("messages_request")

    def once() -> str:
        try:
            shape.check(body)
        except ClientError as error:
            return error.message
        raise AssertionError("the body passed")

    return once


def _user(content: Any) -> dict[str, Any]:
    return {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": content}]}


def _refusals() -> dict[str, dict[str, Any]]:
    big = [{"type": "text", "text": "x" * 2000} for _ in range(15_000)]  # ~29 MB
    deep: Any = {"type": "text"}  # no text: the error is at the leaf, ~200 levels down
    for _ in range(100):
        deep = {"type": "tool_result", "tool_use_id": "t", "content": [deep]}
    cc = claude_code_request()
    no_model = {key: value for key, value in cc.items() if key != "model"}
    no_tool_use_id = claude_code_request()
    last_result = [
        block
        for message in no_tool_use_id["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block["type"] == "tool_result"
    ][-1]
    del last_result["tool_use_id"]
    return {
        "78 KB Claude Code body, no model": no_model,
        "78 KB, its last tool_result without tool_use_id": no_tool_use_id,
        "256 KB, 131k numbers as content blocks": _user([1] * 131_000),
        "29 MB, the last block without text": _user([*big[:-1], {"type": "text"}]),
        "29 MB, no model": {"max_tokens": 1, "messages": _user(big)["messages"]},
        "deep: 100 nested tool_results, leaf bad": _user([deep]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    seconds, repeats = (0.15, 3) if args.quick else (0.4, 5)

    body = claude_code_request()
    raw = orjson.dumps(body)
    shape = _shape("messages_request")
    reference = Draft202012Validator(shape.document)
    print(f"passing, {len(raw) // 1024} KB Claude Code body:")
    for name, once in (
        ("jsonschema-rs `_Shape.check` (what lynkr runs)", lambda: shape.check(body)),
        ("jsonschema `is_valid` (for scale)", lambda: reference.is_valid(body)),
        ("orjson.loads of the same body (for scale)", lambda: orjson.loads(raw)),
    ):
        print(f"  {name:50s} {cpu_per_call(once, seconds=seconds, repeats=repeats) * 1e6:9.1f} µs")
    print("refusing (check + message):")
    for name, refused in _refusals().items():
        once = _refused(refused)
        spent = cpu_per_call(once, seconds=seconds, repeats=repeats)
        print(f"  {name:50s} {spent * 1e6:9.1f} µs  {once()[:50]}")


if __name__ == "__main__":
    main()
