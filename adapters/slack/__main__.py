"""``python -m adapters.slack``: the Slack Socket Mode bot as its own process.

For workspaces without a public URL, or to run the bot apart from the HTTP app (the Procfile's
``slack`` process). Needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN; stops cleanly on SIGTERM/SIGINT,
finishing the answers in flight.
"""

from __future__ import annotations

import asyncio
import sys

from adapters.slack import socket_configured
from core.config import ConfigError, load_settings


async def _run() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if not socket_configured(settings):
        print("config error: Slack Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN", file=sys.stderr)
        return 2
    # The heavy imports (index, models, SDKs) only once the configuration is known to be usable.
    from adapters.slack import load
    from core import logs
    from core.hub import Hub
    from core.lifecycle import run_until_stopped

    logs.setup(settings)
    hub = Hub(settings)
    loaded = load(hub, clients=True)
    assert loaded is not None
    return await run_until_stopped(hub, loaded.runners, "slack socket mode")


def main() -> int:
    return asyncio.run(_run())


if __name__ == "__main__":
    sys.exit(main())
