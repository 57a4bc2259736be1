"""The HTTP app: contract routes, the portal, and the routes of adapters that are on."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

from core import logs
from core.config import Settings
from core.http import ask_routes, errors, ops_routes
from core.http.middleware import HubMiddleware
from core.hub import Hub

log = logging.getLogger("askhub.app")

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
# Adapters plug in by name: core never imports them directly (they depend on core).
ADAPTERS = ("adapters.slack", "adapters.line", "adapters.discord")


def create_app(settings: Settings) -> FastAPI:
    logs.setup(settings)
    hub = Hub(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.close()

    app = FastAPI(title="Ask Hub", version="0.1.0", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.hub = hub
    errors.install(app)
    app.include_router(ops_routes.router)
    app.include_router(ask_routes.router)
    _mount_adapters(app, hub)
    if WEB_DIR.is_dir():
        app.include_router(portal_router())
        app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
    if settings.hub_allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.hub_allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(HubMiddleware, max_body_bytes=settings.requests.max_body_bytes)
    return app


def portal_router() -> APIRouter:
    """The portal page at / (its scripts and styles under /static)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def portal() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    return router


def _mount_adapters(app: FastAPI, hub: Hub) -> None:
    for name in ADAPTERS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that adapter is not installed
            raise
        mount = getattr(module, "mount", None)
        if mount is not None and mount(app, hub):
            log.info("adapter %s mounted", name)
