"""Where an answer appears while it grows: the interface the stream and placeholder views share."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.slack import render
from adapters.slack.webapi import SlackWeb
from core.schema import AskResult


@dataclass(frozen=True, slots=True)
class Place:
    """The thread an answer goes to (``thread_ts`` None only when it goes by response_url)."""

    web: SlackWeb
    channel: str
    thread_ts: str | None
    response_url: str | None = None


class View:
    """One answer's progress message: ``push`` the growing text, then ``finish`` or ``fail``."""

    def __init__(self, place: Place) -> None:
        self.place = place
        self.web = place.web
        self.channel = place.channel

    async def push(self, text: str) -> None: ...

    async def finish(self, result: AskResult) -> None:
        raise NotImplementedError

    async def fail(self, text: str) -> None:
        raise NotImplementedError

    async def post_final(self, result: AskResult) -> None:
        """The answer as a new message in the thread (when the progress message cannot take it)."""
        await self.web.client.chat_postMessage(
            channel=self.channel,
            thread_ts=self.place.thread_ts,
            text=render.notification_text(result.answer),
            blocks=render.answer_blocks(result),
            unfurl_links=False,
        )
