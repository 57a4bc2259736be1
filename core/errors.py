"""Errors that become the contract's JSON error shape: {"error": {"type", "message"}}.

Anything the core raises on purpose is a HubError with its HTTP status; adapters turn the
same errors into polite platform messages, so the type names are stable.
"""

from __future__ import annotations

import math

MAX_RELAYED_CHARS = 2000  # an upstream's error message, as relayed


class ConfigError(Exception):
    """A setting is missing, unknown or invalid; the message is one line for the operator.

    Here, a leaf, so that core.config and the modules it uses (core.secrets) share it without
    importing each other; ``core.config.ConfigError`` is the same class."""


class HubError(Exception):
    status = 500
    type = "internal_error"

    def __init__(self, message: str, *, retry_after: float | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        if retry_after is not None:
            self.headers.setdefault("Retry-After", str(max(1, math.ceil(retry_after))))

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"type": self.type, "message": self.message}}


class BadRequest(HubError):
    status, type = 400, "invalid_request"


class UpstreamRefused(BadRequest):
    """An upstream's client error (400, 404, 413, 422) relayed as it is: its status, message,
    code, param and type (a BadRequest subclass, so the status table keeps BadRequest for 400).
    ``type`` stays the hub's own (metric labels stay bounded); ``upstream_type`` is the upstream's."""

    type = "upstream_refused"

    def __init__(
        self, status: int, message: str, *, code: str | None = None, param: str | None = None, kind: str | None = None
    ) -> None:
        super().__init__(message[:MAX_RELAYED_CHARS])
        self.status = status
        self.upstream_type = kind[:64] if isinstance(kind, str) and kind else "invalid_request_error"
        self.code = code if isinstance(code, str) else None
        self.param = param if isinstance(param, str) else None


class Unauthorized(HubError):
    status, type = 401, "unauthorized"


class Forbidden(HubError):
    status, type = 403, "forbidden"


class NotFound(HubError):
    status, type = 404, "not_found"


class MethodNotAllowed(HubError):
    status, type = 405, "method_not_allowed"


class RequestTimeout(HubError):
    status, type = 408, "request_timeout"


class PayloadTooLarge(HubError):
    status, type = 413, "payload_too_large"


class InvalidType(HubError):
    status, type = 422, "invalid_type"


class RateLimited(HubError):
    status, type = 429, "rate_limited"


class BadGateway(HubError):
    status, type = 502, "upstream_error"


class Unavailable(HubError):
    status, type = 503, "unavailable"


class UpstreamTimeout(HubError):
    status, type = 504, "upstream_timeout"


_BY_STATUS = {cls.status: cls for cls in HubError.__subclasses__()}
TYPE_BY_STATUS = {status: cls.type for status, cls in _BY_STATUS.items()}


def for_status(status: int, message: str) -> HubError:
    """The HubError for a status the framework produced (404, 405, ...)."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        err = HubError(message)
        err.status = status
        err.type = "client_error" if status < 500 else "internal_error"
        return err
    return cls(message)
