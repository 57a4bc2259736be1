"""``python -m core serve``: uvicorn with the settings' host and port."""

from __future__ import annotations

import sys

import uvicorn

from core.config import Settings
from core.http.hosts import is_loopback


def serve(settings: Settings) -> int:
    if not settings.auth_enabled and not is_loopback(settings.host):
        print(
            f"refusing to listen on {settings.host}: no client keys are configured (local demo mode), "
            "so the hub would answer anyone. Set HUB_API_KEYS or HOST=127.0.0.1.",
            file=sys.stderr,
        )
        return 2
    if not settings.auth_enabled:
        print(
            "*** LOCAL DEMO MODE: no client keys configured, so no authentication; "
            "listening on loopback only. Set HUB_API_KEYS to turn authentication on. ***",
            file=sys.stderr,
        )
    from core.http.app import create_app
    from core.http.slow_clients import BoundedHeaders

    uvicorn.run(
        create_app(settings, run_adapters=True),
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level="warning",
        loop="uvloop",
        http=BoundedHeaders,  # a client's headers must arrive in time (core/http/slow_clients.py)
        server_header=False,
    )
    return 0
