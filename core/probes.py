"""/healthz, /readyz and /metrics for processes that serve no HTTP app (``python -m core worker``).

Kubernetes probes and Prometheus reach a worker the way they reach a web process. A small
aiohttp site on the worker's loop: unlike a second uvicorn server it installs no signal
handlers, so SIGTERM still drains the queue through the worker's own handler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from core.metrics import exposition

if TYPE_CHECKING:
    from core.hub import Hub


async def serve_probes(hub: Hub, host: str, port: int) -> web.AppRunner:
    """Start the probe endpoints; the caller cleans the returned runner up at shutdown."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def readyz(_: web.Request) -> web.Response:
        missing = await hub.readiness()
        body = {"ready": not missing, "missing": missing, "models": hub.models.breaker_states()}
        if warnings := [w for w in (getattr(p, "fallback_reason", None) for p in (hub.embedder, hub.retriever)) if w]:
            body["warnings"] = warnings  # serving, but retrieving worse: as the web process's /readyz says
        return web.json_response(body, status=200 if not missing else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/readyz", readyz), web.get("/metrics", metrics)])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
