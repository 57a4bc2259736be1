"""The OpenAI-compatible API: POST /v1/chat/completions, GET /v1/models and /v1/models/{id};
/v1/completions and /v1/moderations answer a 404 that names what the hub serves.

Errors use OpenAI's shape ({"error": {"message", "type", "param", "code"}}) so the official
SDKs raise their usual exceptions; the status codes are the hub's contract.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from core.chat import parse
from core.errors import HubError, NotFound, UpstreamRefused
from core.http import sse
from core.http.auth import principal
from core.limits import end_user
from core.schema import Admission

router = APIRouter(prefix="/v1", tags=["openai"])
log = logging.getLogger("askhub.http")


def openai_body(exc: HubError) -> dict[str, dict[str, str | None]]:
    """OpenAI's error object; an upstream's own refusal keeps its code and param."""
    if isinstance(exc, UpstreamRefused):
        return {"error": {"message": exc.message, "type": exc.upstream_type, "param": exc.param, "code": exc.code}}
    return {"error": {"message": exc.message, "type": exc.type, "param": None, "code": exc.type}}


def openai_error(exc: HubError) -> Response:
    body = openai_body(exc)
    return Response(orjson.dumps(body), status_code=exc.status, headers=exc.headers, media_type="application/json")


@router.post("/chat/completions", summary="OpenAI-compatible chat completions (stream and non-stream)")
async def chat_completions(request: Request) -> Response:
    try:
        who = principal(request, "chat")
        chat = parse(await request.body())
        who = end_user(who, chat.body)  # a service's `user`: limited per end user
        # An upstream name ("gpt-4o-mini") means the logical model that uses it: same limits and rules.
        chat = replace(chat, model=request.app.state.hub.models.resolve(chat.model))
        service = request.app.state.hub.chat
        if chat.stream:
            return await sse.opened_stream(service.stream(chat, who), _events)
        reply = await service.complete(chat, who)
    except HubError as exc:
        request.state.error_type = exc.type
        return openai_error(exc)
    return Response(reply.body, media_type="application/json", headers=reply.admission.headers())


async def _events(opened: asyncio.Future[tuple[Admission, AsyncIterator[bytes]]]) -> AsyncIterator[bytes]:
    try:
        _, lines = await opened
        async for line in lines:
            yield line
    except HubError as exc:
        yield sse.data_frame(openai_body(exc))
    except Exception as exc:  # the response has started: say it failed, never finish cleanly
        log.error("chat stream failed", extra={"exc": type(exc).__name__})
        yield b'data: {"error": {"message": "the answer was cut off", "type": "internal_error"}}\n\n'
    finally:
        opened.cancel()  # the client left before the model's first word


@router.get("/models", summary="The logical models this credential may use")
async def models(request: Request) -> Response:
    try:
        who = principal(request, "chat")
    except HubError as exc:
        return openai_error(exc)
    created = int(time.time())
    ids = request.app.state.hub.chat.model_ids(who)
    data = [_model(m, created) for m in ids]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


@router.get("/models/{model_id}", summary="One model this credential may use (an upstream name works too)")
async def model(request: Request, model_id: str) -> Response:
    try:
        who = principal(request, "chat")
        hub = request.app.state.hub
        if hub.models.resolve(model_id) not in hub.chat.model_ids(who):
            raise NotFound(f"the model '{model_id}' does not exist; GET /v1/models lists them")
    except HubError as exc:
        return openai_error(exc)
    return Response(orjson.dumps(_model(model_id, int(time.time()))), media_type="application/json")


def _model(model_id: str, created: int) -> dict[str, str | int]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "ask-hub"}


NOT_SERVED = ("/v1/completions", "/v1/moderations")


@router.post("/completions", summary="Not served: a 404 naming the /v1 routes the hub serves")
@router.post("/moderations", summary="Not served: a 404 naming the /v1 routes the hub serves")
async def not_served(request: Request) -> Response:
    """OpenAI routes the hub does not serve: a 404 that says what it does serve."""
    paths = request.app.openapi()["paths"]  # built once, then cached by FastAPI
    served = [f"{method.upper()} {p}" for p, ops in sorted(paths.items())
              if p.startswith("/v1/") and p not in NOT_SERVED for method in ops]  # fmt: skip
    path = request.url.path
    return openai_error(NotFound(f"the hub does not serve {path}; it serves {', '.join(served)}"))
