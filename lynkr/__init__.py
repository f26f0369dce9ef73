"""lynkr: run Claude Code and any Anthropic-API client against the provider you choose.

The public surface is small: the config loader, the stack builder, and the
standalone middlewares (import them from `lynkr.middleware.<name>`).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
