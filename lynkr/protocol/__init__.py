"""Pure data code for the wire protocols lynkr speaks (docs/protocol.md Part B).

Incremental SSE and NDJSON codecs, the reader of Anthropic streams that
every stream observer shares (`FrameScanner`, `MessageAccumulator`), the
Anthropic-format stream relay, the light request rewriting for
Anthropic-format upstreams, local token estimation and context-overflow
rewording. No I/O and no asyncio here: every function takes and returns
plain data, so each rule can be tested alone.
"""

from lynkr.protocol.accumulate import MessageAccumulator
from lynkr.protocol.anthropic import (
    UpstreamRewrite,
    filter_betas,
    prepare_request,
    rewrite_model_in_message,
)
from lynkr.protocol.claude_code import claude_code_session_id, conversation_fingerprint
from lynkr.protocol.frames import FrameScanner, FrameTooLarge
from lynkr.protocol.ollama import (
    OllamaOptions,
    OllamaStreamTranslator,
    ollama_to_anthropic_message,
    to_ollama_request,
)
from lynkr.protocol.openai_request import OpenAIDialect, to_openai_request
from lynkr.protocol.openai_response import to_anthropic_message
from lynkr.protocol.openai_stream import OpenAIStreamTranslator
from lynkr.protocol.overflow import rewrite_context_overflow
from lynkr.protocol.relay import AnthropicStreamRelay
from lynkr.protocol.reverse import (
    AnthropicToOpenAIStream,
    anthropic_message_to_openai,
    anthropic_models_to_openai,
    openai_request_to_anthropic,
)
from lynkr.protocol.server_tools import (
    is_server_tool,
    local_server_tool_answer,
    message_as_sse,
    strip_server_tools,
)
from lynkr.protocol.sse import NDJSONDecoder, SSEDecoder, SSEEvent, encode_event
from lynkr.protocol.tokens import estimate_input_tokens
from lynkr.protocol.tool_repair import repair_text_tool_calls

__all__ = [
    "AnthropicStreamRelay",
    "AnthropicToOpenAIStream",
    "FrameScanner",
    "FrameTooLarge",
    "MessageAccumulator",
    "NDJSONDecoder",
    "OllamaOptions",
    "OllamaStreamTranslator",
    "OpenAIDialect",
    "OpenAIStreamTranslator",
    "SSEDecoder",
    "SSEEvent",
    "UpstreamRewrite",
    "anthropic_message_to_openai",
    "anthropic_models_to_openai",
    "claude_code_session_id",
    "conversation_fingerprint",
    "encode_event",
    "estimate_input_tokens",
    "filter_betas",
    "is_server_tool",
    "local_server_tool_answer",
    "message_as_sse",
    "ollama_to_anthropic_message",
    "openai_request_to_anthropic",
    "prepare_request",
    "repair_text_tool_calls",
    "rewrite_context_overflow",
    "rewrite_model_in_message",
    "strip_server_tools",
    "to_anthropic_message",
    "to_ollama_request",
    "to_openai_request",
]
