"""The gateway client (discord.py): connects, registers `/ask`, and routes what arrives.

- Messages go to ``messages.Intake`` (decide and accept) and are answered by the
  ``discord.message`` job (``channel_answer.ChannelAnswer``) through this process's client.
- `/ask` (registered on start; guild-only with ``discord.dev_guild_id``) is deferred at once and
  answered by the same job as the HTTP interactions endpoint (``deferred.answer_interaction``).
- The 👍/👎 buttons are ``buttons.FeedbackButton`` and "Talk to a person" ``buttons.PersonButton``
  (understood after a restart).
- ``discord.Intents.default()``; the privileged message-content intent only with
  ``discord.message_content: true``. Discord delivers the text of DMs and of messages that
  mention the bot without it; with it, a handed-off thread relays messages without a mention.
- ``DISCORD_API_URL`` becomes discord.py's REST base; the gateway is ``DISCORD_GATEWAY_URL`` when
  set, else the URL ``GET /gateway/bot`` names.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from typing import Any

import discord  # the library: `adapters/` is never on sys.path, so this is not this package
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from adapters.discord import deferred, translate
from adapters.discord.buttons import FeedbackButton, PersonButton
from adapters.discord.channel_answer import ChannelAnswer
from adapters.discord.messages import JOB, Intake, Recent
from core.auth.platforms import unplaced
from core.config import ConfigError, Settings
from core.errors import HubError
from core.inbox.door import Door
from core.messages import for_error
from core.metrics import ADAPTER_EVENTS

log = logging.getLogger("askhub.discord")

PLATFORM = translate.PLATFORM
_THREAD_TYPES = (discord.ChannelType.public_thread, discord.ChannelType.private_thread,
                 discord.ChannelType.news_thread)  # fmt: skip


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py's REST at DISCORD_API_URL (a process-wide class attribute in discord.py)."""
    discord.http.Route.BASE = settings.discord_api_url.rstrip("/")


def gateway_url(value: str) -> yarl.URL:
    url = yarl.URL(value)
    if url.scheme not in ("ws", "wss") or not url.host:
        raise ConfigError(f"DISCORD_GATEWAY_URL: must be a ws:// or wss:// URL (got {value!r})")
    return url


class AskBot(discord.Client):
    def __init__(self, door: Door) -> None:
        settings = door.settings
        discord.VoiceClient.warn_dave = False  # no voice here: skip discord.py's start-up warning
        app_id = settings.discord_application_id
        intents = discord.Intents.default()  # mentions and DMs carry their text without message_content
        intents.message_content = settings.discord.message_content  # privileged: only when asked for
        super().__init__(
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),  # an answer never pings anyone
            application_id=int(app_id) if app_id else None,
        )
        self.door = door
        self.tree = app_commands.CommandTree(self)
        self._logged_in = asyncio.Event()  # jobs may arrive (from Redis) before the login
        own_threads = Recent()  # threads this process started (the cache may lag behind)
        self.intake = Intake(door, self, own_threads)
        self.answer_message = ChannelAnswer(door, self, own_threads, self._logged_in)

        @self.tree.command(name=translate.COMMAND, description="Ask the company knowledge base")
        @app_commands.describe(question="Your question")
        async def ask(interaction: discord.Interaction, question: app_commands.Range[str, 1, 2000]) -> None:
            await self.on_ask(interaction, question)

        @self.tree.error
        async def on_tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
            log.error("slash command failed", extra={"exc": type(error).__name__})

    async def setup_hook(self) -> None:
        settings = self.door.settings
        self.add_dynamic_items(FeedbackButton, PersonButton)
        self._logged_in.set()
        if settings.discord_gateway_url:
            DiscordWebSocket.DEFAULT_GATEWAY = gateway_url(settings.discord_gateway_url)
        else:
            try:
                _, url, _ = await self.http.get_bot_gateway()
                DiscordWebSocket.DEFAULT_GATEWAY = gateway_url(url)
            except (discord.GatewayNotFound, ConfigError):
                log.warning("GET /gateway/bot failed; using discord.py's default gateway")
        await self._register_commands(settings.discord.dev_guild_id)

    async def _register_commands(self, dev_guild_id: str | None) -> None:
        if dev_guild_id and not dev_guild_id.isdigit():
            raise ConfigError(f"discord.dev_guild_id: must be a guild id (digits), got {dev_guild_id!r}")
        try:
            if dev_guild_id:
                guild = discord.Object(int(dev_guild_id))
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
            else:
                await self.tree.sync()
        except discord.HTTPException as exc:  # e.g. the app lacks the applications.commands scope
            log.warning("registering /ask failed", extra={"status": exc.status, "code": exc.code})

    async def on_ready(self) -> None:
        log.info("discord gateway ready", extra={"guilds": len(self.guilds)})

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        # discord.py would print a traceback (which can quote message data); the type is enough.
        log.error("discord event failed", extra={"event": event_method, "exc": type(sys.exc_info()[1]).__name__})

    async def on_message(self, message: discord.Message) -> None:
        await self.intake.on_message(message)

    async def on_ask(self, interaction: discord.Interaction, question: str) -> None:
        """`/ask` over the gateway: deferred now, answered by the interaction job."""
        if translate.tenant_for(self.door.settings, interaction.guild_id) is None:
            unplaced(PLATFORM, translate.identity(interaction.guild_id))
            await interaction.response.send_message(translate.UNPLACED_NOTE, ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        channel = interaction.channel
        is_thread = isinstance(channel, discord.Thread) or getattr(channel, "type", None) in _THREAD_TYPES
        job = {
            "interaction_id": str(interaction.id),
            "application_id": str(interaction.application_id),
            "token": interaction.token,
            "question": question,
            "user_id": str(interaction.user.id),
            "guild_id": str(interaction.guild_id) if interaction.guild_id else None,
            "channel_id": str(interaction.channel_id),
            "conversation": translate.conversation_for_command(interaction.channel_id, is_thread, interaction.user.id),
            "request_id": uuid.uuid4().hex,
        }
        try:
            if not await self.door.inbox.accept(PLATFORM, f"interaction:{interaction.id}", deferred.JOB, job):
                ADAPTER_EVENTS.labels(PLATFORM, "duplicate").inc()
        except HubError as exc:
            ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
            await interaction.followup.send(for_error(exc, question, job["request_id"]))


def prepare(door: Door) -> AskBot:
    """The bot, with its job kinds declared: called when the adapter loads, before the queue starts,
    so that a durable queue has readers for them from the first moment."""
    settings = door.settings
    configure_endpoints(settings)
    if settings.discord_gateway_url:
        gateway_url(settings.discord_gateway_url)  # a bad URL stops here, with one clear line
    bot = AskBot(door)
    deferred.register_jobs(door)
    door.inbox.declare(JOB, bot.answer_message)
    return bot


async def run(bot: AskBot) -> None:
    """The gateway bot until cancelled (discord.py reconnects on its own)."""
    settings = bot.door.settings
    assert settings.discord_bot_token is not None
    try:
        await bot.start(settings.discord_bot_token.get_secret_value())
    except discord.LoginFailure:
        raise ConfigError("DISCORD_BOT_TOKEN: Discord refused the token") from None
    finally:
        if not bot.is_closed():
            await bot.close()
