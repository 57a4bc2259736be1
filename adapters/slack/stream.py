"""The stream writer: Slack's native streaming (chat.startStream -> appendStream … -> stopStream).

The text appears as the model writes it, at most every ``STREAM_INTERVAL`` seconds; the sources
and buttons come with chat.stopStream. When Slack stops taking appends, the rest goes with the
stop; when the stop fails, the answer is posted as a message instead.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.slack import render
from adapters.slack.view import Place, View
from adapters.slack.webapi import slack_error
from core.progress import Progress
from core.schema import AskResult

log = logging.getLogger("askhub.slack")

STREAM_INTERVAL = 0.5  # seconds between chat.appendStream calls


class StreamView(View):
    def __init__(self, place: Place, ts: str) -> None:
        super().__init__(place)
        self.ts = ts
        self.sent = ""
        self.broken = False
        self.progress = Progress(self._append, interval=STREAM_INTERVAL)

    async def push(self, text: str) -> None:
        if not self.broken:
            await self.progress.push(text)

    async def _append(self, text: str) -> None:
        if not text.startswith(self.sent):
            return
        try:
            for piece in render.stream_pieces(text[len(self.sent) :]):
                await self.web.call("chat.appendStream", channel=self.channel, ts=self.ts, markdown_text=piece)
                self.sent += piece
        except SlackApiError as exc:
            self.broken = True  # the rest goes with chat.stopStream
            log.info("chat.appendStream failed", extra={"slack_error": slack_error(exc)})

    async def finish(self, result: AskResult) -> None:
        rest = result.answer[len(self.sent) :] if result.answer.startswith(self.sent) else ""
        await self._stop(rest, render.footer_blocks(result), result)

    async def fail(self, text: str) -> None:
        await self._stop(f"\n\n{text}" if self.sent else text, None, None)

    async def _stop(self, rest: str, blocks: list[dict[str, Any]] | None, result: AskResult | None) -> None:
        pieces = render.stream_pieces(rest)
        try:
            for piece in pieces[:-1]:
                await self.web.call("chat.appendStream", channel=self.channel, ts=self.ts, markdown_text=piece)
                self.sent += piece
            await self.web.call(
                "chat.stopStream",
                channel=self.channel,
                ts=self.ts,
                markdown_text=pieces[-1] if pieces else None,
                blocks=blocks,
            )
        except SlackApiError as exc:
            log.info("chat.stopStream failed; posting the answer", extra={"slack_error": slack_error(exc)})
            if result is None:
                await self.web.client.chat_postMessage(channel=self.channel, thread_ts=self.place.thread_ts, text=rest)
            else:
                await self.post_final(result)
