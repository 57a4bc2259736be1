"""A real-HTTP fake of the LINE Messaging API, for running the real line-bot-sdk against it.

Like LINE it checks the channel access token, gives each reply token one use (``issue_token``;
unknown, used or expired tokens get 400 ``{"message": "Invalid reply token"}``), validates message
counts (1–5) and text lengths (5,000 UTF-16 code units, no broken surrogate pairs), accepts a push
``X-Line-Retry-Key`` once (a repeat gets 409 with ``X-Line-Accepted-Request-Id``), and takes the
loading animation for users only. Every call is recorded with its body and headers; what reached
a chat is in ``delivered``.

    with FakeLineAPI(access_token="t") as line:
        token = line.issue_token()
        ...  # LINE_API_URL=line.url
        assert line.replies()[0].json["replyToken"] == token
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .server import LoopbackServer

__all__ = ["Delivery", "FakeLineAPI", "LineCall"]

BOT_USER_ID = "U" + "b0" * 16
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


@dataclass(frozen=True)
class LineCall:
    """One request as the fake saw it (header names lower-cased) and the status it answered."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    status: int
    time: float


@dataclass(frozen=True)
class Delivery:
    """Messages that reached a chat: by reply (``to`` is the token) or by push."""

    via: str
    to: str
    messages: list[dict[str, Any]]


@dataclass
class _Failure:
    status: int
    times: int
    deliver: bool  # act on the request, then answer with the error (a lost response)
    body: dict[str, Any] = field(default_factory=lambda: {"message": "Internal server error"})


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class FakeLineAPI(LoopbackServer):
    def __init__(self, *, access_token: str = "line-test-token", bot_user_id: str = BOT_USER_ID) -> None:
        super().__init__()
        self.access_token = access_token
        self.bot_user_id = bot_user_id
        self.calls: list[LineCall] = []
        self.delivered: list[Delivery] = []
        self.expire_all = False  # every reply token behaves as expired
        self._tokens: dict[str, str] = {}  # token -> "fresh" | "used" | "expired"
        self._retry_keys: dict[str, str] = {}  # accepted X-Line-Retry-Key -> request id
        self._failures: dict[str, _Failure] = {}
        self._held: set[str] = set()
        self._stalled: set[str] = set()
        self.stalled_calls: list[LineCall] = []  # calls that arrived but never took effect
        self._lock = threading.Condition()

    # -- scripting ---------------------------------------------------------------------------------

    def issue_token(self) -> str:
        """A fresh reply token, as LINE puts one in each replyable webhook event."""
        token = uuid.uuid4().hex
        with self._lock:
            self._tokens[token] = "fresh"
        return token

    def expire(self, token: str) -> None:
        with self._lock:
            self._tokens[token] = "expired"

    def fail(self, path: str, *, status: int = 500, times: int = 1, deliver: bool = False) -> None:
        """The next ``times`` calls to path answer ``status``; with ``deliver`` the call takes
        effect first (LINE accepted it, the answer was lost)."""
        with self._lock:
            self._failures[path] = _Failure(status, times, deliver)

    def hold(self, path: str) -> None:
        """Calls to path take effect, but their answer never comes (a request in flight when its
        sender dies): the sender cannot tell whether it went out."""
        with self._lock:
            self._held.add(path)

    def stall(self, path: str) -> None:
        """Calls to path arrive but never take effect nor answer (lost before LINE acted on them,
        while their sender waits): the sender, and whoever takes over from it, cannot tell."""
        with self._lock:
            self._stalled.add(path)

    def reset_holds(self) -> None:
        with self._lock:
            self._held.clear()
            self._stalled.clear()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.delivered.clear()
            self.expire_all = False
            self._tokens.clear()
            self._retry_keys.clear()
            self._failures.clear()
            self._held.clear()
            self._stalled.clear()

    # -- reading -------------------------------------------------------------------------------------

    def calls_to(self, path: str) -> list[LineCall]:
        with self._lock:
            return [c for c in self.calls if c.path == path]

    def replies(self) -> list[LineCall]:
        return self.calls_to("/v2/bot/message/reply")

    def pushes(self) -> list[LineCall]:
        return self.calls_to("/v2/bot/message/push")

    def loading_calls(self) -> list[LineCall]:
        return self.calls_to("/v2/bot/chat/loading/start")

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self.delivered)

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Block until predicate(self) is true (checked on every recorded call)."""
        with self._lock:
            if not self._lock.wait_for(lambda: predicate(self), timeout):
                raise TimeoutError("the expected LINE API calls did not arrive")

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    # -- the API ---------------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self._lock:
            stalled = request.path in self._stalled
        if stalled:
            with self._lock:
                self.stalled_calls.append(LineCall(request.method, request.path, dict(request.headers), body, 0,
                                                   time.monotonic()))  # fmt: skip
                self._lock.notify_all()
            while stalled:  # until reset_holds(): nothing happened, nothing is answered
                await asyncio.sleep(0.05)
                with self._lock:
                    stalled = request.path in self._stalled
            return _error(503, "stalled")
        response = self._answer(request, body)
        call = LineCall(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=body,
            status=response.status,
            time=time.monotonic(),
        )
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()
            held = request.path in self._held
        while held:  # until reset_holds(); the sender may be long gone
            await asyncio.sleep(0.05)
            with self._lock:
                held = request.path in self._held
        return response

    def _answer(self, request: web.Request, body: Any) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return _error(
                401, "Authentication failed. Confirm that the access token in the authorization header is valid."
            )
        route = (request.method, request.path)
        if route == ("GET", "/v2/bot/info"):
            return web.json_response(
                {"userId": self.bot_user_id, "basicId": "@123abcde", "displayName": "Ask Hub",
                 "chatMode": "bot", "markAsReadMode": "auto"}
            )  # fmt: skip
        if route not in {
            ("POST", "/v2/bot/message/reply"),
            ("POST", "/v2/bot/message/push"),
            ("POST", "/v2/bot/chat/loading/start"),
        }:
            return _error(404, "Not found")
        if not isinstance(body, dict):
            return _error(400, "The request body has 1 error(s)")
        with self._lock:
            failure = self._failures.get(request.path)
            if failure is not None:
                failure.times -= 1
                if failure.times <= 0:
                    del self._failures[request.path]
        if failure is not None and not failure.deliver:
            return web.json_response(failure.body, status=failure.status)
        if request.path == "/v2/bot/chat/loading/start":
            response = self._loading(body)
        elif request.path == "/v2/bot/message/reply":
            response = self._reply(body)
        else:
            response = self._push(body, request.headers.get("X-Line-Retry-Key"))
        if failure is not None:
            return web.json_response(failure.body, status=failure.status)
        return response

    def _loading(self, body: dict[str, Any]) -> web.Response:
        chat_id, seconds = body.get("chatId"), body.get("loadingSeconds", 20)
        if not isinstance(chat_id, str) or not chat_id.startswith("U"):
            return _error(400, "The request body has 1 error(s)", "Invalid chatId", "chatId")
        if not isinstance(seconds, int) or not 5 <= seconds <= 60 or seconds % 5:
            return _error(400, "The request body has 1 error(s)", "Invalid loadingSeconds", "loadingSeconds")
        return web.json_response({}, status=202)

    def _reply(self, body: dict[str, Any]) -> web.Response:
        if (problem := _check_messages(body.get("messages"))) is not None:
            return problem
        token = body.get("replyToken")
        with self._lock:
            state = self._tokens.get(token) if isinstance(token, str) else None
            if state != "fresh" or self.expire_all:
                return _error(400, "Invalid reply token")
            self._tokens[token] = "used"
            self.delivered.append(Delivery("reply", token, body["messages"]))
        return web.json_response({"sentMessages": _sent(body["messages"])})

    def _push(self, body: dict[str, Any], key: str | None) -> web.Response:
        if key is not None and not _UUID.match(key):
            return _error(400, "The value for the 'X-Line-Retry-Key' header is invalid")
        if (problem := _check_messages(body.get("messages"))) is not None:
            return problem
        to = body.get("to")
        if not isinstance(to, str) or not to or to[0] not in "UCR":
            return _error(400, "The request body has 1 error(s)", "Invalid to", "to")
        with self._lock:
            if key is not None and key in self._retry_keys:
                return web.json_response(
                    {"message": "The retry key is already accepted", "sentMessages": _sent(body["messages"])},
                    status=409,
                    headers={"X-Line-Accepted-Request-Id": self._retry_keys[key]},
                )
            if key is not None:
                self._retry_keys[key] = str(uuid.uuid4())
            self.delivered.append(Delivery("push", to, body["messages"]))
        return web.json_response({"sentMessages": _sent(body["messages"])})


def _check_messages(messages: Any) -> web.Response | None:
    if not isinstance(messages, list) or not 1 <= len(messages) <= 5:
        return _error(400, "The request body has 1 error(s)", "Size must be between 1 and 5", "messages")
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("type") not in ("text", "flex", "sticker", "image"):
            return _error(400, "The request body has 1 error(s)", "Invalid message type", f"messages[{n}].type")
        if message["type"] == "text":
            text = message.get("text")
            if not isinstance(text, str) or not text:
                return _error(400, "The request body has 1 error(s)", "Must not be empty", f"messages[{n}].text")
            try:
                text.encode("utf-16-le")  # a lone surrogate: half an emoji
            except UnicodeEncodeError:
                return _error(400, "The request body has 1 error(s)", "Invalid text", f"messages[{n}].text")
            if utf16_units(text) > 5000:
                return _error(
                    400,
                    "The request body has 1 error(s)",
                    "Length must be between 0 and 5000",
                    f"messages[{n}].text",
                )
        if message["type"] == "flex" and not (message.get("altText") and message.get("contents")):
            return _error(400, "The request body has 1 error(s)", "Must not be null", f"messages[{n}].altText")
    return None


def _sent(messages: list[Any]) -> list[dict[str, str]]:
    return [{"id": str(uuid.uuid4().int)[:18], "quoteToken": uuid.uuid4().hex} for _ in messages]


def _error(status: int, message: str, detail: str | None = None, prop: str | None = None) -> web.Response:
    body: dict[str, Any] = {"message": message}
    if detail is not None:
        body["details"] = [{"message": detail, "property": prop}]
    return web.json_response(body, status=status, headers={"X-Line-Request-Id": str(uuid.uuid4())})
