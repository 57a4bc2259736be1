"""The HTTP app: contract routes, the portal, and the routes of adapters that are on."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from prometheus_client import multiprocess
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from core import logs
from core.adapters import load_all
from core.config import Settings
from core.http import (
    admin_routes,
    ask_routes,
    conversation_routes,
    embeddings_routes,
    errors,
    feedback_routes,
    handoff_routes,
    openai_routes,
    ops_routes,
    responses_routes,
    source_routes,
)
from core.http.fastlane import FastLane, LaneRoute
from core.http.hosts import HostGuard
from core.http.middleware import HubMiddleware
from core.http.slow_clients import BODY_TIMEOUT_SEC
from core.http.verified_routes import router as verified_router
from core.hub import Hub
from core.metrics import MULTIPROCESS
from core.tracing import Tracing

log = logging.getLogger("askhub.app")

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
CORS_REQUEST_HEADERS = ["Authorization", "X-API-Key", "Content-Type", "X-Request-ID", "X-AskHub-Client"]
CORS_RESPONSE_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "traceparent",
]


def create_app(settings: Settings, *, run_adapters: bool = False) -> FastAPI:
    """The app. ``run_adapters`` also runs the adapters' long-lived clients (Socket Mode,
    the Discord gateway) in this process, as ``python -m core serve`` does."""
    logs.setup(settings)
    hub = Hub(settings)
    # Loading declares the adapters' job kinds (and prepares their clients) before the queue starts.
    adapters = load_all(hub, clients=run_adapters)
    runners = [run for adapter in adapters for run in adapter.runners]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        clients = [run() for run in runners]
        tasks = [asyncio.create_task(client, name="adapter-runner") for client in clients]
        # Everything loaded so far lives as long as the process: keep it out of the
        # collector's work, so collections stay short and rare under load.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await hub.close()
            if MULTIPROCESS:  # this worker's live gauges leave the combined /metrics
                multiprocess.mark_process_dead(os.getpid())

    app = HubApp(title="Ask Hub", version="0.1.0", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.lane_routes = [
        LaneRoute("/ask", "POST", ask_routes.ask),
        LaneRoute("/v1/chat/completions", "POST", openai_routes.chat_completions),
    ]
    app.max_body_bytes = settings.requests.max_body_bytes
    app.webhook_max_body_bytes = settings.requests.webhook_max_body_bytes
    app.chat_max_body_bytes = settings.requests.chat_max_body_bytes
    app.embeddings_max_body_bytes = settings.requests.embeddings_max_body_bytes
    app.allowed_origins = settings.hub_allowed_origins
    app.tracing = hub.tracing
    app.guard = HostGuard(lambda: hub.auth.demo, settings.public_url, settings.hub_allowed_hosts)
    # No redirect is built from the request's Host: a trailing slash is simply not found.
    app.router.redirect_slashes = False
    app.state.hub = hub
    errors.install(app)
    app.include_router(ops_routes.router)
    app.include_router(ask_routes.router)
    app.include_router(admin_routes.router)
    app.include_router(source_routes.router)
    app.include_router(handoff_routes.router)
    app.include_router(verified_router)
    app.include_router(feedback_routes.router)
    app.include_router(conversation_routes.router)
    app.include_router(openai_routes.router)
    app.include_router(embeddings_routes.router)
    app.include_router(responses_routes.router)
    for adapter in adapters:
        for path, endpoint in adapter.routes.items():
            app.add_api_route(path, endpoint, methods=["POST"], include_in_schema=False)
        for path, endpoint in adapter.get_routes.items():
            app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
    if WEB_DIR.is_dir():
        app.include_router(portal_router())
        app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    return app


class HubApp(FastAPI):
    """FastAPI with the hub's own outer layers: CORS (when configured), then one middleware
    for request id, body limit, metrics and errors, then the fast lane, then FastAPI."""

    lane_routes: list[LaneRoute]
    body_timeout_sec = BODY_TIMEOUT_SEC
    max_body_bytes: int
    webhook_max_body_bytes: int
    chat_max_body_bytes: int | None = None
    embeddings_max_body_bytes: int | None = None
    allowed_origins: list[str]
    guard: HostGuard
    tracing: Tracing

    def build_middleware_stack(self) -> ASGIApp:
        app: ASGIApp = FastLane(super().build_middleware_stack(), self.lane_routes)
        app = HubMiddleware(
            app,
            guard=self.guard,
            max_body_bytes=self.max_body_bytes,
            webhook_max_body_bytes=self.webhook_max_body_bytes,
            chat_max_body_bytes=self.chat_max_body_bytes,
            embeddings_max_body_bytes=self.embeddings_max_body_bytes,
            body_timeout_sec=self.body_timeout_sec,
            tracing=self.tracing,
        )
        if self.allowed_origins:
            app = CORSMiddleware(
                app,
                allow_origins=self.allowed_origins,
                allow_methods=["GET", "POST"],
                allow_headers=CORS_REQUEST_HEADERS,
                expose_headers=CORS_RESPONSE_HEADERS,
            )
        return app


def portal_router() -> APIRouter:
    """The portal at / and the admin dashboard at /admin (scripts and styles under /static)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def portal() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @router.get("/admin")
    async def admin() -> FileResponse:
        # The page holds no data: it asks /admin/stats, which wants an admin key or JWT.
        return FileResponse(WEB_DIR / "admin.html", headers={"Cache-Control": "no-cache"})

    return router
