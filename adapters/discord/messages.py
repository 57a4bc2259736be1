"""Which gateway messages the bot answers, and accepting them into the core inbox.

Answered: DMs, messages that mention the bot (or its managed role) and, without a mention,
messages in a thread the bot started — and, with ``discord.message_content``, in any thread a
person has (handed off), which then go to that person. Never: the bot itself, other bots, webhooks, system
messages. A message it cannot read (no text: an image, or a thread follow-up whose text Discord
withheld without the message-content intent) gets a short hint instead of a job.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import OrderedDict
from typing import Any

import discord  # the library: `adapters/` is never on sys.path, so this is not this package

from adapters.discord import handoff, render, translate
from core.auth.platforms import unplaced
from core.errors import HubError
from core.handoff import Customer
from core.inbox.door import Door
from core.messages import for_error, polite
from core.metrics import ADAPTER_EVENTS

PLATFORM = translate.PLATFORM
JOB = "discord.message"
ANSWERED_TYPES = (discord.MessageType.default, discord.MessageType.reply)

log = logging.getLogger("askhub.discord")


class Recent:
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


class Intake:
    """``on_message`` of one bot: decide, then claim and queue (the answer is channel_answer's job)."""

    def __init__(self, door: Door, client: discord.Client, own_threads: Recent) -> None:
        self.door, self.client = door, client
        self.own_threads = own_threads  # threads this process started (the cache may lag behind)
        self._hinted = Recent()  # threads where the bot asked to be mentioned

    def _is_own_thread(self, channel: Any) -> bool:
        assert self.client.user is not None
        if channel.id in self.own_threads:
            return True
        return isinstance(channel, discord.Thread) and channel.owner_id == self.client.user.id

    def _mentions_me(self, message: discord.Message) -> bool:
        assert self.client.user is not None
        me = self.client.user.id
        if any(user.id == me for user in message.mentions):
            return True
        # People often pick the bot's managed role from the autocomplete instead of the bot.
        return any(role.tags is not None and role.tags.bot_id == me for role in message.role_mentions)

    async def on_message(self, message: discord.Message) -> None:
        me = self.client.user
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
        in_thread = isinstance(message.channel, discord.Thread) or message.channel.id in self.own_threads
        mentioned = self._mentions_me(message)
        own_thread = not dm and self._is_own_thread(message.channel)
        reads_all = self.door.settings.discord.message_content  # Discord withholds no text
        if not (dm or mentioned or own_thread or (reads_all and in_thread and await self._with_person(message))):
            ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
            return
        if translate.tenant_for(self.door.settings, guild_id) is None:
            unplaced(PLATFORM, translate.identity(guild_id))  # seen, never answered, never in a tenant
            return
        question = translate.strip_mentions(message.content, me.id)
        kind = "text"
        if not question:
            # While a person has a DM or thread, a sticker or an image goes to them as a note.
            readable = dm or (in_thread and (mentioned or reads_all))
            note = handoff.note_of(message) if self.door.handoff.enabled and readable else None
            if note is None:
                await self._no_text(message, withheld=own_thread and not mentioned and not dm and not reads_all)
                return
            kind, question = note
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        job = {
            "message_id": str(message.id),
            "channel_id": str(message.channel.id),
            "guild_id": str(guild_id) if guild_id else None,
            "user_id": str(message.author.id),
            "question": question,
            "dm": dm,
            "in_thread": in_thread,
            "request_id": uuid.uuid4().hex,
            "kind": kind,
        }
        try:
            if not await self.door.inbox.accept(PLATFORM, f"message:{message.id}", JOB, job):
                ADAPTER_EVENTS.labels(PLATFORM, "duplicate").inc()
        except HubError as exc:
            ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
            with contextlib.suppress(discord.HTTPException):
                await message.reply(for_error(exc, question, job["request_id"]), mention_author=False)

    async def _with_person(self, message: discord.Message) -> bool:
        """A thread a person has (handed off by an earlier mention): the rest of it goes to them too."""
        if not self.door.handoff.enabled:
            return False
        guild_id = message.guild.id if message.guild else getattr(message.channel, "guild_id", None)
        tenant = translate.tenant_for(self.door.settings, guild_id)
        if tenant is None:
            return False
        customer = Customer(platform=PLATFORM, tenant=tenant, conversation=str(message.channel.id))
        return await self.door.handoff.with_person(customer)

    async def _no_text(self, message: discord.Message, *, withheld: bool) -> None:
        """A message addressed to the bot with no text it can read."""
        assert self.client.user is not None
        if withheld:  # a thread follow-up without a mention: Discord withheld its text
            if message.channel.id in self._hinted or message.attachments:
                ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
                return
            self._hinted.add(message.channel.id)
            text = render.content_hint(self.client.user.id)
        else:  # an image, a sticker, or a bare mention
            text = polite("text_only")
        ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
        with contextlib.suppress(discord.HTTPException):
            await message.channel.send(text)
