"""The gateway bot (discord.py): mentions in guild channels, DMs, `/ask`, and the 👍/👎 buttons.

- A mention in a guild channel is answered in a thread started from the question; the thread is
  the conversation (``discord:<thread id>``), so a message in a thread the bot created is a
  follow-up even without a mention. DMs are answered in the DM (``discord:<channel id>``).
- Only ``discord.Intents.default()``: no privileged intent. Discord delivers the text of DMs and
  of messages that mention the bot without the message-content intent; a thread follow-up
  without a mention arrives empty then, and the bot asks (once per thread) to be mentioned.
- While it works: a typing indicator, then the answer growing in its message (edited at most
  once a second, ``core.progress.Progress``), then the final messages of at most 2,000
  characters, the last with the sources embed and the 👍/👎 buttons.
- `/ask` (registered on start; guild-only with ``discord.dev_guild_id``) is deferred at once and
  answered by the same job as the HTTP interactions endpoint (``transport.answer_interaction``).
- ``DISCORD_API_URL`` becomes discord.py's REST base; the gateway is ``DISCORD_GATEWAY_URL`` when
  set, else the URL ``GET /gateway/bot`` names.

Events are accepted through the core inbox (claimed, queued as plain-data jobs); the job answers
through this process's client. What it opened (the thread, the progress message, the parts sent)
is noted, so a worker that reclaims the job after a crash finishes that answer, never a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import uuid
from collections import OrderedDict
from typing import Any

import discord  # the library: `adapters/` is never on sys.path, so this is not this package
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from adapters.discord import render, translate, transport
from core.ask import Delta
from core.config import ConfigError, Settings
from core.errors import HubError
from core.inbox import Answer
from core.inbox.door import Door
from core.messages import for_error, polite
from core.metrics import ADAPTER_EVENTS
from core.progress import Progress
from core.schema import AskRequest, AskResult

log = logging.getLogger("askhub.discord")

PLATFORM = translate.PLATFORM
JOB = "discord.message"
ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)
PROGRESS_INTERVAL = 1.0  # Discord allows about one edit a second per message


def configure_endpoints(settings: Settings) -> None:
    """Point discord.py's REST at DISCORD_API_URL (a process-wide class attribute in discord.py)."""
    discord.http.Route.BASE = settings.discord_api_url.rstrip("/")


def gateway_url(value: str) -> yarl.URL:
    url = yarl.URL(value)
    if url.scheme not in ("ws", "wss") or not url.host:
        raise ConfigError(f"DISCORD_GATEWAY_URL: must be a ws:// or wss:// URL (got {value!r})")
    return url


class FeedbackButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=translate.FEEDBACK_TEMPLATE):
    """A 👍 or 👎 button; its custom_id carries the rating and the answer's request id, so a click
    is understood after a restart and whichever transport sent the answer."""

    def __init__(self, rating: translate.Rating, request_id: str) -> None:
        emoji = dict(render.BUTTONS)[rating]
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                emoji=emoji,
                custom_id=translate.feedback_custom_id(request_id, rating),
            )
        )
        self.rating: translate.Rating = rating
        self.request_id = request_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> FeedbackButton:
        return cls("up" if match["rating"] == "up" else "down", match["request_id"])

    async def callback(self, interaction: discord.Interaction) -> None:
        door: Door = interaction.client.door  # type: ignore[attr-defined]
        tenant = translate.tenant_for(door.settings, interaction.guild_id)
        await door.feedback.record(
            self.request_id, self.rating, platform=PLATFORM, user=str(interaction.user.id), tenant=tenant
        )
        ADAPTER_EVENTS.labels(PLATFORM, "answered").inc()
        await interaction.response.send_message(render.thanks(str(interaction.locale)), ephemeral=True)


def feedback_view(request_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for rating, _ in render.BUTTONS:
        view.add_item(FeedbackButton(rating, request_id))
    return view


def _message_kwargs(message: dict[str, Any], request_id: str) -> dict[str, Any]:
    """A render payload as discord.py arguments."""
    kwargs: dict[str, Any] = {"content": message["content"]}
    if message.get("embeds"):
        kwargs["embed"] = discord.Embed.from_dict(message["embeds"][0])
    if message.get("components"):
        kwargs["view"] = feedback_view(request_id)
    return kwargs


class _Recent:
    """The last ``size`` ids seen (a bounded set: a long-running bot must not grow without limit)."""

    def __init__(self, size: int = 10_000) -> None:
        self._ids: OrderedDict[int, None] = OrderedDict()
        self._size = size

    def add(self, item: int) -> None:
        self._ids[item] = None
        self._ids.move_to_end(item)
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def __contains__(self, item: object) -> bool:
        return item in self._ids


class AskBot(discord.Client):
    def __init__(self, door: Door) -> None:
        settings = door.settings
        discord.VoiceClient.warn_dave = False  # no voice here: skip discord.py's start-up warning
        app_id = settings.discord_application_id
        super().__init__(
            intents=discord.Intents.default(),  # no message_content: mentions and DMs carry text anyway
            allowed_mentions=discord.AllowedMentions.none(),  # an answer never pings anyone
            application_id=int(app_id) if app_id else None,
        )
        self.door = door
        self.tree = app_commands.CommandTree(self)
        self._logged_in = asyncio.Event()  # jobs may arrive (from Redis) before the login
        self._own_threads = _Recent()  # threads this process started (the cache may lag behind)
        self._hinted = _Recent()  # threads where the bot asked to be mentioned

        @self.tree.command(name=translate.COMMAND, description="Ask the company knowledge base")
        @app_commands.describe(question="Your question")
        async def ask(interaction: discord.Interaction, question: app_commands.Range[str, 1, 2000]) -> None:
            await self.on_ask(interaction, question)

        @self.tree.error
        async def on_tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
            log.error("slash command failed", extra={"exc": type(error).__name__})

    # -- start --

    async def setup_hook(self) -> None:
        settings = self.door.settings
        self.add_dynamic_items(FeedbackButton)
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

    # -- messages --

    def _is_own_thread(self, channel: Any) -> bool:
        assert self.user is not None
        if channel.id in self._own_threads:
            return True
        return isinstance(channel, discord.Thread) and channel.owner_id == self.user.id

    def _mentions_me(self, message: discord.Message) -> bool:
        assert self.user is not None
        if any(user.id == self.user.id for user in message.mentions):
            return True
        # People often pick the bot's managed role from the autocomplete instead of the bot.
        return any(role.tags is not None and role.tags.bot_id == self.user.id for role in message.role_mentions)

    async def on_message(self, message: discord.Message) -> None:
        me = self.user
        if (
            me is None
            or message.author.id == me.id
            or message.author.bot
            or message.webhook_id is not None
            or message.type not in ANSWERED_TYPES
        ):
            ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
            return
        dm = isinstance(message.channel, discord.DMChannel)
        guild_id = message.guild.id if message.guild else getattr(message.channel, "guild_id", None)
        in_thread = isinstance(message.channel, discord.Thread) or message.channel.id in self._own_threads
        mentioned = self._mentions_me(message)
        own_thread = not dm and self._is_own_thread(message.channel)
        if not (dm or mentioned or own_thread):
            ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
            return
        question = translate.strip_mentions(message.content, me.id)
        if not question:
            await self._no_text(message, withheld=own_thread and not mentioned and not dm)
            return
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        event_id = f"message:{message.id}"
        job = {
            "message_id": str(message.id),
            "channel_id": str(message.channel.id),
            "guild_id": str(guild_id) if guild_id else None,
            "user_id": str(message.author.id),
            "question": question,
            "dm": dm,
            "in_thread": in_thread,
            "request_id": uuid.uuid4().hex,
        }
        try:
            if not await self.door.inbox.accept(PLATFORM, event_id, JOB, job):
                ADAPTER_EVENTS.labels(PLATFORM, "duplicate").inc()
        except HubError as exc:
            ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
            with contextlib.suppress(discord.HTTPException):
                await message.reply(for_error(exc, question, job["request_id"]), mention_author=False)

    async def _no_text(self, message: discord.Message, *, withheld: bool) -> None:
        """A message addressed to the bot with no text it can read."""
        assert self.user is not None
        if withheld:  # a thread follow-up without a mention: Discord withheld its text
            if message.channel.id in self._hinted or message.attachments:
                ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
                return
            self._hinted.add(message.channel.id)
            text = render.content_hint(self.user.id)
        else:  # an image, a sticker, or a bare mention
            text = polite("text_only")
        ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
        with contextlib.suppress(discord.HTTPException):
            await message.channel.send(text)

    async def answer_message(self, job: dict[str, Any]) -> None:
        """The job: find where to answer (a new thread, the thread, the DM), then answer there."""
        await self._logged_in.wait()
        event_id = f"message:{job['message_id']}"
        async with self.door.inbox.answer(PLATFORM, event_id) as answer:
            try:
                await self._answer_message(job, answer)
            except discord.HTTPException as exc:
                log.error("discord reply failed", extra={"event": event_id, "exc": type(exc).__name__})
                ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
                answer.give_back()  # unless the user has (part of) an answer: a redelivery must not repeat it
                return
        ADAPTER_EVENTS.labels(PLATFORM, "answered").inc()

    async def _answer_message(self, job: dict[str, Any], answer: Answer) -> None:
        event_id = f"message:{job['message_id']}"
        channel_id, message_id = int(job["channel_id"]), int(job["message_id"])
        guild_id = int(job["guild_id"]) if job.get("guild_id") else None
        channel: Any = self.get_channel(channel_id) or self.get_partial_messageable(channel_id, guild_id=guild_id)
        question_message = channel.get_partial_message(message_id)
        target, conversation, reference = channel, str(channel_id), None
        if answer.opened.get("thread"):  # an attempt that died had started the thread: answer there
            thread_id = int(answer.opened["thread"])
            target, conversation = self.get_partial_messageable(thread_id, guild_id=guild_id), str(thread_id)
        elif not job["dm"] and not job["in_thread"]:
            try:
                target = await question_message.create_thread(
                    name=render.thread_name(job["question"]), auto_archive_duration=1440
                )
                self._own_threads.add(target.id)
                conversation = str(target.id)
                await answer.note(thread=str(target.id))
            except (discord.HTTPException, ValueError) as exc:
                # No permission to create threads here (or not a text channel): reply in place.
                log.warning("thread not created", extra={"event": event_id, "exc": type(exc).__name__})
                conversation, reference = f"{channel_id}:{message_id}", question_message
        request = translate.ask_request(
            self.door.settings,
            question=job["question"],
            user_id=job["user_id"],
            guild_id=guild_id,
            channel_id=target.id,
            conversation=conversation,
            request_id=job["request_id"],
        )
        await self._answer(target, request, reference, answer)

    async def _answer(self, target: Any, request: AskRequest, reference: Any, answer: Answer) -> None:
        """Stream the answer into target: progress in one message, then the final messages.

        The progress message and the parts sent are noted; a reclaimed job edits that message
        and skips those parts."""
        sent: Any = None
        if answer.opened.get("progress"):
            sent = target.get_partial_message(int(answer.opened["progress"]))

        async def show(text: str) -> None:
            nonlocal sent
            if sent is None:
                sent = await target.send(render.progress(text), reference=reference, mention_author=False)
                answer.shown()
                await answer.note(progress=str(sent.id))
            else:  # a lost progress edit is harmless: the final edit follows
                with contextlib.suppress(discord.HTTPException):
                    await sent.edit(content=render.progress(text))

        shown = Progress(show, interval=PROGRESS_INTERVAL)
        text = ""
        async with target.typing():
            try:
                result: AskResult | None = None
                async for event in self.door.asker.stream(request):
                    if isinstance(event, Delta):
                        text += event.text
                        await shown.push(text)
                    else:
                        result = event
                assert result is not None
                messages = render.answer_messages(result)
            except HubError as exc:
                messages = [render.text_message(for_error(exc, request.question, request.request_id))]
            except discord.HTTPException:
                raise
            except Exception as exc:
                log.error("ask failed", extra={"request_id": request.request_id, "exc": type(exc).__name__})
                messages = [render.text_message(polite("error", request_id=request.request_id))]
        for n, message in enumerate(messages):
            if n and n <= answer.opened.get("parts", 0):
                continue  # sent by an attempt that died
            kwargs = _message_kwargs(message, request.request_id)
            if n == 0 and sent is not None:
                await sent.edit(**kwargs)
            else:
                await target.send(**kwargs, reference=reference if n == 0 else None, mention_author=False)
            answer.shown()
            if n:
                await answer.note(parts=n)

    # -- /ask --

    async def on_ask(self, interaction: discord.Interaction, question: str) -> None:
        await interaction.response.defer(thinking=True)
        event_id = f"interaction:{interaction.id}"
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        channel = interaction.channel
        is_thread = isinstance(channel, discord.Thread) or getattr(channel, "type", None) in (
            discord.ChannelType.public_thread,
            discord.ChannelType.private_thread,
            discord.ChannelType.news_thread,
        )
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
            if not await self.door.inbox.accept(PLATFORM, event_id, transport.JOB, job):
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
    transport.register_jobs(door)
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
