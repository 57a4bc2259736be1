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
from core.errors import BadRequest, Unavailable
from core.http import sse
from core.http.auth import principal
from core.http.stream_slots import StreamSlots
from core.portal.events import ConversationEvents
from core.schema import AskRequest
from core.state import BackendUnavailable

router = APIRouter()

MAX_ID = 128
MAX_AFTER = 64  # an event id is 24 hex characters
STREAM_SEC = 3600.0  # a stream ends after this long (the client resumes after its last event)
SLOTS = StreamSlots()  # open streams per asker, in this process


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
    await events.all(stream)  # the shared state is down: a 503 (with Retry-After) before the stream starts

    async def body() -> AsyncIterator[bytes]:
        try:
            async for event in events.follow(stream, since, for_sec=STREAM_SEC):
                yield sse.frame(event.kind, event.as_dict(), event_id=event.id)
        except BackendUnavailable:  # it went away meanwhile: say so and end (the client resumes later)
            yield sse.frame("error", Unavailable("the conversation's events are unavailable right now").body())
        finally:
            slot.free()

    frames = body()
    cap = request.app.state.hub.settings.requests.max_streams_per_asker
    slot = SLOTS.take(f"{who.tenant}\x1f{who.client}\x1f{who.user}", cap, frames)  # a 429 over the cap
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(sse.with_keepalive(frames), media_type="text/event-stream", headers=headers)
