"""Admin API: usage and cost (an admin key sees every tenant; any other key, its own), dashboard
data, feedback, and client keys by expiry."""

from __future__ import annotations

import logging
from dataclasses import asdict

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from core.auth import keys
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


WINDOWS = {"hour": (60, 1), "day": (1440, 5)}  # minutes shown, minutes per point


@router.get("/stats", summary="Dashboard data: series, totals, tenants, breakers, recent questions")
async def stats(request: Request, window: str = Query("hour", pattern="^(hour|day)$")) -> Response:
    authenticate(request, "admin")
    hub = request.app.state.hub
    minutes, bucket = WINDOWS[window]
    data = await hub.stats.window(minutes, bucket)
    votes = {f["request_id"]: f["rating"] for f in reversed(await hub.feedback.recent(5000))}
    recent = [{**row, "feedback": votes.get(row.get("request_id"))} for row in await hub.stats.recent(50)]
    body = {"window": window, **data, "breakers": hub.models.breaker_states(), "recent": recent}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/feedback", summary="Recent 👍 / 👎 with their request ids")
async def feedback(request: Request, limit: int = Query(100, ge=1, le=5000)) -> Response:
    authenticate(request, "admin")
    rows = await request.app.state.hub.feedback.recent(limit)
    return Response(orjson.dumps({"feedback": rows}), media_type="application/json")


@router.get("/keys", summary="Client keys by expiry, soonest first: client, fingerprint, end (never a key)")
async def key_expiries(request: Request) -> Response:
    who = authenticate(request, "admin")
    hub = request.app.state.hub
    AUDIT.info("keys read", extra={"event": "admin_keys", "client": who.client})
    rows = [
        {**asdict(row), "expires": row.expires.isoformat() if row.expires else None}
        for row in hub.auth.clients.expiries(keys.today())
    ]
    body = {"keys": rows, "warning_days": keys.EXPIRY_WARNING_DAYS}
    return Response(orjson.dumps(body), media_type="application/json")
