"""Admin API for sources: each source's status, and "Sync now" (admin scope)."""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from core.errors import NotFound
from core.http.auth import principal as authenticate
from core.sources.sync import status_lines

router = APIRouter(prefix="/admin/sources")
AUDIT = logging.getLogger("askhub.audit")


@router.get("", summary="Each source: type, collection, last sync and its outcome, next sync, documents")
async def sources(request: Request) -> Response:
    authenticate(request, "admin")
    hub = request.app.state.hub
    rows = await asyncio.to_thread(status_lines, hub.settings)
    for row, source in zip(rows, hub.settings.sources, strict=True):
        row["every_sec"] = source.every
        row["syncing"] = source.name in hub.sources.running
        last = hub.sources.last_sync(source.name)
        due = (last or 0.0) + source.every if source.every else None  # never synced: due now
        row["next_sync"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(max(due, time.time()))) if due else None
    return Response(orjson.dumps({"sources": rows}), media_type="application/json")


@router.post("/{name}/sync", status_code=202, summary="Start a sync of one source now; its outcome shows in the list")
async def sync_now(request: Request, name: str) -> Response:
    who = authenticate(request, "admin")
    hub = request.app.state.hub
    if name not in {s.name for s in hub.settings.sources}:
        raise NotFound(f"no source named {name!r}")
    started = hub.sources.sync_now(name)
    AUDIT.info("source sync requested", extra={"event": "source_sync_now", "source": name, "client": who.client})
    body = {"source": name, "state": "started" if started else "already_syncing"}
    return Response(orjson.dumps(body), status_code=202, media_type="application/json")
