"""Golden cases for the protocol tests: JSON files under `golden/`, one case per entry.

Each case is `{"name", "input", "options"?, "expected"}`; `cases()` turns a
file into pytest parameters with the case name as the test id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"


def load(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


def cases(name: str) -> list[Any]:
    return [pytest.param(case, id=case["name"]) for case in load(name)]
