"""The ``discord.message`` job: answer a gateway message where it was asked.

A mention in a guild channel is answered in a thread started from the question (the thread is
the conversation); a DM in the DM; a message in a thread in that thread. While the model works:
a typing indicator, then the answer growing in one message (edited at most once a second),
then the final messages of at most 2,000 characters, the last with sources and 👍/👎.

The thread, the progress message and the parts sent are noted (a message before it is sent), so
a worker that reclaims the job after a crash answers in that thread, edits that message (found
in the channel when the dead one died before noting it) and never sends a part twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord  # the library: `adapters/` is never on sys.path, so this is not this package

from adapters.discord import handoff, render, translate
from adapters.discord.buttons import message_kwargs
from adapters.discord.messages import Recent
from core.ask import Delta
from core.errors import HubError
from core.handoff import HandoffUnavailable
from core.inbox import Answer
from core.inbox.door import Door
from core.messages import for_error, polite
from core.metrics import ADAPTER_EVENTS
from core.progress import Progress
from core.schema import AskRequest, AskResult

log = logging.getLogger("askhub.discord")

PLATFORM = translate.PLATFORM
PROGRESS_INTERVAL = 1.0  # Discord allows about one edit a second per message
THREAD_EXISTS = 160004  # Discord: "A thread has already been created for this message"


class ChannelAnswer:
    def __init__(self, door: Door, client: discord.Client, own_threads: Recent, logged_in: asyncio.Event) -> None:
        self.door, self.client = door, client
        self.own_threads = own_threads
        self._logged_in = logged_in  # jobs may arrive (from Redis) before the login

    async def __call__(self, job: dict[str, Any]) -> None:
        """The job: find where to answer (a new thread, the thread, the DM), then answer there."""
        await self._logged_in.wait()
        event_id = f"message:{job['message_id']}"
        async with self.door.inbox.answer(PLATFORM, event_id) as answer:
            try:
                await self._answer_message(job, answer)
            except discord.HTTPException as exc:
                log.error("discord reply failed", extra={"event": event_id, "exc": type(exc).__name__})
                ADAPTER_EVENTS.labels(PLATFORM, "failed").inc()
                answer.give_back()  # unless the user has (part of) an answer: a redelivery must not repeat it
                return
        ADAPTER_EVENTS.labels(PLATFORM, "answered").inc()

    async def _answer_message(self, job: dict[str, Any], answer: Answer) -> None:
        event_id = f"message:{job['message_id']}"
        channel_id, message_id = int(job["channel_id"]), int(job["message_id"])
        guild_id = int(job["guild_id"]) if job.get("guild_id") else None
        client = self.client
        channel: Any = client.get_channel(channel_id) or client.get_partial_messageable(channel_id, guild_id=guild_id)
        question_message = channel.get_partial_message(message_id)
        target, conversation, reference = channel, str(channel_id), None
        if answer.opened.get("thread"):  # an attempt that died had started the thread: answer there
            thread_id = int(answer.opened["thread"])
            target, conversation = client.get_partial_messageable(thread_id, guild_id=guild_id), str(thread_id)
        elif not job["dm"] and not job["in_thread"]:
            try:
                target = await question_message.create_thread(
                    name=render.thread_name(job["question"]), auto_archive_duration=1440
                )
                self.own_threads.add(target.id)
                conversation = str(target.id)
                await answer.note(thread=str(target.id))
            except (discord.HTTPException, ValueError) as exc:
                if isinstance(exc, discord.HTTPException) and exc.code == THREAD_EXISTS:
                    # An attempt that died had started it, unnoted; a thread started from a
                    # message has that message's id.
                    target = client.get_partial_messageable(message_id, guild_id=guild_id)
                    conversation = str(message_id)
                    await answer.note(thread=conversation)
                else:  # no permission to create threads here (or not a text channel): reply in place
                    log.warning("thread not created", extra={"event": event_id, "exc": type(exc).__name__})
                    conversation, reference = f"{channel_id}:{message_id}", question_message
        request = translate.ask_request(
            self.door.settings,
            question=job["question"],
            user_id=job["user_id"],
            guild_id=guild_id,
            channel_id=target.id,
            conversation=conversation,
            request_id=job["request_id"],
        )
        kind = job.get("kind") or "text"
        if await self._handed_off(target, request, conversation, event_id, reference, answer, kind):
            return
        if kind != "text":  # a sticker or image nobody relays: the bot reads text only
            await target.send(polite("text_only"), reference=reference, mention_author=False)
            answer.shown()
            return
        result = await self._answer(target, request, reference, answer, message_id)
        await self._after_answer(target, request, conversation, event_id, result)

    async def _after_answer(
        self, target: Any, request: AskRequest, conversation: str, event_id: str, result: AskResult | None
    ) -> None:
        """The second "I don't know" in a row may start a handoff (when configured): say so too."""
        if result is None or not self.door.handoff.enabled:
            return
        try:
            more = await self.door.handoff.after_answer(
                handoff.message_of(request, conversation, target.id, event_id),
                no_knowledge=result.outcome == "no_knowledge",
            )
        except HandoffUnavailable:
            return
        if more.action == "started":  # the nonce: a reclaimed job does not post the notice twice
            await target.send(more.say or "", mention_author=False, nonce=handoff.nonce(event_id, 1))

    async def _handed_off(self, target: Any, request: AskRequest, conversation: str, event_id: str, reference: Any,
                          answer: Answer, kind: handoff.Kind) -> bool:  # fmt: skip
        """While a person has this conversation the bot stays silent (the message goes to the agents);
        a message asking for one gets the notice instead of an answer. True when it was handled."""
        if not self.door.handoff.enabled:
            return False
        try:
            got = await self.door.handoff.intercept(
                handoff.message_of(request, conversation, target.id, event_id, kind)
            )
        except HandoffUnavailable:  # the desk cannot take it now: the bot answers
            return False
        if got.action == "relayed":
            ADAPTER_EVENTS.labels(PLATFORM, "handed_off").inc()
            return True
        if got.action in ("started", "limited"):  # the notice, or: over the limit, not passed on
            await target.send(
                got.say or "", reference=reference, mention_author=False, nonce=handoff.nonce(event_id, 0)
            )
            answer.shown()
            return True
        return False

    async def _answer(
        self, target: Any, request: AskRequest, reference: Any, answer: Answer, question_id: int
    ) -> AskResult | None:
        """Stream the answer into target: progress in one message, then the final messages. The
        result (None when the answer failed)."""
        sent: Any = await self._resumed(target, answer, question_id)

        async def show(text: str) -> None:
            nonlocal sent
            if sent is None:
                await answer.note(sending=True)  # before: see _resumed
                sent = await target.send(render.progress(text), reference=reference, mention_author=False)
                answer.shown()
                await answer.note(progress=str(sent.id))
            else:  # a lost progress edit is harmless: the final edit follows
                with contextlib.suppress(discord.HTTPException):
                    await sent.edit(content=render.progress(text))

        shown = Progress(show, interval=PROGRESS_INTERVAL)
        text = ""
        result: AskResult | None = None
        async with target.typing():
            try:
                async for event in self.door.asker.stream(request):
                    if isinstance(event, Delta):
                        text += event.text
                        await shown.push(text)
                    else:
                        result = event
                assert result is not None
                messages = render.answer_messages(result)
            except HubError as exc:
                result = None
                messages = [render.text_message(for_error(exc, request.question, request.request_id))]
            except discord.HTTPException:
                raise
            except Exception as exc:
                log.error("ask failed", extra={"request_id": request.request_id, "exc": type(exc).__name__})
                result = None
                messages = [render.text_message(polite("error", request_id=request.request_id))]
        for n, message in enumerate(messages):
            if n and n <= answer.opened.get("parts", 0):
                continue  # sent, or in flight, when an attempt died: never twice
            kwargs = message_kwargs(message, request.request_id)
            if n == 0 and sent is not None:
                await sent.edit(**kwargs)
            else:
                # Noted before it is sent: a part in flight at a crash is counted as sent, the
                # first message is looked for (_resumed).
                await answer.note(**({"parts": n} if n else {"sending": True}))
                await target.send(**kwargs, reference=reference if n == 0 else None, mention_author=False)
            answer.shown()
        return result

    async def _resumed(self, target: Any, answer: Answer, question_id: int) -> Any:
        """The message a dead attempt showed its answer in: noted, or — it died between Discord's
        answer and the note — the bot's first message in target after the question."""
        if answer.opened.get("progress"):
            return target.get_partial_message(int(answer.opened["progress"]))
        if not answer.opened.get("sending") or self.client.user is None:
            return None
        try:
            found = await self.client.http.logs_from(target.id, 50, after=question_id)
        except discord.HTTPException as exc:
            log.warning("cannot read the channel to find an unnoted answer", extra={"exc": type(exc).__name__})
            return None
        mine = [int(m["id"]) for m in found if m["author"]["id"] == str(self.client.user.id)]
        if not mine:
            return None
        log.info("took over an answer the dead worker had not noted", extra={"question_id": str(question_id)})
        answer.shown()
        await answer.note(progress=str(min(mine)))
        return target.get_partial_message(min(mine))
