"""Answer after the ack: the job handlers that ask the core and show the answer in Slack.

One answer, from the first Slack call to the last:

    /ask only:  chat.postMessage "<@user> asked: …"   (its thread holds the answer)
    progress:   a view (opening.py): the stream writer (stream.py), or where the workspace cannot
                stream the "Thinking…" placeholder edited about once a second (placeholder.py)
    no answer:  a short polite message in the thread (rate limits: ephemeral, to the asker only)

The event is answered inside the core inbox: done once the answer or the polite message is
visible, released when nothing could be posted (so that a redelivery is answered). What this
attempt opened is noted, so a worker that reclaims the job takes it over instead of adding one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import render
from adapters.slack.opening import open_view
from adapters.slack.placeholder import RespondView
from adapters.slack.translate import PLATFORM, Incoming, Vote, tenant_for, thread_id, to_request
from adapters.slack.view import Place, View
from adapters.slack.webapi import SlackWeb, respond, slack_error
from core.ask import Delta
from core.auth.platforms import unplaced
from core.errors import HubError
from core.inbox import Answer
from core.inbox.door import Door
from core.llm.prompt import language_of
from core.messages import for_error, polite
from core.metrics import ADAPTER_EVENTS
from core.schema import AskResult

log = logging.getLogger("askhub.slack")

EARLY_SEC = 0.3  # wait this long for the core's first word before showing progress (limits answer at once)


class Replier:
    """The ``slack.answer`` and ``slack.feedback`` job handlers of one process."""

    def __init__(self, door: Door, client: AsyncWebClient) -> None:
        self.door = door
        self.web = SlackWeb(client)

    async def answer(self, payload: dict[str, Any]) -> None:
        incoming = Incoming(**payload["incoming"])
        if tenant_for(self.door.settings, incoming.team) is None:  # unmapped by a reload since it was queued
            async with self.door.inbox.answer(PLATFORM, incoming.key):
                unplaced(PLATFORM, incoming.team)
            return
        async with self.door.inbox.answer(PLATFORM, incoming.key) as answer:
            reply = _Reply(self.door, self.web, incoming, payload.get("request_id") or uuid.uuid4().hex, answer)
            try:
                outcome = await reply.run()
            except Exception as exc:
                # Slack itself failed us (or a bug). Done if the user saw an answer or an apology,
                # else given back so that a redelivery of the event is answered.
                ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
                log.warning(
                    "slack answer not delivered",
                    extra={"event": incoming.key, "request_id": reply.request_id, "exc": type(exc).__name__,
                           "slack_error": slack_error(exc), "visible": answer.visible},
                )  # fmt: skip
                answer.give_back()
                return
        ADAPTER_EVENTS.labels(PLATFORM, outcome).inc()
        log.info("slack event handled", extra={"event": incoming.key, "request_id": reply.request_id,
                                               "outcome": outcome, "view": reply.view_kind})  # fmt: skip

    async def feedback(self, payload: dict[str, Any]) -> None:
        vote = Vote(**payload)
        tenant = tenant_for(self.door.settings, vote.team)
        if tenant is None:
            async with self.door.inbox.answer(PLATFORM, vote.key):
                unplaced(PLATFORM, vote.team)
            return
        async with self.door.inbox.answer(PLATFORM, vote.key):
            await self.door.feedback.record(
                vote.request_id, "up" if vote.rating == "up" else "down", platform=PLATFORM, user=vote.user,
                tenant=tenant,
            )  # fmt: skip
        log.info("slack feedback recorded", extra={"request_id": vote.request_id, "rating": vote.rating})
        thanks = render.THANKS[vote.rating]
        try:
            await self.web.client.chat_postEphemeral(
                channel=vote.channel, user=vote.user, text=thanks, thread_ts=vote.thread_ts
            )
        except Exception as exc:
            if not vote.response_url:
                raise
            log.info("ephemeral thanks failed, using response_url", extra={"slack_error": slack_error(exc)})
            await respond(vote.response_url, text=thanks)


class _Reply:
    """One question's way from the job to Slack."""

    def __init__(self, door: Door, web: SlackWeb, incoming: Incoming, request_id: str, answer: Answer) -> None:
        self.door, self.web = door, web
        self.incoming = incoming
        self.request_id = request_id
        self.answer = answer  # its notes: what an attempt that died opened (a reclaimed job reuses it)
        self.parent_ts: str | None = answer.opened.get("parent_ts")  # the "asked:" message /ask posts
        self.thread_ts = incoming.thread_ts or self.parent_ts
        self.respond_only = False  # /ask where the bot may not post: answer through response_url
        self.view_kind = "none"

    @property
    def place(self) -> Place:
        inc = self.incoming
        return Place(self.web, inc.channel, self.thread_ts, inc.response_url)

    async def run(self) -> str:
        inc = self.incoming
        if self.thread_ts is None:
            await self._post_parent()
        request = to_request(inc, self.door.settings, request_id=self.request_id, thread_ts=self.thread_ts)
        events = self.door.asker.stream(request)
        first: asyncio.Future[Delta | AskResult] = asyncio.ensure_future(anext(events))
        view: View | None = None
        try:
            # Limits and quotas answer at once: wait for that before showing progress, so that a
            # refusal is an ephemeral note instead of an empty "Thinking…" message.
            await asyncio.wait({first}, timeout=EARLY_SEC)
            if not first.done() or first.exception() is None:
                view = await self._open_view()
            try:
                result = await _consume(first, events, view)
            except HubError as exc:
                await self._apologise(view, for_error(exc, inc.text, self.request_id), exc.type == "rate_limited")
                return "failed"
            except Exception as exc:  # a bug below the adapter: a polite line, never a trace
                log.error("ask failed", extra={"request_id": self.request_id, "exc": type(exc).__name__})
                text = polite("error", language=language_of(inc.text), request_id=self.request_id)
                await self._apologise(view, text, False)
                return "failed"
            assert view is not None
            await view.finish(result)
            self.answer.shown()
            return "answered"
        finally:
            if not first.done():
                first.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await first
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]

    async def _post_parent(self) -> None:
        """/ask: post the question in the channel; the answer (and any follow-up) goes in its thread."""
        inc = self.incoming
        text = render.asked_text(inc.user, inc.text)
        if self.answer.opened.get("posting_parent"):  # a dead attempt posted it, perhaps, unnoted
            found = await self.web.own_post(inc.channel, text)
            if found:
                self.parent_ts = self.thread_ts = found
                await self.answer.note(parent_ts=found)
                return
        await self.answer.note(posting_parent=True)  # before: a reclaiming worker looks for it
        try:
            posted = await self.web.client.chat_postMessage(channel=inc.channel, text=text, unfurl_links=False)
        except SlackApiError as exc:
            if not inc.response_url:
                raise
            # Not in that channel (a private channel, someone else's DM): answer the asker only.
            log.info("cannot post in the channel; answering by response_url",
                     extra={"request_id": self.request_id, "slack_error": slack_error(exc)})  # fmt: skip
            self.respond_only = True
            return
        self.parent_ts = self.thread_ts = str(posted["ts"])
        await self.answer.note(parent_ts=self.parent_ts)

    async def _open_view(self) -> View:
        inc = self.incoming
        if self.respond_only:
            self.view_kind = "response_url"
            return RespondView(self.place)
        assert self.thread_ts is not None
        # Follow-ups in this thread need no mention from now on (with the shared state down, they do).
        tenant = tenant_for(self.door.settings, inc.team)
        assert tenant is not None  # run() asks only for a placed workspace
        await self.door.threads.mark(PLATFORM, tenant, thread_id(inc.team, inc.channel, self.thread_ts))
        # The question's ts: the thread's replies after it are this answer's (the key ends with it).
        question_ts = inc.key.rsplit(":", 1)[-1] if inc.kind != "command" else self.parent_ts or self.thread_ts
        view, self.view_kind = await open_view(self.place, inc, self.answer, question_ts=question_ts)
        return view

    async def _apologise(self, view: View | None, text: str, ephemeral: bool) -> None:
        """The polite line instead of an answer: in the progress message when there is one,
        else to the asker alone (ephemeral, for limits) or in the thread."""
        inc, client = self.incoming, self.web.client
        if view is not None:
            await view.fail(text)
        elif self.respond_only:
            await respond(inc.response_url or "", text=text)
        elif ephemeral:
            if self.parent_ts:  # /ask: no empty "asked:" message left behind for a refused question
                with contextlib.suppress(Exception):
                    await client.chat_delete(channel=inc.channel, ts=self.parent_ts)
            thread = self.thread_ts if self.thread_ts != self.parent_ts else None
            try:
                await client.chat_postEphemeral(channel=inc.channel, user=inc.user, text=text, thread_ts=thread)
            except SlackApiError:
                if not inc.response_url:
                    raise
                await respond(inc.response_url, text=text)
        else:
            await client.chat_postMessage(channel=inc.channel, thread_ts=self.thread_ts, text=text)
        self.answer.shown()


async def _consume(
    first: asyncio.Future[Delta | AskResult], events: AsyncIterator[Delta | AskResult], view: View | None
) -> AskResult:
    event = await first
    text = ""
    while not isinstance(event, AskResult):
        text += event.text
        if view is not None:
            await view.push(text)
        event = await anext(events)
    return event
