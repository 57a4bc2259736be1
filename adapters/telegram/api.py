"""The Telegram Bot API as the hub uses it (python-telegram-bot's async ``Bot``).

``Bot(base_url=TELEGRAM_API_URL + "/bot")`` points the library at a local Bot API server, a proxy
or a test fake. The bot learns who it is (getMe) on first use, on the loop that uses it. A send or
an edit that Telegram answers "retry after N" waits and tries again (a few times): the final
answer must arrive; progress edits are only skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import Bot, Message, ReplyParameters
from telegram.error import BadRequest, RetryAfter
from telegram.request import HTTPXRequest

from adapters.telegram.render import Out
from adapters.telegram.translate import Me

log = logging.getLogger("askhub.telegram")

API_TIMEOUT_SEC = 10.0
ATTEMPTS = 3
MAX_RETRY_AFTER_SEC = 30.0
T = TypeVar("T")


class TelegramApi:
    def __init__(self, api_url: str, token: str) -> None:
        request = HTTPXRequest(connection_pool_size=32, read_timeout=API_TIMEOUT_SEC, write_timeout=API_TIMEOUT_SEC)
        self.bot = Bot(token, base_url=f"{api_url.rstrip('/')}/bot", request=request)
        self._me: Me | None = None
        self._lock: asyncio.Lock | None = None

    async def me(self) -> Me:
        if self._me is None:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self._me is None:
                    await self.bot.initialize()  # getMe
                    self._me = Me(self.bot.id, self.bot.username)
        return self._me

    async def close(self) -> None:
        if self._me is not None:
            await self.bot.shutdown()
            self._me = None

    async def send(self, chat_id: int, out: Out, *, reply_to: int | None = None, thread: int | None = None) -> Message:
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None

        def send() -> Awaitable[Message]:
            return self.bot.send_message(chat_id, out.text, reply_markup=out.markup, reply_parameters=reply,
                                         message_thread_id=thread)  # fmt: skip

        return await _paced(send)

    async def edit(self, chat_id: int, message_id: int, out: Out, *, final: bool = True) -> None:
        """``final``: wait out a rate limit; else (a progress edit) a refused edit is skipped."""

        async def edit() -> None:
            try:
                await self.bot.edit_message_text(out.text, chat_id=chat_id, message_id=message_id,
                                                 reply_markup=out.markup)  # fmt: skip
            except BadRequest as exc:
                if "not modified" not in str(exc).lower():
                    raise

        if final:
            await _paced(edit)
            return
        try:
            await edit()
        except RetryAfter:
            log.info("progress edit skipped: rate limited")

    async def typing(self, chat_id: int) -> None:
        try:
            await self.bot.send_chat_action(chat_id, "typing")
        except Exception as exc:  # best effort: the answer follows anyway
            log.info("typing not shown", extra={"exc": type(exc).__name__})

    async def toast(self, callback_id: str, text: str) -> None:
        """Acknowledge a button tap (stops its spinner)."""
        try:
            await self.bot.answer_callback_query(callback_id, text=text)
        except Exception as exc:
            log.info("callback not answered", extra={"exc": type(exc).__name__})


async def _paced(call: Callable[[], Awaitable[T]]) -> T:
    for attempt in range(ATTEMPTS):
        try:
            return await call()
        except RetryAfter as exc:
            wait = exc.retry_after.total_seconds() if hasattr(exc.retry_after, "total_seconds") else exc.retry_after
            if attempt == ATTEMPTS - 1 or float(wait) > MAX_RETRY_AFTER_SEC:
                raise
            log.info("rate limited by Telegram; waiting", extra={"retry_after": float(wait)})
            await asyncio.sleep(float(wait))
    raise AssertionError("unreachable")
