"""render.py's message payloads as discord.py objects: the 👍/👎 buttons, embeds, arguments."""

from __future__ import annotations

from typing import Any

import discord  # the library: `adapters/` is never on sys.path, so this is not this package

from adapters.discord import render, translate
from core.inbox.door import Door
from core.metrics import ADAPTER_EVENTS


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
            self.request_id, self.rating, platform=translate.PLATFORM, user=str(interaction.user.id), tenant=tenant
        )
        ADAPTER_EVENTS.labels(translate.PLATFORM, "answered").inc()
        await interaction.response.send_message(render.thanks(str(interaction.locale)), ephemeral=True)


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
