"""How core finds the platform adapters without depending on them.

An adapter is a package ``adapters/<platform>/`` whose ``__init__`` offers:

    def mount(app: FastAPI, hub: Hub) -> bool
        When the platform's credentials are configured: add its HTTP routes to the app and
        register its job handlers with ``hub.jobs``. Returns True when it did.

    def runners(hub: Hub) -> list[Callable[[], Awaitable[None]]]
        Long-running clients (Slack Socket Mode, the Discord gateway) to run beside the
        app, when configured. ``python -m core serve`` runs them; ``uvicorn core.app:app``
        with many workers does not (run ``python -m adapters.<platform>`` for those).

Core imports them by name only, so adapters depend on core and never the reverse.
"""

from __future__ import annotations

import importlib
from types import ModuleType

ADAPTERS = ("adapters.slack", "adapters.line", "adapters.discord")


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
