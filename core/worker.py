"""``python -m core worker``: answers queued chat events, with no HTTP server.

With REDIS_URL set, web processes accept and acknowledge platform events and any number of
workers answer them; on SIGTERM a worker stops taking events, finishes what it holds within
the queue's ``drain_sec`` and hands back the rest (it stays in Redis for another worker).
"""

from __future__ import annotations

import logging

from core import logs
from core.adapters import load_all
from core.config import Settings
from core.hub import Hub
from core.lifecycle import stop_on_signals
from core.probes import serve_probes

log = logging.getLogger("askhub.worker")


async def run(settings: Settings) -> None:
    logs.setup(settings)
    hub = Hub(settings)
    adapters = [adapter.name for adapter in load_all(hub, clients=False)]  # their job kinds; no routes
    if not settings.redis_url:
        log.warning("no REDIS_URL: this worker can only answer events submitted in its own process")
    stop = stop_on_signals()
    await hub.start()
    if settings.redis_url:
        hub.sources.start()  # with Redis the workers own the schedule (one sync per source at a time)
    probes = await serve_probes(hub, settings.host, settings.worker_port) if settings.worker_port else None
    log.info("worker ready", extra={"adapters": adapters})
    try:
        await stop.wait()
    finally:
        log.info("worker stopping: draining in-flight events")
        await hub.close()
        if probes is not None:
            await probes.cleanup()
