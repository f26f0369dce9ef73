"""`lynkr.__all__` is the public API: every name loads, nothing public is missing from it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import lynkr
from lynkr.middleware import MIDDLEWARE, load_middleware


@pytest.mark.parametrize("name", lynkr.__all__)
def test_every_public_name_loads(name: str) -> None:
    assert getattr(lynkr, name) is not None


def test_every_middleware_class_is_public() -> None:
    for name in MIDDLEWARE:
        cls = load_middleware(name)
        assert getattr(lynkr, cls.__name__) is cls, cls.__name__


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = lynkr.nope  # type: ignore[attr-defined]


def test_the_version_is_the_package_metadata() -> None:
    assert lynkr.__version__ == importlib.metadata.version("lynkr")


def test_importing_lynkr_loads_nothing_else() -> None:
    code = "import sys, lynkr; print(sorted(m for m in sys.modules if m.startswith('lynkr')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['lynkr']"


def test_the_package_says_it_is_typed() -> None:
    """PEP 561: type checkers read lynkr's annotations only when `py.typed` ships with it."""
    assert (Path(lynkr.__file__).parent / "py.typed").is_file()
