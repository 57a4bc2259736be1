"""Receive: Slack's requests into one slack-bolt AsyncApp, over HTTP or Socket Mode.

    POST /slack/events   events, interactivity and slash commands (one Request URL), signed
                         with SLACK_SIGNING_SECRET: bad or stale (over 5 minutes) -> 401 JSON
    Socket Mode          slack-bolt's async handler on slack_sdk's aiohttp client, for
                         workspaces without a public URL (SLACK_APP_TOKEN)

Every listener does the same few, fast things and returns, which acknowledges the request
(the app runs with ``process_before_response``, so the ack goes out after them, well inside
Slack's 3 seconds whatever the model does): decide whether the bot answers, claim the
message in the shared ledger (a retry, or the second event Slack sends for one message, is
a duplicate), submit a job, return. If the job cannot be queued the claim is released and
Slack gets a 503, so its retry is answered. The answer is reply.py's job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response

from adapters.slack import translate
from adapters.slack.desk import ACTION_JOB, REPLY_JOB, SAVE_JOB, SlackDesk
from adapters.slack.desk_blocks import ACTION_SAVE, SAVE_VIEW
from adapters.slack.reply import Replier
from adapters.slack.translate import PLATFORM, Ignored, Incoming
from core.auth.platforms import unplaced
from core.config import Settings
from core.errors import BadRequest, HubError, Unauthorized
from core.inbox.door import Door
from core.llm.prompt import language_of
from core.messages import polite
from core.metrics import ADAPTER_ACK_SECONDS, ADAPTER_EVENTS

log = logging.getLogger("askhub.slack")
# slack-bolt and slack_sdk log through the hub's pipeline (warnings and up), which writes an
# exception's type only: never a traceback that could quote a message, never to bare stderr.
SDK_LOG = logging.getLogger("askhub.slack.sdk")
SDK_LOG.setLevel(logging.WARNING)


class _SkipTokenNotice(logging.Filter):
    """Bolt notes that SLACK_BOT_TOKEN in the environment is unused beside our client: expected."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


SDK_LOG.addFilter(_SkipTokenNotice())


ANSWER_JOB, FEEDBACK_JOB = "slack.answer", "slack.feedback"
USAGE = "Ask me anything about the company, e.g. `/ask How do I set up the VPN?`"


def api_url(settings: Settings) -> str:
    url = settings.slack_api_url
    return url if url.endswith("/") else url + "/"


class SlackTransport:
    """The Bolt app, its listeners, and the two ways requests reach it."""

    def __init__(self, door: Door) -> None:
        settings = door.settings
        assert settings.slack_bot_token is not None
        self.door = door
        self.web = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(), base_url=api_url(settings), logger=SDK_LOG
        )
        secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
        self._verifier = SignatureVerifier(secret) if secret.strip() else None
        self.app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else None
        self.replier = Replier(door, self.web)
        self.app = AsyncApp(
            name="askhub.slack.app",  # Bolt's per-listener loggers are named after the app
            client=self.web,
            signing_secret=secret,
            # The HTTP route verifies signatures itself, to answer the contract's JSON 401;
            # Socket Mode needs none.
            request_verification_enabled=False,
            process_before_response=True,
            logger=SDK_LOG,
        )
        self.app.event(re.compile(r"^(app_mention|message)$"))(self._on_event)
        self.app.command(re.compile(r"^/ask"))(self._on_command)
        self.app.action(re.compile(r"^askhub_feedback_(up|down)$"))(self._on_action)
        self.app.event(re.compile(r".*"))(self._on_other_event)  # acked: an unhandled event would be retried
        self._requests = AsyncSlackRequestHandler(self.app)
        door.inbox.declare(ANSWER_JOB, self.replier.answer)
        door.inbox.declare(FEEDBACK_JOB, self.replier.feedback)
        slack_desk = door.handoff.enabled and door.handoff.desk_platform == "slack"
        self.desk = SlackDesk(door, self.web) if slack_desk else None  # the agents' side of handoffs
        if self.desk is not None:
            door.handoff.register_desk(self.desk)
            door.inbox.declare(REPLY_JOB, self.desk.relay_reply)
            door.inbox.declare(ACTION_JOB, self.desk.act)
            self.app.action(re.compile(r"^handoff_(resolve|take)$"))(self._on_handoff_action)
            door.inbox.declare(SAVE_JOB, self.desk.save)
            self.app.action(ACTION_SAVE)(self._on_handoff_save)
            self.app.view(SAVE_VIEW)(self._on_handoff_saved)

    # -- listeners (each returns quickly: that return is the ack) --

    async def _on_event(self, body: dict[str, Any], context: Any, request: AsyncBoltRequest) -> Any:
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        if self.desk is not None:  # a reply in a handoff thread goes to the customer, never to the bot
            reply = self.desk.thread_reply(body, bot_user_id=context.bot_user_id, bot_id=context.bot_id)
            if reply is not None:
                if not reply:
                    ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
                    return None
                return await self._accept(reply["key"], REPLY_JOB, reply, event_id=body.get("event_id"))
        got = translate.from_event(body, bot_user_id=context.bot_user_id, bot_id=context.bot_id)
        tenant = translate.tenant_for(self.door.settings, got.team) if isinstance(got, Incoming) else None
        if isinstance(got, Incoming) and tenant is None:
            unplaced(PLATFORM, got.team)  # acknowledged, never answered, never in a tenant
            return None
        if isinstance(got, Incoming) and got.kind == "thread":
            # A reply in a thread without a mention: answered only in threads the bot answers.
            assert tenant is not None
            try:
                answering = await self.door.threads.marked(
                    PLATFORM, tenant, translate.thread_id(got.team, got.channel, got.thread_ts or "")
                )
            except HubError as exc:  # the shared state is down: let Slack retry later
                log.warning("slack thread lookup failed", extra={"exc": type(exc).__name__})
                return _busy()
            if not answering:
                got = Ignored("not_addressed")
        if isinstance(got, Ignored):
            ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
            log.debug("slack event ignored", extra={"event_id": body.get("event_id"), "reason": got.reason})
            return None
        retry = _header(request.headers, "x-slack-retry-num")
        return await self._accept(got.key, ANSWER_JOB, {"incoming": got.as_payload(), "request_id": _rid()},
                                  event_id=body.get("event_id"), retry=retry)  # fmt: skip

    async def _on_command(self, body: dict[str, Any], ack: Any) -> Any:
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        incoming = translate.from_command(body)
        if translate.tenant_for(self.door.settings, incoming.team) is None:
            unplaced(PLATFORM, incoming.team)
            await ack()
            return None
        if not incoming.text:
            ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
            await ack(USAGE)
            return None
        refused = await self._accept(incoming.key, ANSWER_JOB, {"incoming": incoming.as_payload(),
                                                                "request_id": _rid()})  # fmt: skip
        # Slack does not retry slash commands: say "busy" instead of letting the command fail.
        await ack(polite("unavailable", language=language_of(incoming.text)) if refused else "")
        return None

    async def _on_action(self, body: dict[str, Any], action: dict[str, Any], ack: Any) -> Any:
        vote = translate.from_action(body, action)
        if vote is None:
            await ack()
            return None
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        if translate.tenant_for(self.door.settings, vote.team) is None:
            unplaced(PLATFORM, vote.team)
            await ack()
            return None
        refused = await self._accept(vote.key, FEEDBACK_JOB, vote.as_payload())
        if refused is not None:
            return refused  # the button shows a warning; clicking again works
        await ack()
        return None

    async def _on_handoff_action(self, body: dict[str, Any], action: dict[str, Any], ack: Any) -> Any:
        assert self.desk is not None
        payload = self.desk.action(body, action)
        if payload is None:
            await ack()
            return None
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        refused = await self._accept(payload["key"], ACTION_JOB, payload)
        if refused is not None:
            return refused
        await ack()
        return None

    async def _on_handoff_save(self, body: dict[str, Any], ack: Any) -> None:
        await ack()
        assert self.desk is not None
        try:
            await self.desk.open_save(body)
        except Exception as exc:  # the button can be clicked again
            log.warning("verified answer form not opened", extra={"exc": type(exc).__name__})

    async def _on_handoff_saved(self, body: dict[str, Any], ack: Any) -> Any:
        assert self.desk is not None
        payload = self.desk.saved(body)
        if isinstance(payload, str):
            await ack(response_action="errors", errors={payload: "Please fill this in."})
            return None
        refused = await self.desk.refusal(payload)  # not an agent, or a collection the customer cannot read
        if refused is not None:
            await ack(response_action="errors", errors=refused)
            return None
        refused = await self._accept(payload["key"], SAVE_JOB, payload)
        if refused is not None:
            await ack(response_action="errors", errors={"answer": "The hub is busy; please try again."})
            return None
        await ack()
        return None

    async def _on_other_event(self) -> None:
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()

    async def _accept(
        self, key: str, job: str, payload: dict[str, Any], *, event_id: str | None = None, retry: str | None = None
    ) -> BoltResponse | None:
        """Claim, queue, and let the listener return (the ack). None when accepted or a duplicate;
        a 503 when the work could not be queued (the claim is released, so a retry is answered)."""
        try:
            if not await self.door.inbox.accept(PLATFORM, key, job, payload):
                ADAPTER_EVENTS.labels(PLATFORM, "duplicate").inc()
                log.info("slack duplicate delivery skipped", extra={"event": key, "event_id": event_id,
                                                                    "retry": retry})  # fmt: skip
                return None
        except Exception as exc:  # the inbox released the claim: Slack's retry is answered
            ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
            log.warning("slack event not accepted", extra={"event": key, "exc": type(exc).__name__})
            return _busy()
        log.info("slack event accepted", extra={"event": key, "event_id": event_id, "retry": retry, "job": job})
        return None

    # -- HTTP --

    async def http_endpoint(self, request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        if not self._signed(body, request.headers):
            raise Unauthorized("invalid or expired Slack request signature")
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest("the body is not UTF-8") from None
        response = await self._requests.handle(request)  # slack-bolt's own request conversion
        ADAPTER_ACK_SECONDS.labels(PLATFORM).observe(time.perf_counter() - started)
        return response

    def _signed(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """v0 HMAC-SHA256 of ``v0:{timestamp}:{body}``, timestamp within 5 minutes of now."""
        if self._verifier is None:
            return False
        try:
            return self._verifier.is_valid(
                body=body,
                timestamp=headers.get("x-slack-request-timestamp"),
                signature=headers.get("x-slack-signature"),
            )
        except (ValueError, UnicodeDecodeError):  # a timestamp that is not a number
            return False

    # -- Socket Mode --

    async def run_socket_mode(self) -> None:
        """Connect (apps.connections.open -> websocket) and serve until cancelled; the client
        reconnects by itself when Slack rotates or drops the connection."""
        assert self.app_token is not None
        handler = _SocketModeHandler(self.app, self.app_token, logger=SDK_LOG, web_client=self.web)
        try:
            await handler.connect_async()
            log.info("slack socket mode connected")
            await asyncio.Event().wait()
        finally:
            await _quietly(handler.close_async())


class _SocketModeHandler(AsyncSocketModeHandler):
    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.perf_counter()
        await super().handle(client, req)  # dispatch, then the envelope ack (only for a 200)
        ADAPTER_ACK_SECONDS.labels(PLATFORM).observe(time.perf_counter() - started)


def _busy() -> BoltResponse:
    """503 with the hub's JSON error body (Slack retries it): never an empty text/plain answer."""
    body = {"error": {"type": "unavailable", "message": "the hub cannot take this event now; Slack's retry will be"}}
    return BoltResponse(
        status=503, body=json.dumps(body), headers={"content-type": "application/json", "retry-after": "1"}
    )


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if isinstance(value, list | tuple):
        return str(value[0]) if value else None
    return str(value) if value is not None else None


def _rid() -> str:
    return uuid.uuid4().hex


async def _quietly(coro: Any) -> None:
    try:
        await coro
    except Exception as exc:
        log.debug("cleanup failed", extra={"exc": type(exc).__name__})
