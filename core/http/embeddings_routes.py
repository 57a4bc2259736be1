"""POST /v1/embeddings: OpenAI's embeddings API through the hub (scope ``chat``, like /v1 chat)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.responses import Response

from core.embeddings import parse
from core.errors import HubError
from core.http.auth import principal
from core.http.openai_routes import openai_error
from core.limits import end_user

router = APIRouter(prefix="/v1", tags=["openai"])
INLINE_PARSE_BYTES = 256 * 1024


@router.post("/embeddings", summary="OpenAI-compatible embeddings (limits, usage and personal-data rules apply)")
async def embeddings(request: Request) -> Response:
    try:
        who = principal(request, "chat")
        raw = await request.body()
        # Up to 8 MB of JSON: parsed (and token arrays decoded) off the event loop when large.
        wanted = parse(raw) if len(raw) <= INLINE_PARSE_BYTES else await asyncio.to_thread(parse, raw)
        who = end_user(who, wanted.body)  # a service's `user`: limited per end user
        reply = await request.app.state.hub.embeddings.create(wanted, who)
    except HubError as exc:
        request.state.error_type = exc.type
        return openai_error(exc)
    return Response(reply.body, media_type="application/json", headers=reply.admission.headers())
