"""The agents' desk in a Teams channel (``handoff.desk: teams``): core.handoff's ``Desk``.

    open / post / update   one card per handoff in ``handoff.teams_channel`` (Take / Resolve),
                           the summary and the customer's messages in its reply chain, the card
                           edited after a Take or the end
    ours() / accept()      an activity in the desk channel: an agent's reply in a handoff's reply
                           chain -> a ``teams.handoff_reply`` job; a Take / Resolve press -> a
                           ``teams.handoff_action`` job (each claimed by its activity id, so a
                           redelivery relays once)

The first post goes to ``teams.service_url`` (Teams' global service URL); replies and edits too.
The Bot Connector cannot list a channel's messages (that needs Microsoft Graph), so unlike the
Slack desk a repeat after a crash (``maybe_done``) cannot look for its earlier post: the card or
line may then show twice, which is logged. Teams sends a bot the channel messages that @mention
it, or all of them with the resource-specific permission ChannelMessage.Read.Group (docs/teams.md).
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.teams import desk_cards, render
from adapters.teams.connector import Connector
from adapters.teams.translate import PLATFORM, Incoming, plain
from core.handoff import DeskRef, Handoff, Opening, RelayFailed, Status
from core.inbox.door import Door

log = logging.getLogger("askhub.teams")

REPLY_JOB, ACTION_JOB = "teams.handoff_reply", "teams.handoff_action"


class TeamsDesk:
    def __init__(self, door: Door, connector: Connector) -> None:
        self.door, self.connector = door, connector
        self.service_url = door.settings.teams.service_url

    @property
    def channel(self) -> str:
        channel = self.door.handoff.desk_channel
        assert channel is not None
        return channel

    def _chain(self, ref: DeskRef) -> str:
        return f"{ref.channel};messageid={ref.ts}"

    # -- core.handoff.Desk --

    async def open(self, handoff: Handoff, opening: Opening, *, key: str, maybe_done: bool) -> DeskRef:
        if maybe_done:
            log.warning("a desk card may have been posted before a crash; posting it again", extra={"key": key})
        root = await self.connector.send(self.service_url, self.channel, desk_cards.card(handoff, Status("open")))
        ref = DeskRef(self.channel, root)
        try:
            await self.connector.send(
                self.service_url, self._chain(ref), render.message(desk_cards.summary_text(opening))
            )
        except Exception as exc:  # the card is up; the summary is a courtesy
            log.warning("handoff summary not posted", extra={"key": key, "exc": type(exc).__name__})
        return ref

    async def post(self, ref: DeskRef, text: str, *, key: str, maybe_done: bool) -> None:
        if maybe_done:
            log.warning("a desk line may have been posted before a crash; posting it again", extra={"key": key})
        await self.connector.send(self.service_url, self._chain(ref), render.message(desk_cards.customer_line(text)))

    async def update(self, ref: DeskRef, handoff: Handoff, status: Status) -> None:
        await self.connector.update(self.service_url, ref.channel, ref.ts, desk_cards.card(handoff, status))

    # -- Teams in: which activities are ours --

    def ours(self, incoming: Incoming) -> bool:
        where = incoming.where
        return where is not None and (where.channel == self.channel or where.conversation.split(";")[0] == self.channel)

    async def accept(self, incoming: Incoming, raw: dict[str, Any]) -> None:
        where = incoming.where
        assert where is not None
        root = where.thread
        if incoming.action == "desk":
            value = incoming.value or {}
            kind = value.get("kind")
            root = str(raw.get("replyToId") or "") or root  # the card the button is on
            if kind not in ("take", "resolve") or not root:
                return
            payload = {"key": incoming.event_id, "kind": kind, "channel": self.channel, "ts": root,
                       "user": incoming.user}  # fmt: skip
            job = ACTION_JOB
        else:
            text = _reply_text(raw)
            if root is None or root == where.reply_to or not text:
                return  # a new post in the channel, or nothing to relay
            payload = {"key": incoming.event_id, "channel": self.channel, "thread": root,
                       "user": incoming.user, "text": text}  # fmt: skip
            job = REPLY_JOB
        if not await self.door.inbox.accept(PLATFORM, incoming.event_id, job, payload):
            log.info("duplicate desk activity skipped", extra={"event_id": incoming.event_id})

    # -- jobs --

    async def relay_reply(self, payload: dict[str, Any]) -> None:
        """An agent's reply -> the customer. A failure raises: the claim is released and the queue
        delivers the job again; the delivery key makes the repeat safe."""
        async with self.door.inbox.answer(PLATFORM, payload["key"]) as answer:
            try:
                outcome = await self.door.handoff.from_agent(payload["channel"], payload["thread"], payload["user"],
                                                             payload["text"], key=payload["key"])  # fmt: skip
            except RelayFailed as exc:
                log.warning("handoff reply not delivered yet", extra={"event": payload["key"], "exc": str(exc)})
                raise
            answer.shown()
        log.info("handoff reply", extra={"event": payload["key"], "outcome": outcome})

    async def act(self, payload: dict[str, Any]) -> None:
        async with self.door.inbox.answer(PLATFORM, payload["key"]):
            if payload["kind"] == "take":
                done = await self.door.handoff.take(payload["channel"], payload["ts"], payload["user"])
            else:
                done = await self.door.handoff.resolve(payload["channel"], payload["ts"], payload["user"])
        log.info("handoff action", extra={"event": payload["key"], "kind": payload["kind"], "done": done})


def _reply_text(raw: dict[str, Any]) -> str:
    """An agent's words: the text without any <at>…</at> mention (of the bot, to be heard)."""
    text = str(raw.get("text") or "")
    for entity in raw.get("entities") or []:
        if isinstance(entity, dict) and entity.get("type") == "mention" and entity.get("text"):
            text = text.replace(str(entity["text"]), " ")
    return plain(text)
