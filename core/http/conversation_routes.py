"""GET /conversations/{conversation_id}/events: a portal conversation's events, as SSE.

While a person has the conversation (core.portal), their replies and the end notice arrive
here: ``event: agent`` / ``event: end`` with ``{"id", "kind", "text", "at"}``, each with an
``id:`` line, so a client that reconnects (``Last-Event-ID`` or ``?after=``) resumes after the
last one it saw. A conversation belongs to its asker (tenant, client, user): the same id asked
for by someone else names a different conversation, whose stream is empty. Comment keep-alives
hold the connection open through proxies while nobody writes; after ``STREAM_SEC`` the stream
ends cleanly and the client reconnects (a connection never lives for ever).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from starlette.responses import Response, StreamingResponse

from core.ask import conversation_key
from core.errors import BadRequest
from core.http import sse
from core.http.auth import principal
from core.portal.events import ConversationEvents
from core.schema import AskRequest

router = APIRouter()

MAX_ID = 128
MAX_AFTER = 64  # an event id is 24 hex characters
STREAM_SEC = 3600.0  # a stream ends after this long (the client resumes after its last event)


@router.get("/conversations/{conversation_id}/events")
async def conversation_events(conversation_id: str, request: Request, after: str | None = None) -> Response:
    who = principal(request, "ask")
    if not 1 <= len(conversation_id) <= MAX_ID:
        raise BadRequest(f"conversation_id must be 1 to {MAX_ID} characters")
    asked = AskRequest("", tenant=who.tenant, client=who.client, user=who.user, conversation_id=conversation_id)
    key = conversation_key(asked, who)
    assert key is not None
    stream = ConversationEvents.stream_of(key)
    since = after or request.headers.get("last-event-id") or None
    if since is not None and len(since) > MAX_AFTER:
        raise BadRequest(f"after must be at most {MAX_AFTER} characters")
    events = request.app.state.hub.portal.events

    async def body() -> AsyncIterator[bytes]:
        async for event in events.follow(stream, since, for_sec=STREAM_SEC):
            yield sse.frame(event.kind, event.as_dict(), event_id=event.id)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(sse.with_keepalive(body()), media_type="text/event-stream", headers=headers)
