"""Admin API for handoffs: the open ones, oldest first (admin scope). No customer id, name or words:
platform, tenant, why it started, how long it has waited, who took it, where it is on the desk."""

from __future__ import annotations

import logging

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from core.http.auth import principal as authenticate

router = APIRouter(prefix="/admin")
AUDIT = logging.getLogger("askhub.audit")


@router.get("/handoffs", summary="Open handoffs to a person, oldest first")
async def open_handoffs(request: Request) -> Response:
    who = authenticate(request, "admin")
    hub = request.app.state.hub
    AUDIT.info("handoffs read", extra={"event": "admin_handoffs", "client": who.client})
    rows = await hub.handoff.listing() if hub.handoff.enabled else []
    body = {"enabled": hub.handoff.enabled, "handoffs": rows}
    return Response(orjson.dumps(body), media_type="application/json")
