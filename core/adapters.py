"""How core finds the platform adapters without depending on them.

An adapter is a package ``adapters/<platform>/`` whose ``__init__`` offers one function:

    def load(door: Door, *, clients: bool) -> Loaded | None
        When the platform's credentials are configured: declare its job kinds with
        ``door.inbox`` (now, before the hub starts: a late kind is refused) and return its
        HTTP routes and, with ``clients``, the long-running clients (Slack Socket Mode, the
        Discord gateway bot) to run beside the app. None when the platform is off.

``python -m core serve`` loads with clients; ``uvicorn core.app:app`` without (run
``python -m adapters.<platform>`` for those; with handoff on, that process also declares the
other configured adapters' job kinds, without their clients); ``python -m core worker`` loads the same
declarations and serves no route. Core imports adapters by name only, so adapters depend
on core and never the reverse.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType

from starlette.requests import Request
from starlette.responses import Response

from core.config import Settings
from core.inbox.door import Door

log = logging.getLogger("askhub.adapters")

ADAPTERS = (
    "adapters.slack",
    "adapters.line",
    "adapters.discord",
    "adapters.whatsapp",
    "adapters.telegram",
    "adapters.teams",
)
Endpoint = Callable[[Request], Awaitable[Response]]
Runner = Callable[[], Awaitable[None]]


@dataclass
class Loaded:
    """What a loaded adapter adds to a process: POST routes (path -> endpoint), GET routes (a
    webhook's verification challenge: WhatsApp's) and clients."""

    name: str
    routes: dict[str, Endpoint] = field(default_factory=dict)
    get_routes: dict[str, Endpoint] = field(default_factory=dict)
    runners: list[Runner] = field(default_factory=list)


def installed() -> list[ModuleType]:
    modules = []
    for name in ADAPTERS:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that adapter is not part of this installation
            raise
    return modules


def load_all(door: Door, *, clients: bool) -> list[Loaded]:
    """Every configured adapter, its job kinds declared."""
    loaded = []
    for module in installed():
        got = module.load(door, clients=clients)
        if got is not None:
            log.info("adapter %s loaded", got.name)
            loaded.append(got)
    return loaded


def run_alone(module: str, name: str, configured: Callable[[Settings], str | None]) -> int:
    """``python -m adapters.<platform>``: one adapter's clients in a process of their own.

    ``configured`` names what is missing (or None): checked before anything heavy loads."""
    import asyncio

    from core import logs
    from core.config import ConfigError, load_settings
    from core.lifecycle import config_error, run_until_stopped

    try:
        settings = load_settings()
    except ConfigError as exc:
        return config_error(exc)
    missing = configured(settings)
    if missing:
        return config_error(ConfigError(missing))

    async def main() -> int:
        from core.hub import Hub

        logs.setup(settings)
        hub = Hub(settings)
        loaded = importlib.import_module(module).load(hub, clients=True)
        assert loaded is not None and loaded.runners, f"{module} configured but nothing to run"
        if hub.handoff.enabled:
            # A handoff joins two adapters (Slack's desk, a customer's LINE or Discord): whichever
            # job this process takes, it can reach the other side. Their routes and clients stay off.
            for other in installed():
                if other.__name__ != module:
                    other.load(hub, clients=False)
        return await run_until_stopped(hub, loaded.runners, name)

    return asyncio.run(main())
