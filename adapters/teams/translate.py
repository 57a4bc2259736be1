"""A Teams activity -> what to do with it (and, for a question, the core AskRequest).

Pure: the activity is parsed with the Microsoft 365 Agents SDK's pydantic models
(``microsoft_agents.activity``). In a personal chat every message is a question; in a group chat
or a channel only a message that @mentions the bot (the mention is cut from the question). The
hub tenant is the Azure AD tenant's (``channelData.tenant.id`` through ``teams.tenants``); an
unmapped tenant without ``teams.default_tenant`` is refused, never answered as ``default``.
A card button (Action.Submit) arrives as a message with a ``value``: 👍 / 👎 on an answer, or
Take / Resolve on the agents' desk.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from microsoft_agents.activity import Activity
from pydantic import ValidationError

from core.config import TeamsSettings
from core.schema import AskRequest

PLATFORM = "teams"
FEEDBACK_TAG, DESK_TAG = "askhub-fb", "askhub-desk"
Action = Literal["ask", "feedback", "desk", "refused", "ignore"]
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True, slots=True)
class Where:
    """Where an answer goes: the service URL, the conversation, the message it replies to."""

    service_url: str
    conversation: str  # in a channel: "19:…@thread.tacv2;messageid=<root>" (the reply chain)
    reply_to: str
    kind: str  # personal | groupChat | channel
    channel: str | None  # a channel's id (channelData.channel.id)

    @property
    def thread(self) -> str | None:
        """The root message id of a channel's reply chain."""
        _, _, root = self.conversation.partition(";messageid=")
        return root or None


@dataclass(frozen=True, slots=True)
class Incoming:
    action: Action
    event_id: str
    where: Where | None = None
    aad_tenant: str = ""
    tenant: str = ""
    user: str = ""  # the Azure AD object id (else the Teams user id): never a display name
    question: str = ""
    value: dict[str, Any] | None = None
    why: str = ""  # an ignored or refused activity: a fixed word for logs and metrics


def parse(raw: dict[str, Any]) -> Activity | None:
    try:
        return Activity.model_validate(raw)
    except ValidationError:
        return None


def event_id(activity: Activity) -> str | None:
    """What the inbox claims: an activity id is unique within its conversation."""
    conversation = activity.conversation.id.split(";")[0] if activity.conversation else ""
    if not activity.id or not conversation:
        return None
    return f"{conversation}:{activity.id}"


def aad_tenant_of(activity: Activity) -> str:
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    tenant = (data.get("tenant") or {}).get("id") if isinstance(data.get("tenant"), dict) else None
    return str(tenant or (activity.conversation.tenant_id if activity.conversation else "") or "")


def tenant_of(aad_tenant: str, settings: TeamsSettings) -> str | None:
    return settings.tenants.get(aad_tenant) or settings.default_tenant


def where_of(activity: Activity) -> Where:
    assert activity.conversation is not None and activity.service_url and activity.id
    data = activity.channel_data if isinstance(activity.channel_data, dict) else {}
    channel = (data.get("channel") or {}).get("id") if isinstance(data.get("channel"), dict) else None
    kind = activity.conversation.conversation_type or ("channel" if channel else "personal")
    conversation = activity.conversation.id
    if kind == "channel" and ";messageid=" not in conversation:
        conversation = f"{conversation};messageid={activity.id}"  # a new post: its own reply chain
    return Where(activity.service_url, conversation, activity.id, kind, str(channel) if channel else None)


def translate(activity: Activity, settings: TeamsSettings, event: str) -> Incoming:
    if activity.type != "message" or activity.conversation is None or not activity.service_url:
        return Incoming("ignore", event, why=str(activity.type or "no_type"))
    sender = activity.from_property
    if sender is None or (activity.recipient and sender.id == activity.recipient.id):
        return Incoming("ignore", event, why="own_message")
    aad = aad_tenant_of(activity)
    tenant = tenant_of(aad, settings)
    user = str(sender.aad_object_id or sender.id)
    base = Incoming("ignore", event, where=where_of(activity), aad_tenant=aad, tenant=tenant or "", user=user)
    value = activity.value if isinstance(activity.value, dict) else None
    if value is not None and value.get("askhub") == DESK_TAG:
        return replace(base, action="desk", value=value)
    if tenant is None:
        return replace(base, action="refused", why="unmapped_tenant")
    if value is not None and value.get("askhub") == FEEDBACK_TAG:
        return replace(base, action="feedback", value=value)
    question = addressed_text(activity)
    if question is None:
        if base.where is not None and base.where.kind != "personal":
            return replace(base, why="not_addressed")
        question = plain(activity.text or "")
    if not question:
        return replace(base, why="empty")
    return replace(base, action="ask", question=question)


def addressed_text(activity: Activity) -> str | None:
    """The text without the bot's @mention; None when the bot is not mentioned."""
    bot = activity.recipient.id if activity.recipient else None
    text, mentioned = activity.text or "", False
    for entity in activity.entities or []:
        data = entity.model_dump(by_alias=True, exclude_none=True)
        if data.get("type") != "mention" or (data.get("mentioned") or {}).get("id") != bot:
            continue
        mentioned = True
        if data.get("text"):
            text = text.replace(str(data["text"]), " ")
    return plain(text) if mentioned else None


def plain(text: str) -> str:
    """Teams' message text (may hold HTML) as the words the user typed."""
    return " ".join(html.unescape(_TAG.sub(" ", text)).split())


def to_request(incoming: Incoming, request_id: str) -> AskRequest:
    where = incoming.where
    assert where is not None
    return AskRequest(
        incoming.question,
        tenant=incoming.tenant,
        client=PLATFORM,
        user=incoming.user,
        platform=PLATFORM,
        channel=where.conversation.split(";")[0],
        conversation_id=f"teams:{where.conversation}",  # a channel's reply chain, a chat's whole
        request_id=request_id,
    )


def feedback_value(request_id: str, rating: str, language: str) -> dict[str, str]:
    return {"askhub": FEEDBACK_TAG, "r": rating, "id": request_id, "l": language}


def parse_feedback(value: dict[str, Any]) -> tuple[str, Literal["up", "down"], str] | None:
    request_id, rating = str(value.get("id") or ""), value.get("r")
    if rating not in ("up", "down") or not (0 < len(request_id) <= 64 and request_id.isalnum()):
        return None
    return request_id, rating, "zh-TW" if value.get("l") == "zh-TW" else "en"
