"""render.py's message payloads as discord.py objects: the 👍/👎 buttons (after a 👎, "Talk to a
person" when handoff is on), embeds, arguments."""

from __future__ import annotations

from typing import Any

import discord  # the library: `adapters/` is never on sys.path, so this is not this package

from adapters.discord import person, render, translate
from core.auth.platforms import unplaced
from core.errors import HubError
from core.inbox.door import Door
from core.messages import for_error
from core.metrics import ADAPTER_EVENTS

THREAD_TYPES = (discord.ChannelType.public_thread, discord.ChannelType.private_thread,
                discord.ChannelType.news_thread)  # fmt: skip


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
        if tenant is None:
            unplaced(translate.PLATFORM, translate.identity(interaction.guild_id))
            await interaction.response.defer()
            return
        await door.feedback.record(
            self.request_id, self.rating, platform=translate.PLATFORM, user=str(interaction.user.id), tenant=tenant
        )
        ADAPTER_EVENTS.labels(translate.PLATFORM, "answered").inc()
        locale = str(interaction.locale)
        conversation = _conversation(interaction) if self.rating == "down" else None
        extra: dict[str, Any] = {}
        if conversation is not None and person.offered(door, tenant):  # after a 👎: a person, one press away
            extra["view"] = person_view(conversation, str(interaction.id), locale)
        await interaction.response.send_message(render.thanks(locale), ephemeral=True, **extra)


class PersonButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=translate.PERSON_TEMPLATE):
    """The "Talk to a person" button on the thanks for a 👎: its custom_id names the conversation and the 👎
    click, so a press is understood after a restart and a second press is the same handoff."""

    def __init__(self, conversation: str, press: str, label: str = "") -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.primary,
                label=label or render.person_label(None),
                custom_id=translate.person_custom_id(conversation, press),
            )
        )
        self.conversation, self.press = conversation, press

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any, /
    ) -> PersonButton:
        return cls(match["conversation"], match["press"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Acknowledged at once (the thanks is edited into the notice by the ``person`` job)."""
        door: Door = interaction.client.door  # type: ignore[attr-defined]
        tenant = translate.tenant_for(door.settings, interaction.guild_id)
        custom_id = translate.person_custom_id(self.conversation, self.press)
        named = translate.parse_person(custom_id, interaction.channel_id)  # pressed where it names
        await interaction.response.defer()  # a deferred update of the message the button is on
        if tenant is None:
            unplaced(translate.PLATFORM, translate.identity(interaction.guild_id))
            return
        if named is None or not person.offered(door, tenant):
            ADAPTER_EVENTS.labels(translate.PLATFORM, "ignored").inc()
            return
        job = person.job_of(
            interaction_id=interaction.id,
            application_id=interaction.application_id,
            token=interaction.token,
            conversation=self.conversation,
            press=self.press,
            channel_id=interaction.channel_id,
            guild_id=interaction.guild_id,
            user_id=interaction.user.id,
            locale=interaction.locale,
        )
        ADAPTER_EVENTS.labels(translate.PLATFORM, "received").inc()
        try:
            if not await door.inbox.accept(translate.PLATFORM, f"interaction:{interaction.id}", person.JOB, job):
                ADAPTER_EVENTS.labels(translate.PLATFORM, "duplicate").inc()
        except HubError as exc:
            ADAPTER_EVENTS.labels(translate.PLATFORM, "failed").inc()
            await interaction.followup.send(for_error(exc, ""), ephemeral=True)


def _conversation(interaction: discord.Interaction) -> str | None:
    """The conversation of the answer the 👎 was pressed on (``translate.answer_conversation``)."""
    channel, message = interaction.channel, interaction.message
    thread = isinstance(channel, discord.Thread) or getattr(channel, "type", None) in THREAD_TYPES
    by_command = message is not None and (message.interaction_metadata is not None or message.webhook_id is not None)
    reference = message.reference if message is not None else None
    return translate.answer_conversation(
        interaction.channel_id,
        user_id=interaction.user.id,
        dm=interaction.guild_id is None,
        thread=thread,
        by_command=by_command,
        reply_to=reference.message_id if reference is not None else None,
    )


def person_view(conversation: str, press: str, locale: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(PersonButton(conversation, press, render.person_label(locale)))
    return view


def feedback_view(request_id: str) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for rating, _ in render.BUTTONS:
        view.add_item(FeedbackButton(rating, request_id))
    return view


def message_kwargs(message: dict[str, Any], request_id: str) -> dict[str, Any]:
    """A render payload as discord.py arguments."""
    kwargs: dict[str, Any] = {"content": message["content"]}
    if message.get("embeds"):
        kwargs["embed"] = discord.Embed.from_dict(message["embeds"][0])
    if message.get("components"):
        kwargs["view"] = feedback_view(request_id)
    return kwargs
