"""POST /v1/embeddings: OpenAI's embeddings API through the hub (scope ``chat``, like /v1 chat)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from core.embeddings import parse
from core.errors import HubError
from core.http.auth import principal
from core.http.openai_routes import openai_error

router = APIRouter(prefix="/v1", tags=["openai"])


@router.post("/embeddings", summary="OpenAI-compatible embeddings (limits, usage and personal-data rules apply)")
async def embeddings(request: Request) -> Response:
    try:
        who = principal(request, "chat")
        wanted = parse(await request.body())
        reply = await request.app.state.hub.embeddings.create(wanted, who)
    except HubError as exc:
        request.state.error_type = exc.type
        return openai_error(exc)
    return Response(reply.body, media_type="application/json", headers=reply.admission.headers())
