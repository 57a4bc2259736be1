"""Discord front door (discord.py): the HTTP interactions endpoint and the gateway bot.

- ``POST /discord/interactions`` (mounted in the hub app when ``DISCORD_PUBLIC_KEY`` is set):
  Ed25519-verified interactions — PING, `/ask` (deferred, answered through the interaction
  webhook), the 👍/👎 buttons. No bot token needed.
- The gateway bot (when ``DISCORD_BOT_TOKEN`` is set): mentions in guild channels (answered in a
  thread), DMs, `/ask` and the buttons over the websocket. ``python -m core serve`` runs it beside
  the app; ``python -m adapters.discord`` runs it on its own (the Procfile's ``discord`` process).

Modules: ``transport`` (HTTP endpoint, interaction webhook replies), ``gateway`` (the discord.py
client), ``translate`` (event -> AskRequest), ``render`` (AskResult -> messages).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI

from core.hub import Hub

log = logging.getLogger("askhub.discord")


def mount(app: FastAPI, hub: Hub) -> bool:
    """The HTTP interactions endpoint, when DISCORD_PUBLIC_KEY is set."""
    if not hub.settings.discord_public_key:
        return False
    from adapters.discord import transport

    transport.mount(app, hub)
    return True


def runners(hub: Hub) -> list[Callable[[], Awaitable[None]]]:
    """The gateway bot, when DISCORD_BOT_TOKEN is set."""
    token = hub.settings.discord_bot_token
    if token is None or not token.get_secret_value():
        return []

    from adapters.discord.gateway import prepare, run

    bot = prepare(hub)  # its job kinds are declared now, before the queue starts

    async def gateway() -> None:
        try:
            await run(hub, bot)
        except Exception as exc:  # keep the app serving; say why the bot stopped
            log.error("discord gateway bot stopped", extra={"exc": type(exc).__name__, "reason": str(exc)})
            raise

    return [gateway]
