"""WhatsApp Cloud API webhook payload -> what to do with each message (pure: no I/O).

One webhook may carry several changes, each with several messages and statuses: every message
becomes one ``Incoming`` (statuses — sent, delivered, read — are not questions and are left out).
The bot talks one to one: a text is a question, a tap on one of its reply buttons is feedback
or a request for a person, anything else (image, voice note, sticker, location …) gets a note.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from core.config import WhatsAppSettings
from core.schema import AskRequest

PLATFORM = "whatsapp"
Action = Literal["ask", "feedback", "person", "media", "ignore"]
_FEEDBACK, _PERSON = "askhub-fb", "askhub-person"


@dataclass(frozen=True, slots=True)
class Feedback:
    request_id: str
    rating: Literal["up", "down"]
    language: str


@dataclass(frozen=True, slots=True)
class Incoming:
    action: Action
    message_id: str  # the wamid: the dedupe key, and what an answer replies to
    user: str  # the customer's WhatsApp id (their number, digits only)
    timestamp: int  # seconds: the 24-hour customer-service window starts here
    question: str = ""
    feedback: Feedback | None = None
    language: str = "en"  # of a button press (it carries no text to tell it by)
    note: str = ""  # a message that is not text: its type ("image", "audio" …)
    why: str = ""  # an ignored message: a fixed word for logs and metrics
    button: str = ""  # "Talk to a person": the request id of the answer that offered it


def messages_of(payload: Any, phone_number_id: str) -> list[dict[str, Any]]:
    """Every message addressed to this number, raw, in the order WhatsApp sent them."""
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        raise ValueError("not a WhatsApp Business webhook")
    found = []
    for entry in payload.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = (change or {}).get("value") or {}
            if change.get("field") != "messages" or not isinstance(value, dict):
                continue
            if (value.get("metadata") or {}).get("phone_number_id") != phone_number_id:
                continue  # another number of the same app
            found += [m for m in value.get("messages") or [] if isinstance(m, dict) and m.get("id")]
    return found


def translate(raw: dict[str, Any]) -> Incoming:
    base = {"message_id": str(raw["id"]), "user": str(raw.get("from") or ""), "timestamp": _int(raw.get("timestamp"))}
    kind = raw.get("type")
    if not base["user"]:
        return Incoming("ignore", why="no_sender", **base)
    if kind == "text":
        question = " ".join(str((raw.get("text") or {}).get("body") or "").split())
        return Incoming("ask", question=question, **base) if question else Incoming("ignore", why="blank", **base)
    if kind == "interactive":
        reply = (raw.get("interactive") or {}).get("button_reply") or {}
        return _button(str(reply.get("id") or ""), base)
    if kind == "button":  # a quick-reply button of a template
        return _button(str((raw.get("button") or {}).get("payload") or ""), base)
    if kind in ("reaction", "system", "order", "request_welcome"):
        return Incoming("ignore", why=str(kind), **base)
    return Incoming("media", note=str(kind or "message"), **base)


def _button(data: str, base: dict[str, Any]) -> Incoming:
    parts = data.split(":")
    language = "zh-TW" if parts[-1:] == ["zh-TW"] else "en"
    if len(parts) == 3 and parts[0] == _PERSON and _request_id(parts[1]):
        return Incoming("person", language=language, button=parts[1], **base)
    if len(parts) == 4 and parts[0] == _FEEDBACK and parts[1] in ("up", "down") and _request_id(parts[2]):
        return Incoming("feedback", feedback=Feedback(parts[2], parts[1], language), language=language,  # type: ignore[arg-type]
                        **base)  # fmt: skip
    return Incoming("ignore", why="button", **base)


def feedback_id(request_id: str, rating: str, language: str) -> str:
    """A reply button's id (WhatsApp allows 256 characters)."""
    return f"{_FEEDBACK}:{rating}:{request_id}:{language}"


def person_id(request_id: str, language: str) -> str:
    return f"{_PERSON}:{request_id}:{language}"


def to_request(incoming: Incoming, settings: WhatsAppSettings, request_id: str) -> AskRequest:
    return AskRequest(
        incoming.question,
        tenant=settings.tenant,
        client=PLATFORM,
        user=incoming.user,
        platform=PLATFORM,
        channel=incoming.user,
        conversation_id=f"{PLATFORM}:{incoming.user}",
        request_id=request_id,
    )


def _request_id(value: str) -> bool:
    return 0 < len(value) <= 64 and value.isalnum()


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
