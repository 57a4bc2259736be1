"""``python -m adapters.discord``: the Discord gateway bot as a process of its own.

It shares the hub's state (limits, cache, dedupe, usage) with the other processes through
REDIS_URL; the HTTP interactions endpoint is served by the app (``python -m core serve``).
Stops cleanly on SIGTERM / SIGINT.
"""

from __future__ import annotations

import asyncio
import sys

from core import logs
from core.config import ConfigError, load_settings
from core.hub import Hub
from core.lifecycle import run_until_stopped


async def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if settings.discord_bot_token is None or not settings.discord_bot_token.get_secret_value():
        print("DISCORD_BOT_TOKEN is not set: the gateway bot needs the bot's token.", file=sys.stderr)
        return 2
    from adapters.discord import load

    logs.setup(settings)
    hub = Hub(settings)
    loaded = load(hub, clients=True)
    assert loaded is not None
    return await run_until_stopped(hub, loaded.runners, "discord gateway bot")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
