"""The agents' desk in Slack: core.handoff's ``Desk``, and the Slack side of a handoff.

    open / post / update   the opening message in ``handoff.slack_channel`` (Take / Resolve), the
                           customer's messages in its thread, its state after Take or the end
    thread_reply()         a person's reply in a handoff thread (a ``message`` event with that
                           thread_ts, no subtype, not a bot) -> a ``slack.handoff_reply`` job
    action()               Take / Resolve clicks -> a ``slack.handoff_action`` job
    open_save() / saved()  "Save as verified answer" on a resolved handoff (with verified answers in
                           the hub): a form with the question and the agent's reply (both redacted)
                           -> a ``slack.handoff_save`` job -> ``door.verified.save``

Only agents (``handoff.agents``: Slack user ids or user groups; unset: anyone in the desk channel)
may Take, Resolve, open the save form or submit it; anyone else is told so, privately. A save names
one of the collections the handoff's customer reads, or it is refused: a signed submission cannot
publish an answer where the customer's door does not reach. The answer is stored redacted unless
the agent changed the offered (redacted) text.

Each of our messages carries its once-key in Slack's message metadata; a repeat after a crash
(``maybe_done``) looks for that key first, so the channel never shows a message twice. Replies
are claimed by message like every Slack event (transport.py), so a retry or the second event
Slack sends for one message relays once; bot messages, edits and deletions are never relayed.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import desk_blocks
from adapters.slack.desk_text import agent_text
from adapters.slack.translate import PLATFORM, team_of
from core.handoff import DeskRef, Handoff, Opening, RelayFailed, Status
from core.inbox.door import Door

log = logging.getLogger("askhub.slack")

REPLY_JOB, ACTION_JOB, SAVE_JOB = "slack.handoff_reply", "slack.handoff_action", "slack.handoff_save"
META_TYPE = "askhub_handoff"
GROUP_TTL_SEC = 60.0  # a user group's members, asked of Slack at most once a minute
NOT_AN_AGENT = "Only the agents named in the hub's handoff.agents can do this."


def _metadata(key: str) -> dict[str, Any]:
    return {"event_type": META_TYPE, "event_payload": {"key": key}}


def _has_key(messages: list[dict[str, Any]], key: str) -> str | None:
    for message in messages:
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        if payload.get("key") == key:
            return str(message["ts"])
    return None


class SlackDesk:
    def __init__(self, door: Door, web: AsyncWebClient) -> None:
        self.door = door
        self.web = web
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}  # user group -> (when asked, members)

    @property
    def channel(self) -> str | None:
        return self.door.handoff.desk_channel

    # -- core.handoff.Desk --

    async def open(self, handoff: Handoff, opening: Opening, *, key: str, maybe_done: bool) -> DeskRef:
        channel = self.channel
        assert channel is not None
        if maybe_done:
            history = await self.web.conversations_history(channel=channel, limit=50, include_all_metadata=True)
            found = _has_key(list(history.get("messages") or []), key)
            if found:
                return DeskRef(channel, found)
        posted = await self.web.chat_postMessage(
            channel=channel,
            text=desk_blocks.opening_text(handoff),
            blocks=desk_blocks.opening_blocks(handoff, opening),
            metadata=_metadata(key),
            unfurl_links=False,  # a customer's link is never fetched or previewed in the agents' channel
            unfurl_media=False,
        )
        return DeskRef(channel, str(posted["ts"]))

    async def post(self, ref: DeskRef, text: str, *, key: str, maybe_done: bool, author: str = "customer") -> None:
        if maybe_done:
            thread = await self.web.conversations_replies(channel=ref.channel, ts=ref.ts, include_all_metadata=True)
            if _has_key(list(thread.get("messages") or []), key):
                return
        await self.web.chat_postMessage(channel=ref.channel, thread_ts=ref.ts,
                                        text=desk_blocks.customer_line(text, author), metadata=_metadata(key),
                                        unfurl_links=False, unfurl_media=False)  # fmt: skip

    async def update(self, ref: DeskRef, handoff: Handoff, status: Status) -> None:
        history = await self.web.conversations_history(channel=ref.channel, latest=ref.ts, inclusive=True, limit=1)
        messages = [m for m in history.get("messages") or [] if m.get("ts") == ref.ts]
        blocks = list(messages[0].get("blocks") or []) if messages else []
        can_save = status.state == "resolved" and getattr(self.door, "verified", None) is not None
        await self.web.chat_update(
            channel=ref.channel,
            ts=ref.ts,
            text=desk_blocks.opening_text(handoff),
            blocks=desk_blocks.with_status(blocks, handoff, status, can_save=can_save),
        )

    # -- Slack in: which events are ours --

    def thread_reply(
        self, body: dict[str, Any], *, bot_user_id: str | None, bot_id: str | None
    ) -> dict[str, Any] | None:
        """A person's reply in a thread of the desk channel, as a job payload; None when the event
        is not in a desk thread. ``{}`` when it is, but not a person's plain reply (ignore it)."""
        event = body.get("event") or {}
        channel = self.channel
        if channel is None or event.get("channel") != channel:
            return None
        ts, thread_ts = str(event.get("ts") or ""), event.get("thread_ts")
        if not thread_ts or thread_ts == ts:
            return None  # a new message in the channel: not a reply to a handoff
        person = (
            event.get("type") in ("message", "app_mention")
            and event.get("subtype") is None  # edits, deletions, bot_message, joins: never relayed
            and not event.get("bot_id")
            and not event.get("bot_profile")
            and event.get("user")
            and event.get("user") != bot_user_id
            and not (bot_id and event.get("bot_id") == bot_id)
        )
        if not person:
            return {}
        team = team_of(body)
        author_team = event.get("user_team") or event.get("team")
        if team and author_team and author_team != team:
            return {}  # someone of another workspace (a shared channel): never relayed to the customer
        return {
            "key": f"msg:{team}:{channel}:{ts}",  # the transport's key for this message: both events claim one
            "channel": channel,
            "thread_ts": str(thread_ts),
            "user": str(event["user"]),
            "text": agent_text(event.get("text") or "", bot_user_id),  # plain text, links with their URLs
        }

    @staticmethod
    def action(body: dict[str, Any], action: dict[str, Any]) -> dict[str, Any] | None:
        """A Take / Resolve click as a job payload."""
        kind = {desk_blocks.ACTION_TAKE: "take", desk_blocks.ACTION_RESOLVE: "resolve"}.get(action.get("action_id", ""))
        container = body.get("container") or {}
        channel = str(container.get("channel_id") or (body.get("channel") or {}).get("id") or "")
        ts = str(container.get("message_ts") or (body.get("message") or {}).get("ts") or "")
        user = str((body.get("user") or {}).get("id") or "")
        if kind is None or not channel or not ts or not user:
            return None
        team = str((body.get("team") or {}).get("id") or body.get("team_id") or "")
        stable = body.get("trigger_id") or f"{channel}:{ts}:{action.get('action_ts')}"
        return {"key": f"act:{team}:{stable}", "kind": kind, "channel": channel, "ts": ts, "user": user}

    # -- jobs --

    async def relay_reply(self, payload: dict[str, Any]) -> None:
        """An agent's reply -> the customer. A failure raises: the claim is released and the
        queue delivers the job again; the delivery key makes the repeat safe."""
        async with self.door.inbox.answer(PLATFORM, payload["key"]) as answer:
            if not payload["text"]:
                return
            try:
                outcome = await self.door.handoff.from_agent(payload["channel"], payload["thread_ts"], payload["user"],
                                                             payload["text"], key=payload["key"])  # fmt: skip
            except RelayFailed as exc:
                log.warning("handoff reply not delivered yet", extra={"event": payload["key"], "exc": str(exc)})
                raise
            answer.shown()
        log.info("handoff reply", extra={"event": payload["key"], "outcome": outcome})

    # -- who is an agent --

    async def is_agent(self, user: str) -> bool:
        """``user`` may Take, Resolve and save: listed in ``handoff.agents`` or a member of a
        user group listed there (asked of Slack, kept GROUP_TTL_SEC). Unset: anyone in the desk
        channel (Slack shows its buttons to its members only). A group Slack cannot list
        admits nobody."""
        agents = self.door.handoff.agents
        if agents is None:
            return True
        if not user:
            return False
        if user in agents:
            return True
        for group in (a for a in agents if a.startswith("S")):
            if user in await self._members(group):
                return True
        return False

    async def _members(self, group: str) -> frozenset[str]:
        now = time.monotonic()
        known = self._groups.get(group)
        if known is not None and now - known[0] < GROUP_TTL_SEC:
            return known[1]
        try:
            listed = await self.web.usergroups_users_list(usergroup=group)
            members = frozenset(str(u) for u in listed.get("users") or [])
        except Exception as exc:  # fail closed: nobody of this group until Slack answers
            log.warning("agents' user group not listed", extra={"group": group, "exc": type(exc).__name__})
            return frozenset()
        self._groups[group] = (now, members)
        return members

    async def _refuse(self, channel: str, user: str, why: str) -> None:
        """Tell only the person who clicked (an ephemeral message), and log it without text."""
        log.info("handoff desk action refused", extra={"channel": channel, "reason": why})
        if channel and user:
            try:
                await self.web.chat_postEphemeral(channel=channel, user=user, text=NOT_AN_AGENT)
            except Exception as exc:  # the refusal stands whether or not they hear of it
                log.info("refusal not shown", extra={"exc": type(exc).__name__})

    async def act(self, payload: dict[str, Any]) -> None:
        async with self.door.inbox.answer(PLATFORM, payload["key"]):
            if not await self.is_agent(payload["user"]):
                await self._refuse(payload["channel"], payload["user"], f"{payload['kind']}: not an agent")
                return
            if payload["kind"] == "take":
                done = await self.door.handoff.take(payload["channel"], payload["ts"], payload["user"])
            else:
                done = await self.door.handoff.resolve(payload["channel"], payload["ts"], payload["user"])
        log.info("handoff action", extra={"event": payload["key"], "kind": payload["kind"], "done": done})

    # -- learning from it: "Save as verified answer" --

    async def open_save(self, body: dict[str, Any]) -> None:
        """The button's click: open the form (within the click's trigger_id, which lives 3 s)."""
        container = body.get("container") or {}
        channel = str(container.get("channel_id") or "")
        ts = str(container.get("message_ts") or "")
        user = str((body.get("user") or {}).get("id") or "")
        if not await self.is_agent(user):
            await self._refuse(channel, user, "save form: not an agent")
            return
        proposal = await self.door.handoff.proposal(channel, ts)
        if proposal is None or not body.get("trigger_id"):
            return
        await self.web.views_open(trigger_id=body["trigger_id"], view=desk_blocks.save_modal(proposal, channel, ts))

    @staticmethod
    def saved(body: dict[str, Any]) -> dict[str, Any] | str:
        """The form's submission as a job payload, or what is wrong with it (shown in the form)."""
        view = body.get("view") or {}
        values = (view.get("state") or {}).get("values") or {}

        def field(block: str) -> str:
            value = (values.get(block) or {}).get("value") or {}
            return str(value.get("value") or (value.get("selected_option") or {}).get("value") or "").strip()

        where = json.loads(view.get("private_metadata") or "{}")
        question, answer, collection = field("question"), field("answer"), field("collection")
        if not question or not answer or not collection:
            return "question" if not question else "answer" if not answer else "collection"
        user = body.get("user") or {}
        return {"key": f"view:{view.get('id')}:{view.get('hash')}", "question": question, "answer": answer,
                "collection": collection, "user": str(user.get("id") or ""),
                "name": str(user.get("name") or user.get("username") or user.get("id") or "agent"),
                "channel": str(where.get("channel") or ""), "ts": str(where.get("ts") or "")}  # fmt: skip

    async def refusal(self, payload: dict[str, Any]) -> dict[str, str] | None:
        """Why a submitted save may not be stored, as the form's errors (None: it may)."""
        return (await self._judged(payload))[0]

    async def _judged(self, payload: dict[str, Any]) -> tuple[dict[str, str] | None, dict[str, Any] | None]:
        """(errors, the handoff's proposal): the submitter is no agent, the handoff is unknown, or
        the collection is not one the handoff's customer reads."""
        if not await self.is_agent(payload["user"]):
            return {"answer": NOT_AN_AGENT}, None
        proposal = await self.door.handoff.proposal(payload["channel"], payload["ts"])
        if proposal is None:
            return {"answer": "This handoff is no longer known to the hub."}, None
        if payload["collection"] not in proposal["collections"]:
            offered = ", ".join(proposal["collections"]) or "none"
            return {"collection": f"The customer's answers live in: {offered}."}, None
        return None, proposal

    async def save(self, payload: dict[str, Any]) -> None:
        async with self.door.inbox.answer(PLATFORM, payload["key"]) as answer:
            refused, proposal = await self._judged(payload)
            if refused is not None or proposal is None:
                log.warning("verified answer not saved", extra={"event": payload["key"],
                                                                "reason": ",".join(sorted(refused or {}))})  # fmt: skip
                return
            # The offered text is redacted already; what the agent changed is theirs, as written.
            edited = payload["answer"] != proposal["answer"].strip()
            item = await self.door.verified.save(payload["question"], payload["answer"], payload["collection"],
                                                 payload["name"], actor="slack", as_written=edited)  # fmt: skip
            answer.shown()
            if payload["channel"] and payload["ts"]:
                line = desk_blocks.saved_line(payload["user"], item.collection)
                await self.web.chat_postMessage(channel=payload["channel"], thread_ts=payload["ts"], text=line,
                                                unfurl_links=False, unfurl_media=False)  # fmt: skip
        log.info("handoff answer saved as verified", extra={"event": payload["key"], "collection": item.collection})
