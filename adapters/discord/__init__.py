"""Discord front door (discord.py): the HTTP interactions endpoint and the gateway bot.

- ``POST /discord/interactions`` (served by the hub app when ``DISCORD_PUBLIC_KEY`` is set):
  Ed25519-verified interactions — PING, `/ask` (deferred, answered through the interaction
  webhook), the 👍/👎 buttons. No bot token needed.
- The gateway bot (when ``DISCORD_BOT_TOKEN`` is set): mentions in guild channels (answered in a
  thread), DMs, `/ask` and the buttons over the websocket. ``python -m core serve`` runs it beside
  the app; ``python -m adapters.discord`` runs it on its own (the Procfile's ``discord`` process).

Modules: ``translate`` (events -> AskRequest) and ``render`` (AskResult -> messages), the two pure
converters; ``transport`` (the HTTP endpoint) and ``deferred`` (the interaction job: deferred
answers through the interaction webhook); the gateway bot: ``gateway`` (the discord.py client),
``messages`` (which messages it answers), ``channel_answer`` (the job answering one there),
``buttons`` (render payloads as discord.py objects); ``handoff`` (a customer handed to a person:
agents' replies posted with an enforced nonce).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.adapters import Loaded
    from core.inbox.door import Door

log = logging.getLogger("askhub.discord")


def load(door: Door, *, clients: bool) -> Loaded | None:
    """The interactions endpoint (DISCORD_PUBLIC_KEY) and, with ``clients``, the gateway bot
    (DISCORD_BOT_TOKEN): the bot is prepared now, so its job kinds are declared before the queue starts."""
    from core.adapters import Loaded

    settings = door.settings
    loaded = Loaded("discord")
    if settings.discord_public_key:
        from adapters.discord import transport

        loaded.routes["/discord/interactions"] = transport.endpoint(door)
    token = settings.discord_bot_token
    if door.handoff.enabled and token is not None and token.get_secret_value():
        # Agents' replies reach Discord customers from any process that handles the desk's events.
        from adapters.discord.handoff import DiscordCustomer

        channel = DiscordCustomer(door.handoff, settings.discord_api_url, token.get_secret_value())
        door.handoff.register_customer("discord", channel)
        door.on_close(channel.aclose)
    if clients and token is not None and token.get_secret_value():
        from adapters.discord.gateway import prepare, run

        bot = prepare(door)

        async def gateway() -> None:
            try:
                await run(bot)
            except Exception as exc:  # keep the app serving; say why the bot stopped
                log.error("discord gateway bot stopped", extra={"exc": type(exc).__name__, "reason": str(exc)})
                raise

        loaded.runners.append(gateway)
    return loaded if loaded.routes or loaded.runners else None
