"""The OpenAI-compatible API: POST /v1/chat/completions and GET /v1/models.

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
from starlette.responses import Response, StreamingResponse

from core.chat import parse
from core.errors import HubError
from core.http import sse
from core.http.auth import principal
from core.schema import Admission

router = APIRouter(prefix="/v1", tags=["openai"])
log = logging.getLogger("askhub.http")


def openai_error(exc: HubError) -> Response:
    body = {"error": {"message": exc.message, "type": exc.type, "param": None, "code": exc.type}}
    return Response(orjson.dumps(body), status_code=exc.status, headers=exc.headers, media_type="application/json")


@router.post("/chat/completions", summary="OpenAI-compatible chat completions (stream and non-stream)")
async def chat_completions(request: Request) -> Response:
    try:
        who = principal(request, "chat")
        chat = parse(await request.body())
        # An upstream name ("gpt-4o-mini") means the logical model that uses it: same limits and rules.
        chat = replace(chat, model=request.app.state.hub.models.resolve(chat.model))
        service = request.app.state.hub.chat
        if chat.stream:
            # A refusal (limits, the model down) within the keep-alive period is a JSON error; a
            # model still silent then gets the stream opened, kept alive while it thinks.
            opened = asyncio.ensure_future(service.stream(chat, who))
            await asyncio.wait({opened}, timeout=sse.KEEPALIVE_SEC)
            headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
            if opened.done():
                admission, _ = opened.result()
                headers.update(admission.headers())
            body = sse.with_keepalive(_events(opened))
            return StreamingResponse(body, media_type="text/event-stream", headers=headers)
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
        yield sse.data_frame({"error": {"message": exc.message, "type": exc.type, "param": None, "code": exc.type}})
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
    data = [{"id": m, "object": "model", "created": created, "owned_by": "ask-hub"} for m in ids]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")
