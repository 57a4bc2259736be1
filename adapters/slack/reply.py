"""Answer after the ack: the job handlers that ask the core and show the answer in Slack.

One answer, from the first Slack call to the last:

    /ask only:  chat.postMessage "<@user> asked: …"   (its thread holds the answer)
    progress:   chat.startStream -> chat.appendStream … -> chat.stopStream (sources, buttons)
                or, where the workspace cannot stream: chat.postMessage "Thinking…" ->
                chat.update (about once a second) -> chat.update with the final blocks
    no answer:  a short polite message in the thread (rate limits: ephemeral, to the asker only)

The event's ledger entry (core.dedupe) is marked done once the answer or the polite message
is visible, and released when nothing could be posted, so that a redelivery is answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack import render
from adapters.slack.translate import PLATFORM, Incoming, Vote, tenant_for, thread_id, to_request
from core.ask import Delta
from core.errors import HubError
from core.inbox import Answer
from core.inbox.door import Door
from core.llm.prompt import language_of
from core.messages import for_error, polite
from core.metrics import ADAPTER_EVENTS
from core.progress import Progress
from core.schema import AskResult

log = logging.getLogger("askhub.slack")

EARLY_SEC = 0.3  # wait this long for the core's first word before showing progress (limits answer at once)
STREAM_RECHECK_SEC = 3600.0  # a team that cannot stream is asked again after an hour
STREAM_INTERVAL = 0.5  # seconds between chat.appendStream calls
UPDATE_INTERVAL = 1.0  # seconds between chat.update calls (Slack's rate for edits)
# chat.startStream errors that say "this workspace / app cannot stream" rather than "not now".
NO_STREAMING = {
    "unknown_method",
    "not_allowed",
    "not_allowed_token_type",
    "missing_scope",
    "feature_not_enabled",
    "not_enabled",
    "access_denied",
    "method_deprecated",
    "team_not_allowed",
}


class Replier:
    """The ``slack.answer`` and ``slack.feedback`` job handlers of one process."""

    def __init__(self, door: Door, web: AsyncWebClient) -> None:
        self.door = door
        self.web = web
        self._no_stream_until: dict[str, float] = {}  # team -> monotonic time to try streaming again

    # -- jobs --

    async def answer(self, payload: dict[str, Any]) -> None:
        incoming = Incoming(**payload["incoming"])
        async with self.door.inbox.answer(PLATFORM, incoming.key) as answer:
            reply = _Reply(self, incoming, payload.get("request_id") or uuid.uuid4().hex, answer)
            try:
                outcome = await reply.run()
            except Exception as exc:
                # Slack itself failed us (or a bug). Done if the user saw an answer or an apology,
                # else given back so that a redelivery of the event is answered.
                ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
                log.warning(
                    "slack answer not delivered",
                    extra={"event": incoming.key, "request_id": reply.request_id, "exc": type(exc).__name__,
                           "slack_error": _slack_error(exc), "visible": answer.visible},
                )  # fmt: skip
                answer.give_back()
                return
        ADAPTER_EVENTS.labels(PLATFORM, outcome).inc()
        log.info("slack event handled", extra={"event": incoming.key, "request_id": reply.request_id,
                                               "outcome": outcome, "view": reply.view_kind})  # fmt: skip

    async def feedback(self, payload: dict[str, Any]) -> None:
        vote = Vote(**payload)
        tenant = tenant_for(self.door.settings, vote.team)
        async with self.door.inbox.answer(PLATFORM, vote.key):
            await self.door.feedback.record(
                vote.request_id,
                "up" if vote.rating == "up" else "down",
                platform=PLATFORM,
                user=vote.user,
                tenant=tenant,
            )
        log.info("slack feedback recorded", extra={"request_id": vote.request_id, "rating": vote.rating})
        thanks = render.THANKS[vote.rating]
        try:
            await self.web.chat_postEphemeral(
                channel=vote.channel, user=vote.user, text=thanks, thread_ts=vote.thread_ts
            )
        except Exception as exc:
            if not vote.response_url:
                raise
            log.info("ephemeral thanks failed, using response_url", extra={"slack_error": _slack_error(exc)})
            await _respond(vote.response_url, text=thanks)

    # -- streaming capability, per team --

    def may_stream(self, team: str) -> bool:
        return self._no_stream_until.get(team, 0.0) <= time.monotonic()

    def cannot_stream(self, team: str) -> None:
        self._no_stream_until[team] = time.monotonic() + STREAM_RECHECK_SEC

    # -- Web API calls that older slack_sdk releases may lack --

    async def call(self, method: str, **body: Any) -> Any:
        """chat.startStream / appendStream / stopStream through slack_sdk's method when it has
        one, else as a plain JSON API call (the same request)."""
        fn = getattr(self.web, method.replace(".", "_"), None)
        if fn is not None:
            return await fn(**body)
        return await self.web.api_call(method, json={k: v for k, v in body.items() if v is not None})


class _Reply:
    """One question's way from the job to Slack."""

    def __init__(self, replier: Replier, incoming: Incoming, request_id: str, answer: Answer) -> None:
        self.r = replier
        self.door = replier.door
        self.web = replier.web
        self.incoming = incoming
        self.request_id = request_id
        self.answer = answer  # its notes: what an attempt that died opened (a reclaimed job reuses it)
        self.parent_ts: str | None = answer.opened.get("parent_ts")  # the "asked:" message /ask posts
        self.thread_ts = incoming.thread_ts or self.parent_ts
        self.respond_only = False  # /ask where the bot may not post: answer through response_url
        self.view_kind = "none"

    async def run(self) -> str:
        inc = self.incoming
        if self.thread_ts is None:
            await self._post_parent()
        request = to_request(inc, self.door.settings, request_id=self.request_id, thread_ts=self.thread_ts)
        events = self.door.asker.stream(request)
        first: asyncio.Future[Delta | AskResult] = asyncio.ensure_future(anext(events))
        view: _View | None = None
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
        try:
            posted = await self.web.chat_postMessage(
                channel=inc.channel, text=render.asked_text(inc.user, inc.text), unfurl_links=False
            )
        except SlackApiError as exc:
            if not inc.response_url:
                raise
            # Not in that channel (a private channel, someone else's DM): answer the asker only.
            log.info("cannot post in the channel; answering by response_url",
                     extra={"request_id": self.request_id, "slack_error": _slack_error(exc)})  # fmt: skip
            self.respond_only = True
            return
        self.parent_ts = self.thread_ts = str(posted["ts"])
        await self.answer.note(parent_ts=self.parent_ts)

    async def _open_view(self) -> _View:
        inc = self.incoming
        if self.respond_only:
            self.view_kind = "response_url"
            return _RespondView(self)
        assert self.thread_ts is not None
        # Follow-ups in this thread need no mention from now on (with the shared state down, they do).
        await self.door.threads.mark(PLATFORM, tenant_for(self.door.settings, inc.team),
                                     thread_id(inc.team, inc.channel, self.thread_ts))  # fmt: skip
        reclaimed = self.answer.opened.get("view_ts")
        if reclaimed:  # a worker died answering: take over its stream or placeholder, never post a second
            if self.answer.opened.get("view") == "stream":
                with contextlib.suppress(SlackApiError):
                    await self.r.call("chat.stopStream", channel=inc.channel, ts=reclaimed)
            self.view_kind = "reclaimed"
            self.answer.shown()
            return _UpdateView(self, str(reclaimed))
        if self.r.may_stream(inc.team):
            try:
                started = await self.r.call(
                    "chat.startStream",
                    channel=inc.channel,
                    thread_ts=self.thread_ts,
                    recipient_team_id=inc.team or None,
                    recipient_user_id=inc.user,
                )
                self.view_kind = "stream"
                await self.answer.note(view="stream", view_ts=str(started["ts"]))
                return _StreamView(self, str(started["ts"]))
            except SlackApiError as exc:
                error = _slack_error(exc)
                if error in NO_STREAMING:
                    self.r.cannot_stream(inc.team)
                log.info("streaming unavailable; updating a message instead", extra={"slack_error": error})
        posted = await self.web.chat_postMessage(channel=inc.channel, thread_ts=self.thread_ts, text=render.THINKING)
        self.view_kind = "update"
        await self.answer.note(view="update", view_ts=str(posted["ts"]))
        return _UpdateView(self, str(posted["ts"]))

    async def _apologise(self, view: _View | None, text: str, ephemeral: bool) -> None:
        """The polite line instead of an answer: in the progress message when there is one,
        else to the asker alone (ephemeral, for limits) or in the thread."""
        inc = self.incoming
        if view is not None:
            await view.fail(text)
        elif self.respond_only:
            await _respond(inc.response_url or "", text=text)
        elif ephemeral:
            if self.parent_ts:  # /ask: no empty "asked:" message left behind for a refused question
                with contextlib.suppress(Exception):
                    await self.web.chat_delete(channel=inc.channel, ts=self.parent_ts)
            thread = self.thread_ts if self.thread_ts != self.parent_ts else None
            try:
                await self.web.chat_postEphemeral(channel=inc.channel, user=inc.user, text=text, thread_ts=thread)
            except SlackApiError:
                if not inc.response_url:
                    raise
                await _respond(inc.response_url, text=text)
        else:
            await self.web.chat_postMessage(channel=inc.channel, thread_ts=self.thread_ts, text=text)
        self.answer.shown()


async def _consume(
    first: asyncio.Future[Delta | AskResult], events: AsyncIterator[Delta | AskResult], view: _View | None
) -> AskResult:
    event = await first
    text = ""
    while not isinstance(event, AskResult):
        text += event.text
        if view is not None:
            await view.push(text)
        event = await anext(events)
    return event


class _View:
    """Where the answer appears while it grows, and then in full."""

    def __init__(self, reply: _Reply) -> None:
        self.reply = reply
        self.web = reply.web
        self.channel = reply.incoming.channel

    async def push(self, text: str) -> None: ...

    async def finish(self, result: AskResult) -> None:
        raise NotImplementedError

    async def fail(self, text: str) -> None:
        raise NotImplementedError

    async def post_final(self, result: AskResult) -> None:
        """The answer as a new message in the thread (when the progress message cannot take it)."""
        await self.web.chat_postMessage(
            channel=self.channel,
            thread_ts=self.reply.thread_ts,
            text=render.notification_text(result.answer),
            blocks=render.answer_blocks(result),
            unfurl_links=False,
        )


class _StreamView(_View):
    """Slack's native streaming: the text appears as the model writes it."""

    def __init__(self, reply: _Reply, ts: str) -> None:
        super().__init__(reply)
        self.ts = ts
        self.sent = ""
        self.broken = False
        self.progress = Progress(self._append, interval=STREAM_INTERVAL)

    async def push(self, text: str) -> None:
        if not self.broken:
            await self.progress.push(text)

    async def _append(self, text: str) -> None:
        if not text.startswith(self.sent):
            return
        try:
            for piece in render.stream_pieces(text[len(self.sent) :]):
                await self.reply.r.call("chat.appendStream", channel=self.channel, ts=self.ts, markdown_text=piece)
                self.sent += piece
        except SlackApiError as exc:
            self.broken = True  # the rest goes with chat.stopStream
            log.info("chat.appendStream failed", extra={"slack_error": _slack_error(exc)})

    async def finish(self, result: AskResult) -> None:
        rest = result.answer[len(self.sent) :] if result.answer.startswith(self.sent) else ""
        await self._stop(rest, render.footer_blocks(result), result)

    async def fail(self, text: str) -> None:
        await self._stop(f"\n\n{text}" if self.sent else text, None, None)

    async def _stop(self, rest: str, blocks: list[dict[str, Any]] | None, result: AskResult | None) -> None:
        pieces = render.stream_pieces(rest)
        try:
            for piece in pieces[:-1]:
                await self.reply.r.call("chat.appendStream", channel=self.channel, ts=self.ts, markdown_text=piece)
                self.sent += piece
            await self.reply.r.call(
                "chat.stopStream",
                channel=self.channel,
                ts=self.ts,
                markdown_text=pieces[-1] if pieces else None,
                blocks=blocks,
            )
        except SlackApiError as exc:
            log.info("chat.stopStream failed; posting the answer", extra={"slack_error": _slack_error(exc)})
            if result is None:
                await self.web.chat_postMessage(channel=self.channel, thread_ts=self.reply.thread_ts, text=rest)
            else:
                await self.post_final(result)


class _UpdateView(_View):
    """One message: "Thinking…", the growing answer about once a second, then the final blocks."""

    def __init__(self, reply: _Reply, ts: str) -> None:
        super().__init__(reply)
        self.ts = ts
        self.progress = Progress(self._update, interval=UPDATE_INTERVAL)

    async def push(self, text: str) -> None:
        await self.progress.push(text)

    async def _update(self, text: str) -> None:
        try:
            await self.web.chat_update(channel=self.channel, ts=self.ts, text=render.progress_text(text))
        except SlackApiError as exc:  # a missed progress step is harmless; the final update matters
            log.info("progress update failed", extra={"slack_error": _slack_error(exc)})

    async def finish(self, result: AskResult) -> None:
        try:
            await self.web.chat_update(
                channel=self.channel,
                ts=self.ts,
                text=render.notification_text(result.answer),
                blocks=render.answer_blocks(result),
            )
        except SlackApiError as exc:
            log.info("final update failed; posting the answer", extra={"slack_error": _slack_error(exc)})
            await self.post_final(result)

    async def fail(self, text: str) -> None:
        await self.web.chat_update(channel=self.channel, ts=self.ts, text=text)


class _RespondView(_View):
    """/ask in a channel the bot cannot post in: the answer goes to the asker via response_url."""

    async def finish(self, result: AskResult) -> None:
        await _respond(
            self.reply.incoming.response_url or "",
            text=render.notification_text(result.answer),
            blocks=render.answer_blocks(result),
        )

    async def fail(self, text: str) -> None:
        await _respond(self.reply.incoming.response_url or "", text=text)


async def _respond(url: str, *, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
    response = await AsyncWebhookClient(url).send(
        text=text, blocks=blocks, response_type="ephemeral", replace_original=False
    )
    if response.status_code != 200:
        raise RuntimeError(f"response_url answered {response.status_code}")


def _slack_error(exc: BaseException) -> str | None:
    if isinstance(exc, SlackApiError):
        try:
            return str(exc.response.get("error"))
        except Exception:
            return "unknown"
    return None
