"""Loading the shipped example modules (examples/*.py) in the example tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> ModuleType:
    """A fresh copy of the example module `examples/<name>.py` (so each test starts with its
    own app, limiter and breakers)."""
    spec = importlib.util.spec_from_file_location(f"lynkr_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
