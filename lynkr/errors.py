"""The exceptions lynkr raises, and how each one looks on the wire.

Every failure a client can see is a subclass of `LynkrError`; each subclass
knows its HTTP status and its Anthropic `error.type`, so one function turns any
of them into the body the client's API expects (docs/architecture.md, "Errors").

Exception tree:

    LynkrError                     500  api_error
    ├── ClientError                400  invalid_request_error   (the request is wrong)
    │   ├── AuthenticationError    401  authentication_error
    │   ├── BillingError           402  billing_error
    │   ├── PermissionDenied       403  permission_error
    │   ├── NotFound               404  not_found_error
    │   ├── RequestTooLarge        413  request_too_large
    │   └── RateLimited            429  rate_limit_error
    ├── Overloaded                 529  overloaded_error        (lynkr itself is full)
    └── UpstreamError              502  api_error               (a provider failed us)
        ├── UpstreamConnectError   502  api_error               (refused, DNS, TLS)
        ├── UpstreamTimeout        504  timeout_error
        ├── UpstreamOverloaded     529  overloaded_error
        └── UpstreamRateLimited    429  rate_limit_error

    ConfigError                    (not a wire error: a bad lynkr.yaml, raised at load)

Messages say what was wrong and how to fix it. They never carry a secret, a
stack trace or a local path of the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

__all__ = [
    "AuthenticationError",
    "BillingError",
    "ClientError",
    "ConfigError",
    "ConfigIssue",
    "LynkrError",
    "NotFound",
    "Overloaded",
    "PermissionDenied",
    "RateLimited",
    "RequestTimeout",
    "RequestTooLarge",
    "UpstreamConnectError",
    "UpstreamError",
    "UpstreamOverloaded",
    "UpstreamRateLimited",
    "UpstreamTimeout",
    "anthropic_error_body",
    "error_type_for_status",
    "openai_error_body",
]


class LynkrError(Exception):
    """Base class: a failure that becomes an API error response."""

    status_code: int = 500
    error_type: str = "api_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Extra response headers, e.g. `retry-after` (never secrets).
        self.headers: dict[str, str] = dict(headers or {})

    def to_body(self) -> bytes:
        return anthropic_error_body(self.error_type, self.message)


class ClientError(LynkrError):
    status_code = 400
    error_type = "invalid_request_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, headers=headers)
        if status_code is not None:
            self.status_code = status_code


class AuthenticationError(ClientError):
    status_code = 401
    error_type = "authentication_error"


class BillingError(ClientError):
    status_code = 402
    error_type = "billing_error"


class PermissionDenied(ClientError):
    status_code = 403
    error_type = "permission_error"


class NotFound(ClientError):
    status_code = 404
    error_type = "not_found_error"


class RequestTimeout(ClientError):
    """The client did not send its whole request body in time (`server.limits`)."""

    status_code = 408
    error_type = "timeout_error"


class RequestTooLarge(ClientError):
    status_code = 413
    error_type = "request_too_large"


class RateLimited(ClientError):
    status_code = 429
    error_type = "rate_limit_error"


class Overloaded(LynkrError):
    status_code = 529
    error_type = "overloaded_error"


class UpstreamError(LynkrError):
    """A provider answered badly or not at all; the client's request may be fine."""

    status_code = 502
    error_type = "api_error"

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, headers=headers)
        self.provider = provider
        if status_code is not None:
            self.status_code = status_code


class UpstreamConnectError(UpstreamError):
    pass


class UpstreamTimeout(UpstreamError):
    status_code = 504
    error_type = "timeout_error"


class UpstreamOverloaded(UpstreamError):
    status_code = 529
    error_type = "overloaded_error"


class UpstreamRateLimited(UpstreamError):
    status_code = 429
    error_type = "rate_limit_error"


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config file, located for a human and for CI annotations."""

    file: str
    line: int
    column: int
    path: str
    message: str
    # "warning": the config works but is unsafe; `lynkr validate --strict` fails on it.
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        kind = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.column}: {kind}{where}{self.message}"


class ConfigError(Exception):
    """A config file could not be loaded; carries every issue found, not just the first."""

    def __init__(self, issues: Sequence[ConfigIssue], *, unreadable: bool = False) -> None:
        self.issues = list(issues)
        # Unreadable: the file is missing or not YAML at all (`lynkr validate` exits 2).
        self.unreadable = unreadable
        super().__init__("\n".join(str(issue) for issue in self.issues))


_TYPE_FOR_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for_status(status: int) -> str:
    """Anthropic's `error.type` for an HTTP status (docs/protocol.md B.1's table).

    Other 4xx are invalid_request.
    """
    if status in _TYPE_FOR_STATUS:
        return _TYPE_FOR_STATUS[status]
    return "invalid_request_error" if status < 500 else "api_error"


def anthropic_error_body(error_type: str, message: str, request_id: str | None = None) -> bytes:
    body: dict[str, object] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return orjson.dumps(body)


_OPENAI_TYPE = {
    "invalid_request_error": "invalid_request_error",
    "authentication_error": "authentication_error",
    "permission_error": "permission_error",
    "not_found_error": "not_found_error",
    "request_too_large": "invalid_request_error",
    "rate_limit_error": "rate_limit_exceeded",
    "overloaded_error": "server_error",
    "timeout_error": "timeout",
    "api_error": "server_error",
}


def openai_error_body(error_type: str, message: str) -> bytes:
    """The OpenAI error shape, for routes that speak the OpenAI API."""
    kind = _OPENAI_TYPE.get(error_type, "server_error")
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": kind}})
