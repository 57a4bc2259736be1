"""POST /v1/responses: the OpenAI Responses API, streamed (typed server-sent events) and not.

Errors use OpenAI's shape with ``param`` and ``code`` where the hub knows them (an unknown
``previous_response_id`` is ``previous_response_not_found``), so the SDKs raise their usual
exceptions; the status codes are the hub's contract, as on chat completions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from core.errors import HubError
from core.http import sse
from core.http.auth import principal
from core.limits import end_user
from core.openai.responses import parse
from core.schema import Admission

router = APIRouter(prefix="/v1", tags=["openai"])
log = logging.getLogger("askhub.http")


def _error(exc: HubError) -> dict[str, Any]:
    return {"message": exc.message, "type": exc.type, "param": getattr(exc, "param", None),
            "code": getattr(exc, "code", None) or exc.type}  # fmt: skip


def openai_error(exc: HubError) -> Response:
    return Response(orjson.dumps({"error": _error(exc)}), status_code=exc.status, headers=exc.headers,
                    media_type="application/json")  # fmt: skip


@router.post("/responses", summary="OpenAI-compatible Responses API (text, function tools; stream and non-stream)")
async def responses(request: Request) -> Response:
    try:
        who = principal(request, "chat")
        parsed = parse(await request.body())
        who = end_user(who, parsed.body)  # a service's `user`: limited per end user, as on chat completions
        service = request.app.state.hub.responses
        if parsed.stream:
            return await sse.opened_stream(service.stream(parsed, who), _frames)
        reply, admission = await service.create(parsed, who)
    except HubError as exc:
        request.state.error_type = exc.type
        return openai_error(exc)
    return Response(reply, media_type="application/json", headers=admission.headers())


async def _frames(opened: asyncio.Future[tuple[Admission, AsyncIterator[dict[str, Any]]]]) -> AsyncIterator[bytes]:
    """Each event as ``event: <type>`` and its data; a failure after the start is an ``error``
    event (OpenAI's shape), and the stream ends without response.completed."""
    sequence = 0
    try:
        _, events = await opened
        async for event in events:
            sequence = int(event.get("sequence_number", sequence)) + 1
            yield sse.frame(str(event.get("type")), event)
    except HubError as exc:
        yield sse.frame("error", {**_error(exc), "type": "error", "sequence_number": sequence})
    except Exception as exc:  # the response has started: say it failed, never finish cleanly
        log.error("responses stream failed", extra={"exc": type(exc).__name__})
        yield sse.frame("error", {"type": "error", "sequence_number": sequence, "message": "the answer was cut off",
                                  "code": "internal_error", "param": None})  # fmt: skip
    finally:
        opened.cancel()  # the client left before the model's first word
