"""Every error leaves as the contract's JSON shape, whoever raised it."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from core.errors import HubError, InvalidType, for_status


def error_response(request: Request, err: HubError) -> Response:
    request.state.error_type = err.type
    headers = dict(err.headers)
    return Response(orjson.dumps(err.body()), status_code=err.status, headers=headers, media_type="application/json")


async def _hub_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HubError)
    return error_response(request, exc)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    messages = {404: "no such route", 405: "method not allowed on this route"}
    err = for_status(exc.status_code, messages.get(exc.status_code, str(exc.detail)))
    err.headers.update(exc.headers or {})
    return error_response(request, err)


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return error_response(request, InvalidType(f"{where or 'body'}: {first.get('msg', 'invalid value')}"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(HubError, _hub_error)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation)
