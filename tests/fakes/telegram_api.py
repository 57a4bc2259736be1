"""A real-HTTP fake of the Telegram Bot API (``/bot<token>/<method>``), for the real
python-telegram-bot ``Bot`` pointed at it through ``base_url``.

Like Telegram it checks the token in the path, answers ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code", "description"}``, takes a text of 1–4,096 characters, callback data
of at most 64 bytes, refuses an edit that changes nothing ("message is not modified") and — its
rate limit — an edit of a message sooner than ``edit_interval`` after the last write to it (429
with ``retry_after``; counted in ``rate_limited``). What reached each chat is in ``messages``.

    with FakeTelegram() as tg:
        ...  # TELEGRAM_API_URL=tg.url
        assert tg.in_chat(42)[0]["text"]
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from aiohttp import web

from .server import LoopbackServer

__all__ = ["BOT_ID", "BOT_TOKEN", "BOT_USERNAME", "FakeTelegram"]

BOT_TOKEN = "123456789:AAtelegram-test-token"
BOT_ID, BOT_USERNAME = 123456789, "askhub_test_bot"
_JSON_FIELDS = {"reply_markup", "reply_parameters", "entities", "link_preview_options"}


class FakeTelegram(LoopbackServer):
    def __init__(self, *, token: str = BOT_TOKEN, edit_interval: float = 1.0) -> None:
        super().__init__()
        self.token, self.edit_interval = token, edit_interval
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.toasts: list[dict[str, Any]] = []
        self.rate_limited = 0
        self._next_id = 1000
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.calls.clear()
            self.toasts.clear()
            self.rate_limited = 0

    def in_chat(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a chat, in the order they were sent (as they read now)."""
        with self._lock:
            return [m for (chat, _), m in sorted(self.messages.items()) if chat == chat_id]

    def texts(self, chat_id: int) -> list[str]:
        return [m["text"] for m in self.in_chat(chat_id)]

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._dispatch)
        return app

    async def _dispatch(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = {k: (json.loads(v) if k in _JSON_FIELDS else v) for k, v in (await request.post()).items()}
        with self._lock:
            self.calls.append((method, params))
            handler = getattr(self, f"_{method}", None)
            if handler is None:
                return _error(404, "Not Found: method not found")
            return handler(params)

    def _getMe(self, params: dict[str, Any]) -> web.Response:
        return _ok({"id": BOT_ID, "is_bot": True, "first_name": "Ask Hub", "username": BOT_USERNAME,
                    "can_join_groups": True, "can_read_all_group_messages": False,
                    "supports_inline_queries": False})  # fmt: skip

    def _sendChatAction(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)

    def _answerCallbackQuery(self, params: dict[str, Any]) -> web.Response:
        self.toasts.append(params)
        return _ok(True)

    def _sendMessage(self, params: dict[str, Any]) -> web.Response:
        problem = _invalid(params)
        if problem:
            return _error(400, problem)
        chat = int(params["chat_id"])
        self._next_id += 1
        reply = (params.get("reply_parameters") or {}).get("message_id")
        message = {"message_id": self._next_id, "text": params["text"], "reply_markup": params.get("reply_markup"),
                   "reply_to": reply, "thread": params.get("message_thread_id"), "edits": 0,
                   "written": time.monotonic()}  # fmt: skip
        self.messages[(chat, self._next_id)] = message
        return _ok(self._shown(chat, message))

    def _editMessageText(self, params: dict[str, Any]) -> web.Response:
        problem = _invalid(params)
        if problem:
            return _error(400, problem)
        key = (int(params["chat_id"]), int(params["message_id"]))
        message = self.messages.get(key)
        if message is None:
            return _error(400, "Bad Request: message to edit not found")
        if message["text"] == params["text"] and message["reply_markup"] == params.get("reply_markup"):
            return _error(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        if time.monotonic() - message["written"] < self.edit_interval:
            self.rate_limited += 1
            return web.json_response({"ok": False, "error_code": 429, "description": "Too Many Requests: retry "
                                      "after 1", "parameters": {"retry_after": 1}}, status=429)  # fmt: skip
        message.update(text=params["text"], reply_markup=params.get("reply_markup"), written=time.monotonic())
        message["edits"] += 1
        return _ok(self._shown(key[0], message))

    @staticmethod
    def _shown(chat: int, message: dict[str, Any]) -> dict[str, Any]:
        body = {"message_id": message["message_id"], "date": int(time.time()), "text": message["text"],
                "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Ask Hub", "username": BOT_USERNAME}}  # fmt: skip
        if message["reply_markup"]:
            body["reply_markup"] = message["reply_markup"]
        return body


def _invalid(params: dict[str, Any]) -> str | None:
    text = params.get("text")
    if not isinstance(text, str) or not text.strip():
        return "Bad Request: message text is empty"
    if len(text) > 4096:
        return "Bad Request: message is too long"
    for row in (params.get("reply_markup") or {}).get("inline_keyboard", []):
        for button in row:
            if len(str(button.get("callback_data", "")).encode()) > 64:
                return "Bad Request: BUTTON_DATA_INVALID"
    return None


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str) -> web.Response:
    return web.json_response({"ok": False, "error_code": status, "description": description}, status=status)
