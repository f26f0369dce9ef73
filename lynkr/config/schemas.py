"""The JSON Schemas lynkr ships: packaged with the wheel, or read from the source tree."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["packaged_schema"]


@cache
def packaged_schema(filename: str) -> dict[str, Any]:
    """The schema `filename` (e.g. "lynkr.schema.json"), parsed once per process."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_schema", here.parent / "schema"):
        path = candidate / filename
        if path.is_file():
            loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return loaded
    raise FileNotFoundError(f"{filename} is missing from this installation")
