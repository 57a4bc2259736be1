"""A real-HTTP fake of the Slack Web API (and of Socket Mode's websocket) for adapter tests.

The server runs on 127.0.0.1 in its own thread (``LoopbackServer``), so the
real slack_sdk / slack-bolt clients talk to it over sockets. Every call is recorded with its
method, headers and decoded body (JSON, form or query), and answered in Slack's shapes:
HTTP 200 with ``{"ok": true, ...}``, or ``{"ok": false, "error": "..."}``.

    with FakeSlack() as slack:
        settings = make_settings(..., SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN=slack.bot_token)
        slack.streaming = False                    # chat.*Stream answer "unknown_method"
        slack.fail("chat.postMessage", "not_in_channel", times=1)
        slack.wait_for("chat.update", count=2)     # await calls instead of sleeping
        slack.hold("chat.startStream")             # it takes effect, its answer never comes

Socket Mode: ``apps.connections.open`` (with the app token) returns ``ws://127.0.0.1:<port>/link?...``;
the fake sends ``hello`` on connect, ``send_envelope`` delivers an envelope to the connected
client, and every frame the client sends back (the ``{"envelope_id": ...}`` acks) is recorded.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from .server import LoopbackServer

STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")


@dataclass(frozen=True)
class SlackCall:
    method: str  # the Web API method, e.g. "chat.postMessage"
    headers: dict[str, str]  # lower-cased names
    body: dict[str, Any]  # JSON body, or form fields, or query parameters (merged)
    token: str | None
    time: float  # time.monotonic() at arrival

    def __getitem__(self, key: str) -> Any:
        return self.body[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.body.get(key, default)


class FakeSlack(LoopbackServer):
    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
    ) -> None:
        super().__init__()
        self.bot_token, self.app_token = bot_token, app_token
        self.team_id, self.bot_user_id, self.bot_id = team_id, bot_user_id, bot_id
        self.calls: list[SlackCall] = []
        self.responses: list[SlackCall] = []  # posts to response_url endpoints
        self.socket_frames: list[dict[str, Any]] = []  # what Socket Mode clients sent
        self.messages: dict[str, dict[str, Any]] = {}  # ts -> the message as last posted/updated
        self.channel_of: dict[str, str] = {}  # ts -> the channel it was posted in
        self.usergroups: dict[str, list[str]] = {}  # user group id -> its members (usergroups.users.list)
        self.streaming = True
        self.stream_error = "unknown_method"
        self._failures: dict[str, list[str | int | None]] = {}
        self._held: set[str] = set()
        self._ts = 0
        self._cond = threading.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._tickets: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """What SLACK_API_URL points to (slack_sdk appends the method name)."""
        return f"{self.url}/api/"

    def response_url(self, name: str = "r") -> str:
        return f"{self.url}/respond/{name}"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/link", self._websocket)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        return app

    async def before_shutdown(self) -> None:
        self.reset_holds()
        for ws in list(self._sockets):
            await ws.close()

    # -- scripting ---------------------------------------------------------------------------------

    def fail(self, method: str, error: str = "internal_error", *, times: int | None = None, status: int = 200) -> None:
        """Answer ``method`` with ``{"ok": false, "error": error}`` (the next ``times`` calls, or always),
        with HTTP ``status`` (Slack answers its own errors 200; 500 is Slack being down)."""
        with self._cond:
            self._failures[method] = [error, times, status]

    def hold(self, method: str) -> None:
        """Calls to ``method`` take effect, but their answer never comes (a call in flight when its
        caller dies): the caller cannot tell whether it happened."""
        with self._cond:
            self._held.add(method)

    def reset_holds(self) -> None:
        with self._cond:
            self._held.clear()

    def heal(self, method: str | None = None) -> None:
        with self._cond:
            if method is None:
                self._failures.clear()
            else:
                self._failures.pop(method, None)

    def _scripted_error(self, method: str) -> tuple[str, int] | None:
        if method in STREAM_METHODS and not self.streaming:
            return None if self.stream_error is None else (self.stream_error, 200)
        with self._cond:
            entry = self._failures.get(method)
            if entry is None:
                return None
            error, times, status = entry
            if times is not None:
                if int(times) <= 1:
                    del self._failures[method]
                else:
                    entry[1] = int(times) - 1
            return str(error), int(status or 200)

    # -- inspection --------------------------------------------------------------------------------

    def calls_to(self, *methods: str) -> list[SlackCall]:
        with self._cond:
            return [c for c in self.calls if c.method in methods]

    def wait_for(
        self,
        method: str | Callable[[SlackCall], bool],
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[SlackCall]:
        """Block until at least ``count`` recorded calls match; returns them."""
        match = (lambda c: c.method == method) if isinstance(method, str) else method
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self.calls if match(c)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self.calls]
                    raise TimeoutError(f"waited for {count} x {method!r}; calls so far: {seen}")
                self._cond.wait(left)

    def wait_frames(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.socket_frames) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"waited for {count} socket frames; got {self.socket_frames}")
                self._cond.wait(left)
            return list(self.socket_frames)

    def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._sockets:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no Socket Mode client connected")
                self._cond.wait(left)

    def send_envelope(self, envelope: dict[str, Any]) -> None:
        """Deliver one Socket Mode envelope to every connected client."""

        async def send() -> None:
            for ws in list(self._sockets):
                await ws.send_str(json.dumps(envelope))

        self.call(send(), timeout=5)

    # -- handlers ----------------------------------------------------------------------------------

    def _record(self, call: SlackCall, into: list[SlackCall]) -> None:
        with self._cond:
            into.append(call)
            self._cond.notify_all()

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        raw = await request.read()
        body: dict[str, Any] = dict(request.query)
        ctype = request.headers.get("Content-Type", "")
        if raw and "json" in ctype:
            parsed = json.loads(raw)
            body.update(parsed if isinstance(parsed, dict) else {})
        elif raw:
            body.update(dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True)))
        for key in ("blocks", "chunks", "metadata"):  # form-encoded JSON fields
            if isinstance(body.get(key), str) and body[key].startswith(("[", "{")):
                body[key] = json.loads(body[key])
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else body.pop("token", None)
        call = SlackCall(method, {k.lower(): v for k, v in request.headers.items()}, body, token, time.monotonic())
        self._record(call, self.calls)

        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if not token:
            return _json({"ok": False, "error": "not_authed"})
        if token != expected:
            return _json({"ok": False, "error": "invalid_auth"})
        scripted = self._scripted_error(method)
        if scripted is not None:
            return _json({"ok": False, "error": scripted[0]}, status=scripted[1])
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return _json({"ok": False, "error": "unknown_method", "req_method": method})
        answer = handler(body)
        held = self._is_held(method)
        while held:  # until reset_holds(); the caller may be long gone
            await asyncio.sleep(0.05)
            held = self._is_held(method)
        return _json(answer)

    def _is_held(self, method: str) -> bool:
        with self._cond:
            return method in self._held

    def _next_ts(self) -> str:
        """Like Slack's: the time of posting (so a reply sorts after the message it answers), unique."""
        with self._cond:
            self._ts = max(self._ts + 1, int(time.time() * 1_000_000))
            return f"{self._ts // 1_000_000}.{self._ts % 1_000_000:06d}"

    def _m_auth_test(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://acme.slack.com/", "team": "Acme", "user": "askbot",
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                "is_enterprise_install": False}  # fmt: skip

    def _m_chat_postMessage(self, body: dict[str, Any]) -> dict[str, Any]:
        ts = self._next_ts()
        message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "ts": ts,
                   "channel": body.get("channel"), "text": body.get("text", ""),
                   "blocks": body.get("blocks", [])}  # fmt: skip
        if body.get("thread_ts"):
            message["thread_ts"] = body["thread_ts"]
        if isinstance(body.get("metadata"), dict):
            message["metadata"] = body["metadata"]
        self.messages[ts] = message
        self.channel_of[ts] = str(body.get("channel") or "")
        return {"ok": True, "channel": body.get("channel"), "ts": ts, "message": message}

    def _m_views_open(self, body: dict[str, Any]) -> dict[str, Any]:
        view = body.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        if not body.get("trigger_id") or not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "view": {**view, "id": f"V{uuid.uuid4().hex[:10].upper()}", "hash": uuid.uuid4().hex}}

    def _m_conversations_history(self, body: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages of a channel, newest first (``latest`` + ``inclusive``: up to that one)."""
        channel, latest = str(body.get("channel") or ""), body.get("latest")
        inclusive = str(body.get("inclusive", "")).lower() in ("1", "true")
        found = [m for ts, m in self.messages.items() if self.channel_of.get(ts) == channel
                 and m.get("thread_ts", ts) == ts
                 and (latest is None or ts < latest or (inclusive and ts == latest))]  # fmt: skip
        found.sort(key=lambda m: m["ts"], reverse=True)
        return {"ok": True, "messages": found[: int(body.get("limit") or 100)], "has_more": False}

    def _m_conversations_replies(self, body: dict[str, Any]) -> dict[str, Any]:
        """A thread: its parent, then the replies, oldest first."""
        channel, thread = str(body.get("channel") or ""), str(body.get("ts") or "")
        found = [m for ts, m in self.messages.items() if self.channel_of.get(ts) == channel
                 and (ts == thread or m.get("thread_ts") == thread)]  # fmt: skip
        found.sort(key=lambda m: m["ts"])
        return {"ok": True, "messages": found, "has_more": False}

    def _m_chat_update(self, body: dict[str, Any]) -> dict[str, Any]:
        ts = body.get("ts", "")
        if ts not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        message = self.messages[ts]
        message["text"] = body.get("text", message["text"])
        if "blocks" in body:
            message["blocks"] = body["blocks"]
        return {"ok": True, "channel": body.get("channel"), "ts": ts, "text": message["text"], "message": message}

    def _m_chat_delete(self, body: dict[str, Any]) -> dict[str, Any]:
        self.messages.pop(body.get("ts", ""), None)
        return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}

    def _m_usergroups_users_list(self, body: dict[str, Any]) -> dict[str, Any]:
        group = str(body.get("usergroup") or "")
        if group not in self.usergroups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(self.usergroups[group])}

    def _m_chat_postEphemeral(self, body: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_chat_startStream(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("thread_ts"):
            return {"ok": False, "error": "invalid_arguments"}
        ts = self._next_ts()
        self.messages[ts] = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "ts": ts,
                             "channel": body.get("channel"), "streaming": True, "thread_ts": body["thread_ts"],
                             "text": body.get("markdown_text") or "", "blocks": []}  # fmt: skip
        return {"ok": True, "channel": body.get("channel"), "ts": ts}

    def _m_chat_appendStream(self, body: dict[str, Any]) -> dict[str, Any]:
        message = self.messages.get(body.get("ts", ""))
        if message is None or not message.get("streaming"):
            return {"ok": False, "error": "message_not_in_streaming_state"}
        message["text"] += body.get("markdown_text") or ""
        return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts")}

    def _m_chat_stopStream(self, body: dict[str, Any]) -> dict[str, Any]:
        message = self.messages.get(body.get("ts", ""))
        if message is None or not message.get("streaming"):
            return {"ok": False, "error": "message_not_in_streaming_state"}
        message["text"] += body.get("markdown_text") or ""
        message["blocks"] = body.get("blocks") or []
        message["streaming"] = False
        return {"ok": True, "channel": body.get("channel"), "ts": body.get("ts"), "message": message}

    def _m_conversations_replies(self, body: dict[str, Any]) -> dict[str, Any]:
        """A thread as the bot can read it: its parent, then the replies, oldest first (only the
        messages this fake saw: the bot's own; people's messages reach the hub as events)."""
        channel, ts = body.get("channel"), body.get("ts")
        if not channel or not ts:
            return {"ok": False, "error": "invalid_arguments"}
        oldest = float(body.get("oldest") or 0)
        with self._cond:
            found = [m for m in self.messages.values() if m.get("channel") == channel
                     and ts in (m["ts"], m.get("thread_ts")) and float(m["ts"]) >= oldest]  # fmt: skip
        found.sort(key=lambda m: float(m["ts"]))
        return {"ok": True, "messages": [{k: v for k, v in m.items() if k != "streaming"} for m in found],
                "has_more": False}  # fmt: skip

    def _m_conversations_history(self, body: dict[str, Any]) -> dict[str, Any]:
        """A channel's top-level messages, newest first (only the bot's own, as above)."""
        if not body.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        limit = int(body.get("limit") or 100)
        with self._cond:
            found = [m for m in self.messages.values() if m.get("channel") == body["channel"]
                     and m.get("thread_ts") in (None, m["ts"])]  # fmt: skip
        found.sort(key=lambda m: float(m["ts"]), reverse=True)
        return {"ok": True, "messages": found[:limit], "has_more": len(found) > limit}

    def _m_apps_connections_open(self, body: dict[str, Any]) -> dict[str, Any]:
        ticket = uuid.uuid4().hex
        self._tickets.add(ticket)
        return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link?ticket={ticket}&app_id=A0001"}

    async def _respond(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else {}
        call = SlackCall(f"respond/{request.match_info['name']}", dict(request.headers), body, None, time.monotonic())
        self._record(call, self.responses)
        self._record(call, self.calls)
        return web.Response(text="ok")

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("ticket") not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1,
                                      "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                                      "connection_info": {"app_id": "A0001"}}))  # fmt: skip
        with self._cond:
            self._sockets.append(ws)
            self._cond.notify_all()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    with self._cond:
                        self.socket_frames.append(json.loads(msg.data))
                        self._cond.notify_all()
        finally:
            with self._cond:
                if ws in self._sockets:
                    self._sockets.remove(ws)
        return ws


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(
        body, status=status, headers={"X-OAuth-Scopes": "app_mentions:read,chat:write,commands,im:history"}
    )


def events_envelope(body: dict[str, Any], *, envelope_id: str | None = None, retry_attempt: int = 0) -> dict[str, Any]:
    """An Events API payload as Socket Mode delivers it."""
    return {
        "envelope_id": envelope_id or uuid.uuid4().hex,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": "timeout" if retry_attempt else "",
        "payload": body,
    }
