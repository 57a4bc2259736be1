"""Where one answer appears in its thread: the dead worker's view, a new stream, or a placeholder.

Each is noted in the core inbox as it is opened — the intent before Slack is asked, the ts once
Slack answers — so that a worker that reclaims the job after a crash takes over what the dead
one opened (found in the thread when it died between Slack's answer and the note) and never
posts a second answer beside it.
"""

from __future__ import annotations

import contextlib
import logging

from slack_sdk.errors import SlackApiError

from adapters.slack import render
from adapters.slack.placeholder import UpdateView
from adapters.slack.stream import StreamView
from adapters.slack.translate import Incoming
from adapters.slack.view import Place, View
from adapters.slack.webapi import NO_STREAMING, slack_error
from core.inbox import Answer

log = logging.getLogger("askhub.slack")


async def open_view(place: Place, incoming: Incoming, answer: Answer, *, question_ts: str) -> tuple[View, str]:
    """The view and its kind ("reclaimed", "stream", "update") for an answer in ``place``'s thread."""
    reclaimed = await _reclaimed(place, incoming, answer, question_ts)
    if reclaimed is not None:
        return reclaimed, "reclaimed"
    web, inc = place.web, incoming
    if web.may_stream(inc.team):
        await answer.note(opening="stream")  # before Slack is asked: see _reclaimed
        try:
            started = await web.call(
                "chat.startStream",
                channel=inc.channel,
                thread_ts=place.thread_ts,
                recipient_team_id=inc.team or None,
                recipient_user_id=inc.user,
            )
            await answer.note(view="stream", view_ts=str(started["ts"]))
            return StreamView(place, str(started["ts"])), "stream"
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in NO_STREAMING:
                web.cannot_stream(inc.team)
            log.info("streaming unavailable; updating a message instead", extra={"slack_error": error})
    await answer.note(opening="update")
    posted = await web.client.chat_postMessage(channel=inc.channel, thread_ts=place.thread_ts, text=render.THINKING)
    await answer.note(view="update", view_ts=str(posted["ts"]))
    return UpdateView(place, str(posted["ts"])), "update"


async def _reclaimed(place: Place, incoming: Incoming, answer: Answer, question_ts: str) -> View | None:
    """What a dead attempt opened: noted with its ts, or — it died before the note — the bot's
    first message in the thread after the question. Taken over as a message to update."""
    opened = answer.opened
    ts, kind = opened.get("view_ts"), opened.get("view")
    if not ts and opened.get("opening"):
        assert place.thread_ts is not None
        ts, kind = await place.web.own_reply(place.channel, place.thread_ts, after=question_ts), opened["opening"]
        if ts:
            log.info("took over an answer the dead worker had not noted", extra={"event": incoming.key, "view": kind})
    if not ts:
        return None
    if kind == "stream":
        with contextlib.suppress(SlackApiError):
            await place.web.call("chat.stopStream", channel=place.channel, ts=ts)
    answer.shown()
    return UpdateView(place, str(ts))
