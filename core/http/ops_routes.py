"""Health, readiness and metrics: what load balancers and Prometheus poll."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from core.metrics import exposition

router = APIRouter()


@router.get("/healthz")
async def healthz() -> Response:
    return Response(b'{"ok":true}', media_type="application/json")


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    hub = request.app.state.hub
    missing = await hub.readiness()
    body = {"ready": not missing, "missing": missing, "models": hub.models.breaker_states()}
    # Serving, but retrieving worse (no semantic model, no fitted coefficients): say so.
    if warnings := [w for w in (getattr(part, "fallback_reason", None) for part in (hub.embedder, hub.retriever)) if w]:
        body["warnings"] = warnings
    return Response(orjson.dumps(body), status_code=200 if not missing else 503, media_type="application/json")


@router.get("/metrics")
async def metrics() -> Response:
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)
