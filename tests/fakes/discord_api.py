"""A real-HTTP fake of Discord: the REST API (v10) and the gateway websocket on one loopback port.

discord.py itself talks to it (``DISCORD_API_URL`` = ``fake.api_url``; the gateway URL comes from
``GET /gateway/bot`` or ``DISCORD_GATEWAY_URL`` = ``fake.gateway_url``), and so does the hub's
interaction-webhook client. Every REST call is recorded; tests wait for the call they expect
(``wait_for``) instead of sleeping.

The gateway does what Discord does for one bot on one shard: HELLO (op 10) with a heartbeat
interval, IDENTIFY (op 2) checked and recorded, READY (with the user, the application and the
guilds as unavailable), then a GUILD_CREATE per guild with its channels; heartbeats (op 1) get
ACKs (op 11). Tests push events with ``dispatch`` / ``send_message``. Like Discord, a guild
message that neither mentions the bot nor comes from it arrives with empty content unless the
bot identified with the privileged message-content intent.

Example::

    with FakeDiscord() as fake:
        ...  # hub with DISCORD_BOT_TOKEN=fake.token, DISCORD_API_URL=fake.api_url
        fake.wait_ready()
        question = fake.send_message("<@{bot}> how do I set up the VPN?", mention_bot=True)
        fake.wait_for(lambda c: c.method == "POST" and c.path.endswith("/threads"))
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from .server import LoopbackServer

__all__ = ["Call", "FakeDiscord"]

API_PREFIX = "/api/v10"
DISCORD_EPOCH_MS = 1420070400000
MESSAGE_CONTENT_INTENT = 1 << 15
HEARTBEAT_INTERVAL_MS = 41250
THREAD_TYPES = (10, 11, 12)


@dataclass(frozen=True)
class Call:
    """One REST request as the fake saw it (path without the /api/v10 prefix; headers lower-cased)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    time: float  # time.monotonic() at arrival


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200) -> web.Response:
    # Exactly "application/json" (no charset), as Discord sends: discord.py compares the header.
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


def _error(status: int, message: str, code: int = 0) -> web.Response:
    return _json({"message": message, "code": code}, status=status)


class FakeDiscord(LoopbackServer):
    """Fake Discord REST + gateway on 127.0.0.1:<random port>, in its own thread."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token.not-a-secret",
        bot_id: int = 1_300_000_000_000_000_001,
        application_id: int = 1_300_000_000_000_000_002,
    ) -> None:
        super().__init__()
        self.token = token
        self.bot_id = bot_id
        self.application_id = application_id
        self.bot_user = {
            "id": str(bot_id),
            "username": "askhub",
            "discriminator": "0",
            "global_name": "Ask Hub",
            "avatar": None,
            "bot": True,
            "flags": 0,
        }
        self.user = self.make_user(1_300_000_000_000_000_100, "alice")
        self.guild_id = 1_300_000_000_000_000_010
        self.channel_id = 1_300_000_000_000_000_011
        self.dm_channel_id = 1_300_000_000_000_000_012
        self.calls: list[Call] = []
        self.identifies: list[dict[str, Any]] = []
        # Messages the bot has posted, by id, as they are now (edits applied), in posting order.
        self.messages: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {
            str(self.channel_id): {
                "id": str(self.channel_id),
                "type": 0,
                "guild_id": str(self.guild_id),
                "name": "general",
                "position": 0,
                "permission_overwrites": [],
                "nsfw": False,
                "parent_id": None,
                "topic": None,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "flags": 0,
            }
        }
        # The next N PATCHes of an @original answer 404, as Discord does until it has the deferred ack.
        self.original_not_ready = 0
        self._held: list[tuple[str, str]] = []  # (method, path pattern) whose answers never come
        self.nonce_repeats = 0  # message creates answered with the message their enforced nonce made before
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = itertools.count(1)

    # ------------------------------------------------------------------ life
    @property
    def api_url(self) -> str:
        return f"{self.url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        return app

    async def before_shutdown(self) -> None:
        self.reset_holds()
        for ws in list(self._sockets):
            await ws.close(code=1001)

    # ------------------------------------------------------------- test API
    def next_id(self) -> int:
        """A snowflake: milliseconds since Discord's epoch, then a counter."""
        return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) + next(self._ids)

    @staticmethod
    def make_user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": bot,
            "flags": 0,
        }

    def wait_ready(self, timeout: float = 15) -> None:
        """Until a bot identified and got READY and its guilds."""
        if not self._ready.wait(timeout):
            raise AssertionError("the bot did not connect to the fake gateway")

    def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 15) -> Call:
        """The first recorded call matching predicate, waiting for it if needed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for call in self.calls:
                    if predicate(call):
                        return call
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [f"{c.method} {c.path}" for c in self.calls]
                    raise AssertionError(f"no matching Discord call within {timeout} s; seen: {seen}")
                self._cond.wait(left)

    def wait_until(self, condition: Callable[[], Any], timeout: float = 15) -> Any:
        """Until condition() is truthy (re-checked on every call, message change and IDENTIFY)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (result := condition()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"condition not met within {timeout} s")
                self._cond.wait(left)
            return result

    def hold(self, method: str, pattern: str) -> None:
        """Matching REST calls take effect, but their answers never come (a call in flight when its
        caller dies): the caller cannot tell whether it happened."""
        with self._cond:
            self._held.append((method, pattern))

    def reset_holds(self) -> None:
        with self._cond:
            self._held.clear()

    def _is_held(self, method: str, path: str) -> bool:
        with self._cond:
            return any(m == method and re.fullmatch(p, path) for m, p in self._held)

    def find(self, method: str, pattern: str) -> list[Call]:
        """Recorded calls with this method whose path fully matches the regex pattern."""
        with self._cond:
            return [c for c in self.calls if c.method == method and re.fullmatch(pattern, c.path)]

    def channel_messages(self, channel_id: int | str) -> list[dict[str, Any]]:
        """The bot's messages in a channel as they stand now (after edits), oldest first."""
        with self._cond:
            return [m for m in self.messages.values() if m["channel_id"] == str(channel_id)]

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH (op 0) to every connected bot."""
        self.call(self._broadcast(event, data))

    def send_message(
        self,
        content: str,
        *,
        channel_id: int | str | None = None,
        dm: bool = False,
        author: dict[str, Any] | None = None,
        mention_bot: bool = False,
        withhold: bool | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A MESSAGE_CREATE from a user (default: alice in #general; ``dm`` for the DM channel).

        ``withhold`` (default: as Discord decides) empties the content the way Discord does for a
        bot without the message-content intent.
        """
        author = author or self.user
        channel = str(channel_id or (self.dm_channel_id if dm else self.channel_id))
        data: dict[str, Any] = {
            "id": str(self.next_id()),
            "channel_id": channel,
            "author": author,
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [self.bot_user] if mention_bot else [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if not dm:
            data["guild_id"] = str(self.guild_id)
            data["member"] = {"roles": [], "joined_at": _now(), "deaf": False, "mute": False, "flags": 0}
        if withhold is None:
            intents = self.identifies[-1].get("intents", 0) if self.identifies else 0
            withhold = not (dm or mention_bot or author["id"] == self.bot_user["id"]) and not (
                intents & MESSAGE_CONTENT_INTENT
            )
        if withhold:
            data["content"] = ""
            data["attachments"] = []  # withheld with the content
        self.dispatch("MESSAGE_CREATE", data)
        return data

    def interaction(self, kind: int, data: dict[str, Any], *, dm: bool = False, **extra: Any) -> dict[str, Any]:
        """An interaction payload as Discord sends it (over the gateway or to the HTTP endpoint)."""
        payload: dict[str, Any] = {
            "id": str(self.next_id()),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": f"itoken-{self.next_id()}",
            "version": 1,
            "locale": "en-US",
            "app_permissions": "0",
            "entitlements": [],
            "authorizing_integration_owners": {},
            "context": 1 if dm else 0,
            "attachment_size_limit": 10485760,
        }
        if dm:
            payload["channel_id"] = str(self.dm_channel_id)
            payload["channel"] = {"id": str(self.dm_channel_id), "type": 1}
            payload["user"] = self.user
        else:
            payload["guild_id"] = str(self.guild_id)
            payload["channel_id"] = str(self.channel_id)
            payload["channel"] = dict(self.channels[str(self.channel_id)])
            payload["member"] = {
                "user": self.user,
                "roles": [],
                "joined_at": _now(),
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": "2248473465835073",
            }
        payload.update(extra)
        return payload

    # --------------------------------------------------------------- gateway
    def _guild_create(self) -> dict[str, Any]:
        gid = str(self.guild_id)
        return {
            "id": gid,
            "name": "Ask Hub Test Guild",
            "icon": None,
            "owner_id": self.user["id"],
            "unavailable": False,
            "large": False,
            "member_count": 2,
            "joined_at": _now(),
            "features": [],
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
            "roles": [
                {
                    "id": gid,
                    "name": "@everyone",
                    "permissions": "1071698660929",
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            ],
            "emojis": [],
            "stickers": [],
            "channels": [c for c in self.channels.values() if c["type"] not in THREAD_TYPES],
            "threads": [c for c in self.channels.values() if c["type"] in THREAD_TYPES],
            "members": [
                {"user": self.bot_user, "roles": [], "joined_at": _now(), "deaf": False, "mute": False, "flags": 0}
            ],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
        }

    async def _send(self, ws: web.WebSocketResponse, op: int, data: Any, event: str | None = None) -> None:
        frame: dict[str, Any] = {"op": op, "d": data, "s": None, "t": None}
        if op == 0:
            frame["s"], frame["t"] = next(self._seq), event
        await ws.send_str(json.dumps(frame))

    async def _broadcast(self, event: str, data: dict[str, Any]) -> None:
        for ws in list(self._sockets):
            if not ws.closed:
                await self._send(ws, 0, data, event)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await self._send(ws, 10, {"heartbeat_interval": HEARTBEAT_INTERVAL_MS})
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            op, data = frame.get("op"), frame.get("d")
            if op == 1:
                await self._send(ws, 11, None)
            elif op == 2:
                if data.get("token") != self.token:
                    await ws.close(code=4004, message=b"Authentication failed.")
                    break
                with self._cond:
                    self.identifies.append({k: v for k, v in data.items() if k != "token"})
                    self._cond.notify_all()
                self._sockets.append(ws)
                await self._send(ws, 0, self._ready_payload(), "READY")
                await self._send(ws, 0, self._guild_create(), "GUILD_CREATE")
                self._ready.set()
            elif op == 6:
                self._sockets.append(ws)
                await self._send(ws, 0, {}, "RESUMED")
        if ws in self._sockets:
            self._sockets.remove(ws)
        return ws

    def _ready_payload(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": f"session-{self.next_id()}",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }

    # ------------------------------------------------------------------ REST
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body: Any = None
        if request.can_read_body:
            if request.content_type == "multipart/form-data":
                form = await request.post()
                raw = form.get("payload_json")
                body = json.loads(str(raw)) if raw is not None else None
            else:
                raw_bytes = await request.read()
                body = json.loads(raw_bytes) if raw_bytes else None
        call = Call(
            request.method,
            path,
            dict(request.query),
            {k.lower(): v for k, v in request.headers.items()},
            body,
            time.monotonic(),
        )
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()
        public = path.startswith(("/webhooks/", "/interactions/"))
        if not public and request.headers.get("Authorization") != f"Bot {self.token}":
            return _error(401, "401: Unauthorized")
        for method, pattern, handler in self._routes():
            match = re.fullmatch(pattern, path)
            if method == request.method and match:
                response = await handler(call, **match.groupdict())
                held = self._is_held(method, path)
                while held:  # until reset_holds(); the caller may be long gone
                    await asyncio.sleep(0.05)
                    held = self._is_held(method, path)
                return response
        return _error(404, "404: Not Found")

    def _routes(self) -> list[tuple[str, str, Callable[..., Any]]]:
        return [
            ("GET", r"/gateway/bot", self._get_gateway_bot),
            ("GET", r"/gateway", self._get_gateway_bot),
            ("GET", r"/users/@me", self._get_me),
            ("GET", r"/oauth2/applications/@me", self._get_application),
            ("PUT", r"/applications/(?P<app>\d+)/commands", self._put_commands),
            ("PUT", r"/applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands", self._put_commands),
            ("GET", r"/channels/(?P<channel>\d+)", self._get_channel),
            ("POST", r"/channels/(?P<channel>\d+)/typing", self._typing),
            ("POST", r"/channels/(?P<channel>\d+)/messages", self._post_message),
            ("GET", r"/channels/(?P<channel>\d+)/messages", self._get_messages),
            ("PATCH", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)", self._patch_message),
            ("POST", r"/channels/(?P<channel>\d+)/messages/(?P<message>\d+)/threads", self._start_thread),
            ("POST", r"/interactions/(?P<interaction>\d+)/(?P<token>[^/]+)/callback", self._callback),
            ("PATCH", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)/messages/@original", self._patch_original),
            ("POST", r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)", self._followup),
        ]

    async def _get_gateway_bot(self, call: Call) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _get_me(self, call: Call) -> web.Response:
        return _json(self.bot_user)

    async def _get_application(self, call: Call) -> web.Response:
        return _json(
            {
                "id": str(self.application_id),
                "name": "Ask Hub",
                "icon": None,
                "description": "",
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.user,
                "verify_key": "00" * 32,
                "flags": 0,
                "bot": self.bot_user,
                "summary": "",
                "team": None,
                "interactions_endpoint_url": None,
            }
        )

    async def _put_commands(self, call: Call, app: str, guild: str | None = None) -> web.Response:
        commands = []
        for command in call.json or []:
            entry = {**command, "id": str(self.next_id()), "application_id": app, "version": "1"}
            if guild:
                entry["guild_id"] = guild
            entry.setdefault("type", 1)
            commands.append(entry)
        return _json(commands)

    async def _get_channel(self, call: Call, channel: str) -> web.Response:
        if channel not in self.channels:
            return _error(404, "Unknown Channel", 10003)
        return _json(self.channels[channel])

    async def _typing(self, call: Call, channel: str) -> web.Response:
        return web.Response(status=204)

    def _message(self, channel_id: str, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
        message = {
            "id": str(self.next_id()),
            "channel_id": channel_id,
            "author": self.bot_user,
            "content": body.get("content") or "",
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "pinned": False,
            "type": 19 if body.get("message_reference") else 0,
            "flags": body.get("flags") or 0,
            **extra,
        }
        if body.get("message_reference"):
            message["message_reference"] = body["message_reference"]
        guild = self.channels.get(channel_id, {}).get("guild_id")
        if guild:
            message["guild_id"] = guild
        with self._cond:
            self.messages[message["id"]] = message
            self._cond.notify_all()
        return message

    def _edit(self, message: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        with self._cond:
            for key in ("content", "embeds", "components"):
                if key in body:
                    message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
            message["edited_timestamp"] = _now()
            self._cond.notify_all()
        return message

    async def _post_message(self, call: Call, channel: str) -> web.Response:
        body = call.json or {}
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            # Discord: a repeat of a nonce by the same author (within a few minutes) returns the
            # message it created the first time instead of creating another.
            with self._cond:
                for message in self.messages.values():
                    if message["channel_id"] == channel and message.get("nonce") == str(nonce):
                        self.nonce_repeats += 1
                        return _json(message)
        return _json(self._message(channel, body, **({"nonce": str(nonce)} if nonce is not None else {})))

    async def _patch_message(self, call: Call, channel: str, message: str) -> web.Response:
        stored = self.messages.get(message)
        if stored is None or stored["channel_id"] != channel:
            return _error(404, "Unknown Message", 10008)
        return _json(self._edit(stored, call.json or {}))

    async def _get_messages(self, call: Call, channel: str) -> web.Response:
        """A channel's history as Discord gives it: at most ``limit`` messages, newest first; with
        ``after``, the ones right after it (only the bot's own: people's reach the bot as events)."""
        after, limit = int(call.query.get("after") or 0), min(int(call.query.get("limit") or 50), 100)
        with self._cond:
            found = sorted((m for m in self.messages.values() if m["channel_id"] == channel and int(m["id"]) > after),
                           key=lambda m: int(m["id"]))  # fmt: skip
        return _json(list(reversed(found[:limit])))

    async def _start_thread(self, call: Call, channel: str, message: str) -> web.Response:
        parent = self.channels.get(channel)
        if parent is None:
            return _error(404, "Unknown Channel", 10003)
        if message in self.channels:
            return _error(400, "A thread has already been created for this message", 160004)
        body = call.json or {}
        thread = {
            "id": message,  # Discord gives a thread started from a message that message's id
            "type": 11,
            "guild_id": parent["guild_id"],
            "parent_id": channel,
            "owner_id": self.bot_user["id"],
            "name": body.get("name", ""),
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": body.get("rate_limit_per_user") or 0,
            "flags": 0,
            "total_message_sent": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": body.get("auto_archive_duration", 1440),
                "archive_timestamp": _now(),
                "locked": False,
            },
        }
        self.channels[message] = thread
        await self._broadcast("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, status=201)

    async def _callback(self, call: Call, interaction: str, token: str) -> web.Response:
        body = call.json or {}
        flags = (body.get("data") or {}).get("flags") or 0
        if body.get("type") == 4:
            self._message(str(self.channel_id), body.get("data") or {}, interaction_token=token)
        return _json(
            {
                "interaction": {
                    "id": interaction,
                    "type": 2,
                    "response_message_loading": body.get("type") == 5,
                    "response_message_ephemeral": bool(flags & 64),
                },
                "resource": {"type": body.get("type")},
            }
        )

    async def _patch_original(self, call: Call, app: str, token: str) -> web.Response:
        if self.original_not_ready > 0:
            self.original_not_ready -= 1
            return _error(404, "Unknown Webhook", 10015)
        key = f"original:{token}"
        with self._cond:
            stored = self.messages.get(key)
        if stored is None:
            stored = self._message(str(self.channel_id), {}, webhook_token=token)
            with self._cond:  # keep it findable under the token, as @original is
                self.messages[key] = self.messages.pop(stored["id"])
        return _json(self._edit(stored, call.json or {}))

    async def _followup(self, call: Call, app: str, token: str) -> web.Response:
        return _json(self._message(str(self.channel_id), call.json or {}, webhook_token=token))

    def webhook_messages(self, token: str) -> list[dict[str, Any]]:
        """The original response (first) and the follow-ups of one interaction, as they stand now."""
        with self._cond:
            return [m for m in self.messages.values() if m.get("webhook_token") == token]
