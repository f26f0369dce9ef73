"""Pure data code for the wire protocols lynkr speaks (PROTOCOL.md Part B).

Incremental SSE and NDJSON codecs, the Anthropic-format stream relay, the
light request rewriting for Anthropic-format upstreams, local token
estimation and context-overflow rewording. No I/O and no asyncio here: every
function takes and returns plain data, so each rule can be tested alone.
"""

from lynkr.protocol.anthropic import (
    UpstreamRewrite,
    filter_betas,
    prepare_request,
    rewrite_model_in_message,
)
from lynkr.protocol.overflow import rewrite_context_overflow
from lynkr.protocol.relay import AnthropicStreamRelay
from lynkr.protocol.sse import NDJSONDecoder, SSEDecoder, SSEEvent, encode_event
from lynkr.protocol.tokens import estimate_input_tokens

__all__ = [
    "AnthropicStreamRelay",
    "NDJSONDecoder",
    "SSEDecoder",
    "SSEEvent",
    "UpstreamRewrite",
    "encode_event",
    "estimate_input_tokens",
    "filter_betas",
    "prepare_request",
    "rewrite_context_overflow",
    "rewrite_model_in_message",
]
