"""POST /ask: the contract's question endpoint."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError
from starlette.responses import Response, StreamingResponse

from core.ask import Delta
from core.errors import BadRequest, HubError, InvalidType
from core.http import sse
from core.http.auth import principal
from core.portal.door import HandedOff
from core.schema import Admission, AskRequest, AskResult, json_object


class AskBody(BaseModel):
    """The /ask request body (documented in /openapi.json)."""

    model_config = ConfigDict(extra="ignore")

    question: StrictStr
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_k: StrictInt | None = Field(None, ge=1, le=20)
    conversation_id: StrictStr | None = Field(None, min_length=1, max_length=128)
    stream: StrictBool = False


class SourceOut(BaseModel):
    id: str
    title: str
    text: str
    score: float
    collection: str
    url: str | None = None  # present for a document synced from a source (its address there)


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class HandoffOut(BaseModel):
    """Present while the conversation is with a person: its replies come on ``events`` (SSE)."""

    state: str  # "started" (the answer is the handoff notice) or "relayed" (sent to the agent)
    events: str


class HandoffOfferOut(BaseModel):
    """On the bot's answer when this conversation can go to a person: after a 👎, sending ``send``
    as the next message (same ``conversation_id``) hands it to one."""

    send: str


class VerifiedOut(BaseModel):
    id: str
    by: str  # who verified it
    at: float  # when (epoch seconds of its last change)
    collection: str


class AskOut(BaseModel):
    question: str
    answer: str
    sources: list[SourceOut]
    model: str
    cached: bool
    usage: UsageOut
    request_id: str
    handoff: HandoffOut | None = None
    handoff_offer: HandoffOfferOut | None = None  # the bot's answer: a person is one message away
    verified: VerifiedOut | None = None  # present only on an answer a person verified


def parse_body(raw: bytes) -> AskBody:
    """Missing or blank question → 400; a value of the wrong type or range → 422."""
    data = json_object(raw)
    if data.get("question") is None:
        raise BadRequest("question is required")
    if isinstance(data.get("temperature"), bool):
        raise InvalidType("temperature: must be a number")
    try:
        return AskBody.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidType(f"{where}: {first['msg']}") from None


router = APIRouter()
log = logging.getLogger("askhub.http")


@router.post(
    "/ask",
    response_model=AskOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": AskBody.model_json_schema()}},
        }
    },
)
async def ask(request: Request) -> Response:
    who = principal(request, "ask")
    body = parse_body(await request.body())
    hub = request.app.state.hub
    ask_request = AskRequest(
        question=body.question,
        tenant=who.tenant,
        client=who.client,
        user=who.user,
        conversation_id=body.conversation_id,
        temperature=body.temperature,
        top_k=body.top_k,
        request_id=request.state.request_id,
        platform="web" if request.headers.get("x-askhub-client") == "portal" else "api",
    )
    handed = await hub.portal.answer(ask_request, who, max_chars=hub.settings.requests.max_question_chars)
    if handed is not None:
        return handed_off(handed, stream=body.stream)

    async def finish(result: AskResult) -> dict[str, Any]:
        """The answer's body; with ``handoff.on_second_no_answer`` a second "I don't know" in a row
        hands the conversation to a person, and the answer says so; else, where a person can be
        asked for, ``handoff_offer`` says how."""
        data = result.as_dict()
        say = await hub.portal.after_answer(ask_request, who, result)
        if say and ask_request.conversation_id:
            data["answer"] = f"{result.answer}\n\n{say}"
            data["handoff"] = handoff_field("started", ask_request.conversation_id)
        elif (send := hub.portal.offer(ask_request, who, result)) is not None:
            data["handoff_offer"] = {"send": send}
        return data

    if body.stream:
        admitted: list[Admission] = []
        return await stream_answer(hub.asker.stream(ask_request, who, admitted.append), admitted, finish)
    result = await hub.asker.ask(ask_request, who)
    headers = result.admission.headers() if result.admission else None
    return Response(orjson.dumps(await finish(result)), media_type="application/json", headers=headers)


def handoff_field(state: str, conversation_id: str) -> dict[str, str]:
    return {"state": state, "events": f"/conversations/{quote(conversation_id, safe='')}/events"}


def handed_off(handed: HandedOff, *, stream: bool) -> Response:
    """The answer while a person has (or takes) the conversation: one JSON body, or one ``done``."""
    result = handed.result
    data = {**result.as_dict(), "handoff": handoff_field(handed.state, handed.conversation_id)}
    headers = result.admission.headers() if result.admission else {}
    if stream:
        headers = {**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return Response(sse.frame("done", data), media_type="text/event-stream", headers=headers)
    return Response(orjson.dumps(data), media_type="application/json", headers=headers)


async def stream_answer(
    events: AsyncIterator[Delta | AskResult],
    admitted: list[Admission],
    finish: Callable[[AskResult], Awaitable[dict[str, Any]]] | None = None,
) -> Response:
    """Server-sent events: ``delta`` pieces, then ``done`` with the whole answer.

    Anything that fails before the first event (limits, bad input, the model down) is a
    normal JSON error with its status; a failure after it ends the stream with an
    ``error`` event — never a clean-looking finish. A model silent for longer than the
    keep-alive period gets the stream opened (with keep-alive comments) while it thinks."""
    first = asyncio.ensure_future(anext(events))
    await asyncio.wait({first}, timeout=sse.KEEPALIVE_SEC)
    if first.done():
        first.result()  # a refusal before the first word: a JSON error with its status
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    if admitted:
        headers.update(admitted[0].headers())

    async def body() -> AsyncIterator[bytes]:
        try:
            event: Delta | AskResult | None = await first
            while event is not None:
                if isinstance(event, Delta):
                    yield sse.frame("delta", {"text": event.text})
                else:
                    yield sse.frame("done", await finish(event) if finish else event.as_dict())
                event = await anext(events, None)
        except HubError as exc:
            yield sse.frame("error", exc.body())
        except Exception as exc:  # the response has started: the stream itself must say it failed
            log.error("stream failed", extra={"exc": type(exc).__name__})
            yield sse.frame("error", HubError("the answer was cut off").body())
        finally:
            first.cancel()  # the client left before the first word

    return StreamingResponse(sse.with_keepalive(body()), media_type="text/event-stream", headers=headers)
