"""Admin API for verified answers: list, create, edit, retire (admin scope).

    GET   /admin/verified[?collection=NAME&retired=true]
    POST  /admin/verified              {"question", "answer", "collection", "verified_by"}
    PATCH /admin/verified/{id}         any of those four
    POST  /admin/verified/{id}/retire

Bodies are checked by pydantic: not JSON → 400, a wrong type or an unknown field → 422, a
blank text or an unknown collection → 400, an unknown id → 404. Questions are redacted before
they are stored (core.verified); answers are stored as the admin wrote them, and redacted when
served, like every verified answer.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError
from starlette.responses import Response

from core.errors import BadRequest, InvalidType
from core.http.auth import principal
from core.schema import json_object
from core.verified.service import MAX_ANSWER, MAX_NAME, MAX_QUESTION

router = APIRouter(prefix="/admin/verified")


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(max_length=MAX_QUESTION)
    answer: StrictStr = Field(max_length=MAX_ANSWER)
    collection: StrictStr = Field(max_length=MAX_NAME)
    verified_by: StrictStr = Field(max_length=MAX_NAME)


class EditBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: StrictStr | None = Field(None, max_length=MAX_QUESTION)
    answer: StrictStr | None = Field(None, max_length=MAX_ANSWER)
    collection: StrictStr | None = Field(None, max_length=MAX_NAME)
    verified_by: StrictStr | None = Field(None, max_length=MAX_NAME)


Body = TypeVar("Body", bound=BaseModel)


def _parse(model: type[Body], raw: bytes) -> Body:
    data = json_object(raw)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "missing":
            raise BadRequest(f"{'.'.join(str(p) for p in first['loc'])} is required") from None
        raise InvalidType(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _docs(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


@router.get("", summary="Verified answers, newest first (retired ones with retired=true)")
async def list_verified(
    request: Request,
    collection: str | None = Query(None, max_length=MAX_NAME),
    retired: bool = Query(False, description="include retired answers"),
) -> Response:
    principal(request, "admin")
    verified = request.app.state.hub.verified
    rows = await verified.list(collections=None if collection is None else frozenset({collection}),
                               include_retired=retired)  # fmt: skip
    tenants = request.app.state.hub.settings.tenants
    body = {"verified": [r.as_dict() for r in rows], "collections": sorted(verified.collections),
            "tenants": {name: verified.collections_for(name) for name in sorted(tenants)},
            "threshold": verified.threshold}  # fmt: skip
    return _json(body)


@router.post("", status_code=201, summary="Save a verified answer", openapi_extra=_docs(CreateBody))
async def create(request: Request) -> Response:
    who = principal(request, "admin")
    body = _parse(CreateBody, await request.body())
    saved = await request.app.state.hub.verified.save(
        body.question, body.answer, body.collection, body.verified_by, actor=who.client, as_written=True
    )
    return _json(saved.as_dict(), 201)


@router.patch("/{answer_id}", summary="Edit a verified answer", openapi_extra=_docs(EditBody))
async def edit(request: Request, answer_id: str) -> Response:
    who = principal(request, "admin")
    body = _parse(EditBody, await request.body())
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise BadRequest("nothing to change: send question, answer, collection or verified_by")
    edited = await request.app.state.hub.verified.edit(answer_id, actor=who.client, **changes)
    return _json(edited.as_dict())


@router.post("/{answer_id}/retire", summary="Stop serving a verified answer (it stays listed as retired)")
async def retire(request: Request, answer_id: str) -> Response:
    who = principal(request, "admin")
    retired = await request.app.state.hub.verified.retire(answer_id, actor=who.client)
    return _json(retired.as_dict())
