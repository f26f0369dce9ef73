"""Context-overflow rewording (overflow.py, docs/protocol.md A.9, B.4 and golden case 41)."""

from __future__ import annotations

from typing import Any

import pytest

from lynkr.protocol import rewrite_context_overflow

from ._golden import cases


@pytest.mark.parametrize("case", cases("overflow.json"))
def test_golden(case: dict[str, Any]) -> None:
    assert rewrite_context_overflow(case["input"]) == case["expected"]


@pytest.mark.parametrize("case", cases("overflow.json"))
def test_rewording_is_stable(case: dict[str, Any]) -> None:
    """Claude Code's own wordings come back unchanged, so rewriting twice is harmless."""
    if case["expected"] is not None:
        assert rewrite_context_overflow(case["expected"]) == case["expected"]
