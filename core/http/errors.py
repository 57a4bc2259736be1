"""Every error leaves as the contract's JSON shape, whoever raised it: one renderer.

``as_hub_error`` decides what an exception means for the caller — a HubError as it is, a
shared-state outage a 503 with Retry-After, a framework 404/405/422 their contract type,
anything unexpected the contract's JSON 500 — and ``json_response`` renders it. FastAPI's
exception handlers (every route, including the Exception fallback Starlette's outer
ServerErrorMiddleware uses) and the hub middleware (the fast lane, and anything raised
outside FastAPI) both go through them. A client that hung up is no error at all (None).
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from core.errors import HubError, InvalidType, Unavailable, for_status
from core.state import BackendUnavailable

CLIENT_CLOSED = 499  # the status counted (never sent) for a client that hung up: not a server error
_FRAMEWORK_MESSAGES = {404: "no such route", 405: "method not allowed on this route"}


def as_hub_error(exc: BaseException) -> HubError | None:
    """What ``exc`` means for the caller; None for a client disconnect (nobody is listening)."""
    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, ClientDisconnect):
        return None
    if isinstance(exc, BackendUnavailable):
        return Unavailable("shared state is unavailable; try again shortly", retry_after=5)
    if isinstance(exc, StarletteHTTPException):
        err = for_status(exc.status_code, _FRAMEWORK_MESSAGES.get(exc.status_code, str(exc.detail)))
        err.headers.update(exc.headers or {})
        return err
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return InvalidType(f"{where or 'body'}: {first.get('msg', 'invalid value')}")
    return HubError("internal error; quote the request id")


def expected(exc: BaseException) -> bool:
    """True for what the hub raises on purpose (no ERROR log line, no traceback)."""
    return isinstance(exc, HubError | BackendUnavailable | ClientDisconnect | StarletteHTTPException
                      | RequestValidationError)  # fmt: skip


def json_body(err: HubError) -> bytes:
    return orjson.dumps(err.body())


def json_response(err: HubError) -> Response:
    return Response(json_body(err), status_code=err.status, headers=dict(err.headers), media_type="application/json")


async def _handle(request: Request, exc: Exception) -> Response:
    err = as_hub_error(exc)
    if err is None:  # the client is gone: nobody reads this; it is counted as 499, not 500
        return Response(status_code=CLIENT_CLOSED)
    request.state.error_type = err.type
    return json_response(err)


def install(app: FastAPI) -> None:
    for kind in (HubError, BackendUnavailable, ClientDisconnect, StarletteHTTPException, RequestValidationError):
        app.add_exception_handler(kind, _handle)
    app.add_exception_handler(Exception, _handle)  # Starlette's ServerErrorMiddleware: JSON, not text/plain
