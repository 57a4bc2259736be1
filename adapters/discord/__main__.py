"""``python -m adapters.discord``: the Discord gateway bot as a process of its own.

It shares the hub's state (limits, cache, dedupe, usage) with the other processes through
REDIS_URL; the HTTP interactions endpoint is served by the app (``python -m core serve``).
Stops cleanly on SIGTERM / SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from core import logs
from core.config import ConfigError, load_settings
from core.hub import Hub
from core.lifecycle import stop_on_signals


async def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if settings.discord_bot_token is None or not settings.discord_bot_token.get_secret_value():
        print("DISCORD_BOT_TOKEN is not set: the gateway bot needs the bot's token.", file=sys.stderr)
        return 2
    from adapters.discord import transport
    from adapters.discord.gateway import run

    logs.setup(settings)
    hub = Hub(settings)
    stop = stop_on_signals()
    await hub.start()
    bot = asyncio.create_task(run(hub), name="discord-gateway")
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([stopper, bot], return_when=asyncio.FIRST_COMPLETED)
        if bot.done():  # the bot stopped by itself: say why
            bot.result()
            return 1
        return 0
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # discord.py gave up (reconnects are its own business)
        print(f"discord gateway bot stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        for task in (stopper, bot):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await bot
        await hub.close()  # drains the queued answers first
        await transport.replies_for(hub).aclose()
        logs.flush()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
