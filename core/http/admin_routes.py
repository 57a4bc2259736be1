"""Admin API: usage and cost. An admin key sees every tenant; any other key, its own."""

from __future__ import annotations

import logging

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from core.errors import Forbidden
from core.http.auth import credential
from core.http.auth import principal as authenticate

router = APIRouter(prefix="/admin")
AUDIT = logging.getLogger("askhub.audit")


@router.get("/usage")
async def usage(
    request: Request,
    days: int = Query(7, ge=1, le=400, description="how many days back, today included"),
    tenant: str | None = Query(None, description="only this tenant (admins); others always see their own"),
) -> Response:
    hub = request.app.state.hub
    try:
        who = authenticate(request, "admin")
        scope_tenant = tenant
    except Forbidden:
        # Not an admin: the caller's own tenant only, whatever it asked for.
        who = hub.auth.authenticate(credential(request), scope="ask", route="/admin/usage", peer="-")
        scope_tenant = who.tenant
    AUDIT.info(
        "usage read",
        extra={"event": "admin_usage", "client": who.client, "tenant": scope_tenant or "*", "days": days},
    )
    rows = await hub.usage.report(days, scope_tenant)
    return Response(orjson.dumps({"days": days, "tenant": scope_tenant, "rows": rows}), media_type="application/json")
