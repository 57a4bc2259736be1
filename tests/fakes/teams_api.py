"""A real-HTTP fake of what a Teams bot talks to: the Bot Framework OpenID metadata and signing
keys, the Azure AD token endpoint, and the Bot Connector (the ``serviceUrl`` of every activity).

    GET  /openid                                  OpenID metadata (issuer, jwks_uri)
    GET  /keys                                    the signing keys (JWKS, with Teams' endorsements)
    POST /token                                   client-credentials grant -> a bearer token
    POST /v3/conversations/{id}/activities[/{reply_to}]   send (a new message, or in a reply chain)
    PUT  /v3/conversations/{id}/activities/{activity}     update a message

Like the connector it checks the bearer token it issued and refuses an activity whose JSON is
larger than 28 KB (413). It also plays Teams' streaming for bots (personal chats): a ``typing``
activity with a ``streaminfo`` entity and ``streamSequence`` 1 opens a stream (201, the id is the
``streamId``); further ``typing`` updates must name that stream, raise the sequence and keep the
text shown so far (400 otherwise), come at most once per ``stream_interval`` (429 otherwise:
``rate_limited``); a ``message`` with ``streamType: final`` (no sequence) ends it, and anything
after that is a 403, as Teams answers. A stream is one ``TeamsMessage`` (its updates in
``stream``; the final message is its ``activity``). ``sign()`` makes the JWT the Bot Framework puts on each activity it
sends to the bot; ``activity()`` builds one. What reached a conversation is in ``messages``.

    with FakeTeams(app_id="app", app_password="pw") as teams:
        ...  # TEAMS_OPENID_URL=teams.openid_url, TEAMS_TOKEN_URL=teams.token_url
        body = teams.activity("hello", conversation="a:1", kind="personal")
        httpx.post(hub + "/teams/messages", json=body, headers=teams.auth_header(body))
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .server import LoopbackServer

__all__ = ["FakeTeams", "TeamsMessage"]

ISSUER = "https://api.botframework.com"
BOT_ID = "28:askhub-bot"
MAX_ACTIVITY_BYTES = 28 * 1024


@dataclass
class TeamsMessage:
    """One message the bot posted: where, in reply to what, and its latest content."""

    id: str
    conversation: str
    reply_to: str | None
    activity: dict[str, Any]
    updates: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stream: list[dict[str, Any]] = field(default_factory=list)  # the typing activities of a stream
    ended: bool = False  # a stream's final message arrived
    written: float = 0.0  # monotonic time of the last write to a stream

    @property
    def text(self) -> str:
        return str(self.activity.get("text") or "")

    def everything(self) -> str:
        return json.dumps(self.activity, ensure_ascii=False)

    def cards(self) -> str:
        """The message's attachments (its cards and their actions) as JSON, to look into."""
        return json.dumps(self.activity.get("attachments") or [], ensure_ascii=False)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeTeams(LoopbackServer):
    def __init__(
        self, *, app_id: str = "teams-app-id", app_password: str = "teams-app-password", stream_interval: float = 1.0
    ) -> None:
        super().__init__()
        self.stream_interval = stream_interval
        self.rate_limited = 0
        self.stream_errors: list[str] = []  # why a streaming activity was refused (400 / 403)
        self.app_id, self.app_password = app_id, app_password
        self._key, self.kid = _new_key(), "fake-kid-1"
        self.stranger_key = _new_key()  # a key the JWKS does not list
        self._lock = threading.Lock()
        self.messages: dict[str, TeamsMessage] = {}
        self.order: list[str] = []
        self.token_requests = 0
        self.key_requests = 0
        self.refused: list[tuple[int, str]] = []
        self._tokens: set[str] = set()

    # -- URLs for the hub's settings -------------------------------------------------------------

    @property
    def openid_url(self) -> str:
        return f"{self.url}/openid"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def service_url(self) -> str:
        return f"{self.url}/"

    def rotate(self) -> None:
        """A new signing key under a new kid (the Bot Framework rolls its keys)."""
        self._key, self.kid = _new_key(), f"fake-kid-{uuid.uuid4().hex[:8]}"

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.order.clear()
            self.refused.clear()
            self.stream_errors.clear()
            self.rate_limited = 0

    # -- what the Bot Framework sends ------------------------------------------------------------

    def sign(
        self,
        *,
        audience: str | None = None,
        expired: bool = False,
        stranger: bool = False,
        issuer: str = ISSUER,
        service_url: str | None = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience or self.app_id,
            "iat": now - 7200 if expired else now - 10,
            "nbf": now - 7200 if expired else now - 10,
            "exp": now - 3600 if expired else now + 3600,
            "serviceurl": service_url or self.service_url,
        }
        key = self.stranger_key if stranger else self._key
        kid = "stranger-kid" if stranger else self.kid
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    def auth_header(self, body: dict[str, Any] | None = None, **sign: Any) -> dict[str, str]:
        if body is not None:
            sign.setdefault("service_url", body.get("serviceUrl"))
        return {"Authorization": f"Bearer {self.sign(**sign)}"}

    def deliver(self, hub_url: str, body: dict[str, Any]) -> httpx.Response:
        """Posts an activity to the bot's endpoint as the Bot Framework does, signed."""
        return httpx.post(f"{hub_url}/teams/messages", json=body, headers=self.auth_header(body), timeout=10)

    def activity(
        self,
        text: str,
        *,
        conversation: str,
        kind: str = "personal",
        tenant: str = "tenant-staff",
        user: str = "29:user-1",
        aad: str = "aad-user-1",
        mention: bool = False,
        activity_id: str | None = None,
        value: dict[str, Any] | None = None,
        reply_to: str | None = None,
        channel: str | None = None,
    ) -> dict[str, Any]:
        """A message activity as Teams sends it (personal chat, group chat or channel)."""
        entities: list[dict[str, Any]] = []
        if mention:
            text = f"<at>Ask Hub</at> {text}"
            entities.append(
                {"type": "mention", "text": "<at>Ask Hub</at>", "mentioned": {"id": BOT_ID, "name": "Ask Hub"}}
            )
        channel_data: dict[str, Any] = {"tenant": {"id": tenant}}
        if kind == "channel":
            channel_data["channel"] = {"id": channel or conversation.split(";")[0]}
            channel_data["team"] = {"id": "19:team@thread.tacv2"}
        body: dict[str, Any] = {
            "type": "message",
            "id": activity_id or str(int(time.time() * 1000)) + uuid.uuid4().hex[:6],
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "serviceUrl": self.service_url,
            "channelId": "msteams",
            "from": {"id": user, "name": "A User", "aadObjectId": aad},
            "conversation": {
                "id": conversation,
                "conversationType": kind,
                "tenantId": tenant,
                **({"isGroup": True} if kind != "personal" else {}),
            },
            "recipient": {"id": BOT_ID, "name": "Ask Hub"},
            "text": text,
            "textFormat": "plain",
            "entities": entities,
            "channelData": channel_data,
        }
        if value is not None:
            body["value"] = value
            body.pop("text")
        if reply_to is not None:
            body["replyToId"] = reply_to
        return body

    # -- what the bot sees -----------------------------------------------------------------------

    def in_conversation(self, conversation: str) -> list[TeamsMessage]:
        with self._lock:
            return [self.messages[i] for i in self.order if self.messages[i].conversation == conversation]

    def all(self) -> list[TeamsMessage]:
        with self._lock:
            return [self.messages[i] for i in self.order]

    # -- the server ------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_get("/openid", self._openid)
        app.router.add_get("/keys", self._keys)
        app.router.add_post("/token", self._token)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._send)
        app.router.add_post("/v3/conversations/{conversation}/activities/{reply_to}", self._send)
        app.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._update)
        return app

    async def _openid(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": ISSUER, "jwks_uri": f"{self.url}/keys",
                                  "id_token_signing_alg_values_supported": ["RS256"],
                                  "token_endpoint_auth_methods_supported": ["private_key_jwt"]})  # fmt: skip

    async def _keys(self, request: web.Request) -> web.Response:
        self.key_requests += 1
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "endorsements": ["msteams"]})
        return web.json_response({"keys": [jwk]})

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != self.app_id
            or form.get("client_secret") != self.app_password
            or form.get("scope") != "https://api.botframework.com/.default"
        ):
            return web.json_response({"error": "invalid_client"}, status=401)
        self.token_requests += 1
        token = "bf-" + uuid.uuid4().hex
        self._tokens.add(token)
        return web.json_response({"token_type": "Bearer", "expires_in": 3599, "access_token": token})

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[7:] in self._tokens

    async def _read(self, request: web.Request) -> dict[str, Any] | web.Response:
        if not self._authorized(request):
            self.refused.append((401, request.path))
            return web.json_response({"error": {"code": "Unauthorized", "message": "bad token"}}, status=401)
        raw = await request.read()
        if len(raw) > MAX_ACTIVITY_BYTES:
            self.refused.append((413, request.path))
            return web.json_response({"error": {"code": "MessageSizeTooBig", "message": "too large"}}, status=413)
        body: dict[str, Any] = json.loads(raw)
        return body

    async def _send(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        if isinstance(body, web.Response):
            return body
        conversation = request.match_info["conversation"]
        reply_to = request.match_info.get("reply_to")
        if body.get("replyToId"):
            reply_to = str(body["replyToId"])
        info = _streaminfo(body)
        if info is not None:
            return self._streaming(conversation, reply_to, body, info)
        message_id = str(int(time.time() * 1000)) + uuid.uuid4().hex[:6]
        with self._lock:
            self.messages[message_id] = TeamsMessage(message_id, conversation, reply_to, body)
            self.order.append(message_id)
        return web.json_response({"id": message_id}, status=201)

    def _streaming(
        self, conversation: str, reply_to: str | None, body: dict[str, Any], info: dict[str, Any]
    ) -> web.Response:
        def refuse(status: int, code: str, why: str) -> web.Response:
            self.stream_errors.append(why)
            return web.json_response({"error": {"code": code, "message": why}}, status=status)

        kind, stream_id, sequence = (
            info.get("streamType", "streaming"),
            info.get("streamId"),
            info.get("streamSequence"),
        )
        final = body.get("type") == "message"
        if final != (kind == "final") or body.get("type") not in ("typing", "message"):
            return refuse(400, "BadRequest", f"a {body.get('type')} activity with streamType {kind}")
        if not str(body.get("text") or ""):
            return refuse(400, "BadRequest", "streaming activities should include text")
        with self._lock:
            if stream_id is None:  # opens a stream
                if final or sequence != 1:
                    return refuse(400, "BadRequest", f"a stream must start with streamSequence 1, not {sequence}")
                message_id = str(int(time.time() * 1000)) + uuid.uuid4().hex[:6]
                self.messages[message_id] = TeamsMessage(message_id, conversation, reply_to, body, stream=[body],
                                                         written=time.monotonic())  # fmt: skip
                self.order.append(message_id)
                return web.json_response({"id": message_id}, status=201)
            message = self.messages.get(str(stream_id))
            if message is None or not message.stream or message.conversation != conversation:
                return refuse(400, "BadRequest", f"no stream {stream_id} in this conversation")
            if message.ended:
                return refuse(
                    403,
                    "ContentStreamNotAllowed",
                    "Content stream is not allowed on an already completed streamed message",
                )
            if time.monotonic() - message.written < self.stream_interval:
                self.rate_limited += 1
                return web.json_response({"error": {"code": "Throttled", "message": "API calls quota exceeded"}},
                                         status=429)  # fmt: skip
            last = max(int((_streaminfo(a) or {}).get("streamSequence") or 0) for a in message.stream)
            if final:
                if sequence is not None:
                    return refuse(400, "BadRequest", "the final message must not carry a streamSequence")
                message.history.append(message.activity)
                message.activity, message.ended, message.updates = body, True, message.updates + 1
            else:
                if not isinstance(sequence, int) or sequence <= last:
                    return refuse(400, "BadRequest", f"streamSequence {sequence} after {last}")
                shown = [str(a.get("text") or "") for a in message.stream if _streaminfo(a, "streaming")]
                if shown and not str(body.get("text") or "").startswith(shown[-1]):
                    return refuse(400, "BadRequest", "a streaming update must hold the text streamed before it")
                message.stream.append(body)
                message.activity = body
            message.written = time.monotonic()
        return web.json_response({}, status=202)

    async def _update(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        if isinstance(body, web.Response):
            return body
        activity_id = request.match_info["activity"]
        with self._lock:
            message = self.messages.get(activity_id)
            if (
                message is None
                or message.conversation.split(";")[0] != request.match_info["conversation"].split(";")[0]
            ):
                return web.json_response({"error": {"code": "NotFound", "message": "no such activity"}}, status=404)
            message.history.append(message.activity)
            message.activity = body
            message.updates += 1
        return web.json_response({"id": activity_id})


def _streaminfo(activity: dict[str, Any], kind: str | None = None) -> dict[str, Any] | None:
    for entity in activity.get("entities") or []:
        ours = isinstance(entity, dict) and entity.get("type") == "streaminfo"
        if ours and (kind is None or entity.get("streamType", "streaming") == kind):
            return dict(entity)
    return None
