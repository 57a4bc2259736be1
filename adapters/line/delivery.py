"""How an answer goes out on LINE: by reply while the token is fresh, else by push.

The reply token is valid for ``line.reply_within_sec`` after the event's timestamp (and once);
later, or when LINE refuses the token ("Invalid reply token": expired or used), the answer is
pushed with the event's retry key, so a push retried after a lost response is delivered once.
A reply answered with a 5xx (or not at all) may have gone out: it is retried with the same
token, and "used" then means it had. Courtesy messages (greeting, "text only", thanks) go by
reply only: they are not worth the monthly push quota.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Literal

import aiohttp
from linebot.v3.messaging import ApiException, Message
from prometheus_client import Counter

from adapters.line.api import LineApi, retry_key
from adapters.line.translate import Chat, Incoming
from core.config import Settings
from core.inbox import Answer
from core.metrics import REGISTRY

log = logging.getLogger("askhub.line")

REPLY_RETRY_PAUSE_SEC = 0.3
ReplyOutcome = Literal["sent", "refused", "failed", "unknown"]  # refused: token expired or used

DELIVERIES = Counter(
    "hub_line_deliveries_total",
    "LINE answers by how they went out (reply, push) and reply tokens LINE refused (expired_token)",
    ["method"],
    registry=REGISTRY,
)


def _invalid_token(exc: ApiException) -> bool:
    return exc.status == 400 and "invalid reply token" in str(exc.body or "").lower()


class Delivery:
    def __init__(self, api: LineApi, settings: Settings) -> None:
        self.api = api
        self._settings = settings

    async def answer(self, incoming: Incoming, chat: Chat, messages: list[Message], answer: Answer) -> bool:
        """By reply while the token is fresh, else by push (whose retry key makes a repeat harmless).

        The reply is noted before it is sent, and again once LINE took it. A worker that reclaims
        the job after a crash mid-reply tries the token again while it is fresh (refused then as
        used: the reply had gone out); once it is stale, LINE cannot say whether that reply went
        out, and the answer is pushed: an answer twice is better than none, and the push's retry
        key keeps it at most twice."""
        opened = answer.opened
        if opened.get("replied"):
            return True  # LINE took it; the worker died before the event was marked done
        if opened.get("reply"):
            if self._fresh(incoming):
                if await self._reply_once(incoming, messages) in ("sent", "refused"):
                    DELIVERIES.labels("reply").inc()
                    return True
            else:
                log.warning("the reply in flight at a crash is unconfirmed and its token stale; pushing",
                            extra={"event_id": incoming.event_id})  # fmt: skip
        elif self._fresh(incoming):
            await answer.note(reply=True)
            if await self.courtesy(incoming, messages):
                await answer.note(replied=True)
                return True
        if await self.api.push(chat.id, messages, retry_key(incoming.event_id)):
            DELIVERIES.labels("push").inc()
            return True
        return False

    def _fresh(self, incoming: Incoming) -> bool:
        deadline = incoming.timestamp_ms / 1000 + self._settings.line.reply_within_sec
        return incoming.reply_token is not None and time.time() < deadline

    async def courtesy(self, incoming: Incoming, messages: list[Message]) -> bool:
        """By reply only; True when it went out. A LINE 5xx or a lost answer leaves that unknown, and a
        reply has no retry key, so the token is tried once more while fresh: refused then as
        used, the first attempt had gone out, and no push follows to say it twice."""
        if not self._fresh(incoming):
            return False
        outcome = await self._reply_once(incoming, messages)
        if outcome == "unknown" and self._fresh(incoming):
            await asyncio.sleep(REPLY_RETRY_PAUSE_SEC)
            outcome = await self._reply_once(incoming, messages)
            if outcome == "refused":
                log.info("the first reply had gone out", extra={"event_id": incoming.event_id})
                outcome = "sent"
        elif outcome == "refused":
            DELIVERIES.labels("expired_token").inc()
        if outcome != "sent":
            return False
        DELIVERIES.labels("reply").inc()
        return True

    async def _reply_once(self, incoming: Incoming, messages: list[Message]) -> ReplyOutcome:
        assert incoming.reply_token is not None
        try:
            await self.api.reply(incoming.reply_token, messages)
            return "sent"
        except ApiException as exc:
            if _invalid_token(exc):
                log.info("reply token refused", extra={"event_id": incoming.event_id})
                return "refused"
            log.warning("reply failed", extra={"event_id": incoming.event_id, "status": exc.status})
            return "unknown" if exc.status is None or exc.status >= 500 else "failed"
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("reply failed", extra={"event_id": incoming.event_id, "exc": type(exc).__name__})
            return "unknown"
