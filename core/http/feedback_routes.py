"""POST /feedback: the portal's (and any API client's) 👍 / 👎 on an answer."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from core.errors import BadRequest, InvalidType, NotFound
from core.http.auth import principal

router = APIRouter()


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    request_id: str = Field(min_length=1, max_length=128)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=1000)


@router.post("/feedback", status_code=204, openapi_extra={"requestBody": {"required": True, "content": {
    "application/json": {"schema": FeedbackBody.model_json_schema()}}}})  # fmt: skip
async def feedback(request: Request) -> Response:
    who = principal(request, "ask")
    raw = await request.body()
    try:
        body = FeedbackBody.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise BadRequest("body must be a JSON object") from None
        raise InvalidType(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    platform = "web" if request.headers.get("x-askhub-client") == "portal" else "api"
    taken = await request.app.state.hub.feedback.record(
        body.request_id,
        body.rating,
        platform=platform,
        user=who.user,
        tenant=who.tenant,
        client=who.client,
        comment=body.comment,
    )
    if not taken:  # another asker's answer looks exactly like one that never existed
        raise NotFound("no answer with this request_id was given to this client")
    return Response(status_code=204)
