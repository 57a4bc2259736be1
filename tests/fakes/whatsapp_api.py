"""A real-HTTP fake of the WhatsApp Cloud API (``POST /{phone_number_id}/messages``).

Like Meta it checks the bearer token and the phone number id, validates what it is sent (a text
body of at most 4,096 characters, an interactive body of at most 1,024 with 1–3 reply buttons of
at most 20 characters and unique ids, a template by name and language), refuses a free-form
message to a customer whose 24-hour window is closed (``close_window``: error 131047) and takes
``status: read`` with a typing indicator. ``hold(n)`` makes sends take effect but never answer
(a worker killed mid-send cannot tell). Every send is recorded in ``sent``.

    with FakeWhatsApp() as wa:
        ...  # WHATSAPP_API_URL=wa.url
        assert wa.texts_to("15550001")
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .server import LoopbackServer

__all__ = ["FakeWhatsApp", "Sent"]

PHONE_NUMBER_ID = "106540352242922"
ACCESS_TOKEN = "whatsapp-test-access-token"


@dataclass(frozen=True)
class Sent:
    id: str
    to: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("type"))

    @property
    def text(self) -> str:
        """What the customer reads: the text, the interactive body, or ``template:<name>``."""
        if self.kind == "text":
            return str(self.body["text"]["body"])
        if self.kind == "interactive":
            return str(self.body["interactive"]["body"]["text"])
        return f"template:{self.body['template']['name']}"

    @property
    def buttons(self) -> list[dict[str, str]]:
        if self.kind != "interactive":
            return []
        return [b["reply"] for b in self.body["interactive"]["action"]["buttons"]]


class FakeWhatsApp(LoopbackServer):
    handler_cancellation = True

    def __init__(self, *, access_token: str = ACCESS_TOKEN, phone_number_id: str = PHONE_NUMBER_ID) -> None:
        super().__init__()
        self.access_token, self.phone_number_id = access_token, phone_number_id
        self.sent: list[Sent] = []
        self.reads: list[str] = []
        self.refused: list[dict[str, Any]] = []
        self._closed: set[str] = set()
        self._hold = 0
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.sent.clear()
            self.reads.clear()
            self.refused.clear()
            self._closed.clear()
            self._hold = 0

    def close_window(self, to: str) -> None:
        """The customer last wrote more than 24 hours ago: only a template reaches them."""
        with self._lock:
            self._closed.add(to)

    def hold(self, times: int) -> None:
        """The next ``times`` sends take effect and never answer."""
        with self._lock:
            self._hold = times

    def to(self, user: str) -> list[Sent]:
        with self._lock:
            return [s for s in self.sent if s.to == user]

    def texts_to(self, user: str) -> list[str]:
        return [s.text for s in self.to(user)]

    def wait_for(self, predicate: Any, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (found := predicate()):
            if time.monotonic() > deadline:
                raise AssertionError("the fake WhatsApp API did not see it")
            time.sleep(0.02)
        return found

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{phone}/messages", self._messages)
        return app

    async def _messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return _error(401, 190, "Invalid OAuth access token.")
        if request.match_info["phone"] != self.phone_number_id:
            return _error(400, 100, "Unsupported post request.")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, 100, "Invalid JSON")
        if body.get("messaging_product") != "whatsapp":
            return _error(400, 100, "messaging_product must be whatsapp")
        if body.get("status") == "read":
            with self._lock:
                self.reads.append(str(body.get("message_id")))
            return web.json_response({"success": True})
        problem = _invalid(body)
        to = str(body.get("to") or "")
        with self._lock:
            if problem is None and body.get("type") != "template" and to in self._closed:
                problem = (131047, "Re-engagement message")
            if problem is not None:
                self.refused.append(body)
                return _error(400, problem[0], problem[1])
            sent = Sent("wamid." + uuid.uuid4().hex, to, body)
            self.sent.append(sent)
            held = self._hold > 0
            self._hold -= 1 if held else 0
        if held:
            await asyncio.Event().wait()  # never answers; cancelled when the sender hangs up
        return web.json_response({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                                  "messages": [{"id": sent.id}]})  # fmt: skip


def _invalid(body: dict[str, Any]) -> tuple[int, str] | None:
    if not str(body.get("to") or "").isdigit():
        return 100, "Invalid parameter: to"
    kind = body.get("type")
    if kind == "text":
        text = (body.get("text") or {}).get("body")
        if not isinstance(text, str) or not text.strip() or len(text) > 4096:
            return 100, "Invalid parameter: text.body"
        return None
    if kind == "interactive":
        inner = body.get("interactive") or {}
        text = (inner.get("body") or {}).get("text")
        buttons = (inner.get("action") or {}).get("buttons") or []
        if inner.get("type") != "button" or not isinstance(text, str) or not text or len(text) > 1024:
            return 131009, "Parameter value is not valid: interactive.body"
        replies = [b.get("reply") or {} for b in buttons]
        ids = [r.get("id") for r in replies]
        if not 1 <= len(buttons) <= 3 or len(set(ids)) != len(ids):
            return 131009, "Parameter value is not valid: buttons"
        if any(not r.get("title") or len(r["title"]) > 20 or len(str(r.get("id"))) > 256 for r in replies):
            return 131009, "Parameter value is not valid: button title"
        return None
    if kind == "template":
        template = body.get("template") or {}
        if not template.get("name") or not (template.get("language") or {}).get("code"):
            return 132000, "Template name or language missing"
        return None
    return 100, f"Unsupported message type {kind!r}"


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": "OAuthException", "code": code,
                                        "fbtrace_id": uuid.uuid4().hex[:12]}}, status=status)  # fmt: skip
