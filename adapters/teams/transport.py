"""Teams in: the endpoint (verify, decide, claim, queue, ack) and the job that answers one activity.

``POST /teams/messages`` checks the Bot Framework JWT (auth.py; 401 otherwise), decides at once
what the activity is (translate.py: a question, a button, nothing for us, or a tenant that is
not mapped — refused and logged once per tenant and process), claims it in the core inbox by
conversation + activity id (a redelivery is skipped), queues a job and answers 200. In a personal chat the
job streams the answer (Teams' streaming for bots: render.stream_*), updated at most once per
``teams.progress_interval_sec`` through core's ``Progress``, and ends the stream with the answer;
in group chats and channels (where Teams does not stream bots) it posts "…" in the reply chain
and edits it into the answer. A long answer continues in more messages. The stream's or the
placeholder's id is noted first, so a worker that reclaims the job after a crash finishes the
same stream, or edits the same message, instead of posting a second answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from fastapi import Request
from starlette.responses import JSONResponse, Response

from adapters.teams import handoff, render
from adapters.teams.auth import BotFrameworkVerifier, Unverified
from adapters.teams.connector import Connector, ConnectorError
from adapters.teams.translate import PLATFORM, Incoming, event_id, parse, parse_feedback, to_request, translate
from core.ask import Delta
from core.errors import BadRequest, HubError, Unauthorized
from core.handoff import HandoffUnavailable, Intercept
from core.inbox import Answer
from core.inbox.door import Door
from core.llm.prompt import language_of
from core.metrics import ADAPTER_ACK_SECONDS, ADAPTER_EVENTS
from core.progress import Progress

if TYPE_CHECKING:
    from adapters.teams.desk import TeamsDesk

log = logging.getLogger("askhub.teams")

JOB = "teams.activity"
MAX_BODY = 256 * 1024


class TeamsBot:
    def __init__(self, door: Door, verifier: BotFrameworkVerifier, connector: Connector) -> None:
        self.door, self.verifier, self.connector = door, verifier, connector
        self.desk: TeamsDesk | None = None  # when Teams is the agents' desk
        self._refused: set[str] = set()

    # -- in --------------------------------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        started = time.perf_counter()
        authorization = request.headers.get("authorization", "")
        if not authorization:
            raise Unauthorized("missing Bot Framework token")
        body = await request.body()
        if len(body) > MAX_BODY:
            raise BadRequest("the activity is too large")
        try:
            raw = json.loads(body)
            if not isinstance(raw, dict):
                raise TypeError
        except (ValueError, TypeError):
            raise BadRequest("the body is not a Bot Framework activity") from None
        try:
            await self.verifier.verify(authorization, str(raw.get("serviceUrl") or ""), str(raw.get("channelId") or ""))
        except Unverified as exc:
            log.info("activity refused", extra={"why": str(exc)})
            raise Unauthorized("invalid Bot Framework token") from None
        ADAPTER_EVENTS.labels(PLATFORM, "received").inc()
        await self._accept(raw)
        ADAPTER_ACK_SECONDS.labels(PLATFORM).observe(time.perf_counter() - started)
        return JSONResponse({})

    async def _accept(self, raw: dict[str, Any]) -> None:
        activity = parse(raw)
        event = event_id(activity) if activity is not None else None
        if activity is None or event is None:
            ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
            return
        incoming = translate(activity, self.door.settings.teams, event)
        if self.desk is not None and self.desk.ours(incoming):  # the agents' channel: the desk's
            await self.desk.accept(incoming, raw)
            return
        if incoming.action == "refused":
            self._refuse(incoming)
            return
        if incoming.action in ("ignore", "desk"):  # a desk button outside the desk: not ours
            log.info("activity ignored", extra={"event_id": event, "why": incoming.why or incoming.action})
            ADAPTER_EVENTS.labels(PLATFORM, "ignored").inc()
            return
        if not await self.door.inbox.accept(PLATFORM, event, JOB, {"activity": raw, "event": event}):
            log.info("duplicate activity skipped", extra={"event_id": event})
            ADAPTER_EVENTS.labels(PLATFORM, "duplicate").inc()

    def _refuse(self, incoming: Incoming) -> None:
        """A tenant the hub does not serve: no answer, and one log line per tenant (not per message)."""
        ADAPTER_EVENTS.labels(PLATFORM, "refused").inc()
        if incoming.aad_tenant not in self._refused:
            self._refused.add(incoming.aad_tenant)
            log.warning("Teams tenant not in teams.tenants: its messages are refused",
                        extra={"aad_tenant": incoming.aad_tenant})  # fmt: skip

    # -- the job: one activity -------------------------------------------------------------------

    async def handle(self, payload: dict[str, Any]) -> None:
        event = payload["event"]
        async with self.door.inbox.answer(PLATFORM, event) as answer:
            activity = parse(payload["activity"])
            if activity is None:
                return
            incoming = translate(activity, self.door.settings.teams, event)
            if incoming.action == "feedback":
                await self._feedback(incoming)
            elif incoming.action == "ask":
                await self._answer(incoming, answer)
            answer.shown()

    async def _feedback(self, incoming: Incoming) -> None:
        parsed = parse_feedback(incoming.value or {})
        assert incoming.where is not None
        if parsed is None:
            return
        request_id, rating, language = parsed
        stored = await self.door.feedback.record(request_id, rating, platform=PLATFORM, user=incoming.user,
                                                 tenant=incoming.tenant)  # fmt: skip
        log.info("feedback", extra={"event_id": incoming.event_id, "request_id": request_id, "stored": stored})
        where = incoming.where
        offer = rating == "down" and where.kind == "personal" and self.door.handoff.covers(PLATFORM, incoming.tenant)
        person = self.door.handoff.request_text(language) if offer else None  # after a 👎: a person, one tap away
        thanked = render.thanks(language, person=person)
        await self.connector.reply(where.service_url, where.conversation, where.reply_to, thanked)

    async def _answer(self, incoming: Incoming, answer: Answer) -> None:
        """Post "…", ask, edit it into the answer. A connector failure raises: nothing is marked
        shown, the event is released and the job runs again, editing the noted placeholder."""
        where = incoming.where
        assert where is not None
        if where.kind == "personal" and self.door.handoff.enabled:
            try:
                got = await self.door.handoff.intercept(handoff.message_of(incoming))
            except HandoffUnavailable:  # the desk cannot take it now: the bot answers instead
                got = Intercept("bot")
            if got.action == "relayed":
                return  # the agents have it; the bot says nothing
            if got.action == "started":
                await self.connector.reply(where.service_url, where.conversation, where.reply_to,
                                           render.message(got.say or ""))  # fmt: skip
                return
        if where.kind == "personal" and not answer.opened.get("placeholder") and await self._stream(incoming, answer):
            return
        placeholder = answer.opened.get("placeholder")
        if not placeholder:
            if answer.opened.get("posting"):
                log.warning("a placeholder may have been posted before a crash; posting another",
                            extra={"event_id": incoming.event_id})  # fmt: skip
            await answer.note(posting=True)
            placeholder = await self.connector.reply(where.service_url, where.conversation, where.reply_to,
                                                     render.thinking())  # fmt: skip
            await answer.note(placeholder=placeholder)
        request_id = uuid.uuid4().hex
        answered = False
        try:
            result = await self.door.asker.ask(to_request(incoming, request_id))
            activities = render.answer_activities(result)
            answered = True
        except Exception as exc:  # every failure still gets a short, polite message
            if not isinstance(exc, HubError):
                log.error("ask failed", extra={"event_id": incoming.event_id, "exc": type(exc).__name__})
            activities = [render.error_activity(exc, incoming.question, request_id)]
        first, *more = activities
        await self.connector.update(where.service_url, where.conversation, placeholder, first)
        answer.shown()
        await self._finish(incoming, more, request_id, answered)

    async def _finish(self, incoming: Incoming, more: list[dict[str, Any]], request_id: str, answered: bool) -> None:
        where = incoming.where
        assert where is not None
        for extra in more:
            await self.connector.reply(where.service_url, where.conversation, where.reply_to, extra)
        outcome = "answered" if answered else "failed"
        log.info(
            "activity handled", extra={"event_id": incoming.event_id, "request_id": request_id, "outcome": outcome}
        )
        ADAPTER_EVENTS.labels(PLATFORM, outcome).inc()

    async def _stream(self, incoming: Incoming, answer: Answer) -> bool:
        """A personal chat: open a stream (its id noted before the model is asked), show the
        answer as it grows, end the stream with the answer. False when Teams refuses to stream
        here (403 on the first post): the caller edits a placeholder instead. A reclaimed job
        finds the stream noted and ends that stream, without updates (their sequence died with
        the worker)."""
        where = incoming.where
        assert where is not None
        interval = self.door.settings.teams.progress_interval_sec
        stream_id = str(answer.opened.get("stream") or "")
        resumed, shown_at, sequence = bool(stream_id), 0.0, 1
        if not stream_id:
            if answer.opened.get("posting"):
                log.warning("a stream may have been opened before a crash; opening another",
                            extra={"event_id": incoming.event_id})  # fmt: skip
            await answer.note(posting=True)
            try:
                stream_id = await self.connector.reply(where.service_url, where.conversation, where.reply_to,
                                                       render.stream_start(language_of(incoming.question)))  # fmt: skip
            except ConnectorError as exc:
                if exc.status != 403:
                    raise
                log.info(
                    "Teams refused a stream here; editing a message instead", extra={"event_id": incoming.event_id}
                )
                return False
            if not stream_id:
                raise ConnectorError(None, "stream (no id)")
            shown_at = time.monotonic()
            await answer.note(stream=stream_id)

        async def show(text: str) -> None:
            nonlocal shown_at, sequence
            if resumed or time.monotonic() - shown_at < interval or render.json_bytes(text) > render.TEXT_BYTES:
                return  # the final message shows it (a long answer stops growing here)
            sequence, shown_at = sequence + 1, time.monotonic()
            try:
                await self.connector.reply(where.service_url, where.conversation, where.reply_to,
                                           render.stream_update(text, stream_id, sequence), once=True)  # fmt: skip
            except ConnectorError as exc:  # an update is only progress: the final message carries the answer
                log.info("stream update skipped", extra={"event_id": incoming.event_id, "status": exc.status})

        request_id = uuid.uuid4().hex
        grown, text, answered = Progress(show, interval=interval), "", False
        try:
            result = None
            async for event in self.door.asker.stream(to_request(incoming, request_id)):
                if isinstance(event, Delta):
                    text += event.text
                    await grown.push(text)
                else:
                    result = event
            assert result is not None
            activities = render.answer_activities(result)
            answered = True
        except Exception as exc:  # every failure still gets a short, polite message
            if not isinstance(exc, HubError):
                log.error("ask failed", extra={"event_id": incoming.event_id, "exc": type(exc).__name__})
            activities = [render.error_activity(exc, incoming.question, request_id)]
        first, *more = activities
        wait = interval - (time.monotonic() - shown_at)
        if wait > 0:  # Teams' pace for one stream
            await asyncio.sleep(wait)
        ended_before = bool(answer.opened.get("final"))
        await answer.note(final=True)
        try:
            await self.connector.reply(where.service_url, where.conversation, where.reply_to,
                                       render.stream_final(first, stream_id))  # fmt: skip
        except ConnectorError as exc:
            if exc.status != 403:
                raise
            if ended_before:  # the dead attempt's final message had arrived: Teams calls the stream complete
                log.warning(
                    "the stream was ended before a crash; not answering twice", extra={"event_id": incoming.event_id}
                )
            else:  # past Teams' two minutes for a stream (a late reclaim): the answer as a message
                log.warning(
                    "Teams closed the stream; posting the answer as a message", extra={"event_id": incoming.event_id}
                )
                await self.connector.reply(where.service_url, where.conversation, where.reply_to, first)
        answer.shown()
        await self._finish(incoming, more, request_id, answered)
        return True
