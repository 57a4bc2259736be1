"""The paths without streaming: a placeholder message that is edited, or the asker's response_url.

UpdateView   "Thinking…" -> the growing answer (chat.update about once a second) -> the
             final blocks; when the final update fails, the answer is posted in the thread.
             A reclaimed job takes over the dead worker's stream or placeholder this way.
RespondView  /ask in a channel the bot cannot post in: the answer goes to the asker alone.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from adapters.slack import render
from adapters.slack.view import Place, View
from adapters.slack.webapi import respond, slack_error
from core.progress import Progress
from core.schema import AskResult

log = logging.getLogger("askhub.slack")

UPDATE_INTERVAL = 1.0  # seconds between chat.update calls (Slack's rate for edits)


class UpdateView(View):
    def __init__(self, place: Place, ts: str) -> None:
        super().__init__(place)
        self.ts = ts
        self.progress = Progress(self._update, interval=UPDATE_INTERVAL)

    async def push(self, text: str) -> None:
        await self.progress.push(text)

    async def _update(self, text: str) -> None:
        try:
            await self.web.client.chat_update(channel=self.channel, ts=self.ts, text=render.progress_text(text))
        except SlackApiError as exc:  # a missed progress step is harmless; the final update matters
            log.info("progress update failed", extra={"slack_error": slack_error(exc)})

    async def finish(self, result: AskResult) -> None:
        try:
            await self.web.client.chat_update(
                channel=self.channel,
                ts=self.ts,
                text=render.notification_text(result.answer),
                blocks=render.answer_blocks(result),
            )
        except SlackApiError as exc:
            log.info("final update failed; posting the answer", extra={"slack_error": slack_error(exc)})
            await self.post_final(result)

    async def fail(self, text: str) -> None:
        await self.web.client.chat_update(channel=self.channel, ts=self.ts, text=text)


class RespondView(View):
    async def finish(self, result: AskResult) -> None:
        await respond(
            self.place.response_url or "",
            text=render.notification_text(result.answer),
            blocks=render.answer_blocks(result),
        )

    async def fail(self, text: str) -> None:
        await respond(self.place.response_url or "", text=text)
