"""Core AskResult -> Teams activities (pure).

Teams refuses a message larger than about 28 KB, so the answer's text is split by core's
splitter into parts that fit with room for the envelope and the card (``TEXT_BYTES``, measured
as the UTF-8 bytes the JSON will carry). The last part carries an Adaptive Card with the sources,
numbered as the answer cites them ([1], [2]), and 👍 / 👎 buttons (Action.Submit, whose data comes
back as a message ``value``: translate.parse_feedback). Every part also carries Teams' citation
entity, so the client shows each [n] as a hover card with its source.

In a personal chat the answer is streamed (Teams' streaming for bots, 1:1 chats only): a
``typing`` activity with a ``streaminfo`` entity opens the stream (its activity id is the
``streamId``), more ``typing`` activities carry the growing text with ``streamSequence`` 2, 3, …,
and the first part of the answer, as a ``message`` whose ``streaminfo`` is ``streamType: final``
(no sequence), ends it — attachments only there, as Teams allows.
"""

from __future__ import annotations

from typing import Any

from adapters.teams.translate import feedback_value
from core.llm.prompt import language_of
from core.messages import for_error
from core.schema import AskResult, Source
from core.textsplit import split_text
from core.verified.mark import verified_line

LIMIT_BYTES = 28 * 1024  # what Teams takes in one message, envelope included
TEXT_BYTES = LIMIT_BYTES - 8 * 1024  # the card, the citations (short abstracts) and the envelope
MAX_PARTS = 5
MAX_SOURCES = 5
MAX_CITATIONS = 10  # Teams shows at most 20; the core retrieves at most top_k
THINKING = "…"
STREAMINFO = "streaminfo"  # microsoft_agents.activity EntityTypes.STREAM_INFO
_SEARCHING = {"zh-TW": "正在查找資料…", "en": "Searching the knowledge base…"}
_SOURCES = {"zh-TW": "資料來源", "en": "Sources"}
_THANKS = {"zh-TW": "謝謝你的回饋！", "en": "Thanks for the feedback!"}
_MORE = {
    "zh-TW": "（回答較長，以上為節錄；完整內容請在 Ask Hub 網頁版查看。）",
    "en": "(The answer is longer than Teams allows; ask the same question in the Ask Hub web portal to read it all.)",
}


def json_bytes(text: str) -> int:
    """The UTF-8 bytes of ``text`` inside a JSON string (quotes, backslashes, newlines escaped)."""
    return len(text.encode()) + text.count("\n") + text.count('"') + text.count("\\") + text.count("\t")


def message(text: str, attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    activity: dict[str, Any] = {"type": "message", "textFormat": "markdown", "text": text}
    if attachments:
        activity["attachments"] = attachments
    return activity


def thinking() -> dict[str, Any]:
    """The placeholder the answer is edited into (Teams shows it in the reply chain at once)."""
    return message(THINKING)


def stream_start(language: str) -> dict[str, Any]:
    """Opens a stream: an informative update (Teams' blue progress bar) while the core searches."""
    info = {"type": STREAMINFO, "streamType": "informative", "streamSequence": 1}
    return {"type": "typing", "text": _SEARCHING.get(language, _SEARCHING["en"]), "entities": [info]}


def stream_update(text: str, stream_id: str, sequence: int) -> dict[str, Any]:
    """The answer so far; each update holds the whole text shown before it (Teams requires that)."""
    info = {"type": STREAMINFO, "streamId": stream_id, "streamType": "streaming", "streamSequence": sequence}
    return {"type": "typing", "text": text, "entities": [info]}


def stream_final(activity: dict[str, Any], stream_id: str) -> dict[str, Any]:
    """``activity`` (the answer's first part) as the message that ends the stream."""
    final = {"type": STREAMINFO, "streamId": stream_id, "streamType": "final"}
    return {**activity, "entities": [*activity.get("entities", []), final]}


def answer_activities(result: AskResult) -> list[dict[str, Any]]:
    language = language_of(result.question)
    line = verified_line(result.verified, result.question)
    text = f"{result.answer}\n\n{line}" if line else result.answer
    parts = split_text(text, TEXT_BYTES, measure=json_bytes, max_parts=MAX_PARTS,
                       ellipsis="…\n\n" + _MORE[language]) or [text.strip() or THINKING]  # fmt: skip
    activities = [message(part) for part in parts]
    cited = citations(result.sources)
    for activity in activities:
        activity["entities"] = [cited]
    activities[-1]["attachments"] = [card(result.sources, result.request_id, language)]
    return activities


def citations(sources: list[Source]) -> dict[str, Any]:
    """Teams' citation entity: the client turns the answer's [n] into a hover card with the
    source, and labels the message as AI-generated."""
    claims = [
        {"@type": "Claim", "position": n,
         "appearance": {"@type": "DigitalDocument", "name": _clip(source.title or source.id, 80),
                        "abstract": _clip(source.text, 160)}}
        for n, source in enumerate(sources[:MAX_CITATIONS], 1)
    ]  # fmt: skip
    return {"type": "https://schema.org/Message", "@type": "Message", "@context": "https://schema.org", "@id": "",
            "additionalType": ["AIGeneratedContent"], "citation": claims}  # fmt: skip


def card(sources: list[Source], request_id: str, language: str) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    if sources:
        cited: dict[str, list[int]] = {}
        for n, source in enumerate(sources, 1):
            cited.setdefault(source.title.strip() or source.id, []).append(n)
        body.append({"type": "TextBlock", "text": _SOURCES[language], "weight": "Bolder", "size": "Small"})
        for title, numbers in list(cited.items())[:MAX_SOURCES]:
            label = "".join(f"[{n}]" for n in numbers)
            body.append({"type": "TextBlock", "text": f"{label} {_clip(title, 100)}", "wrap": True, "size": "Small",
                         "spacing": "None"})  # fmt: skip
    actions = [
        {"type": "Action.Submit", "title": title, "data": feedback_value(request_id, rating, language)}
        for title, rating in (("👍", "up"), ("👎", "down"))
    ]
    return {
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.5",
            "body": body,
            "actions": actions,
        },
    }


def error_activity(error: Exception, question: str, request_id: str) -> dict[str, Any]:
    return message(for_error(error, question, request_id))


def thanks(language: str, *, person: str | None = None) -> dict[str, Any]:
    """``person``: after a 👎, a "Talk to a person" button that sends this trigger as the user's
    own message (Teams' imBack), which the handoff then sees like one typed."""
    thanked = message(_THANKS.get(language, _THANKS["en"]))
    if person:
        label = "真人客服" if language == "zh-TW" else "Talk to a person"
        button = {"type": "Action.Submit", "title": label, "data": {"msteams": {"type": "imBack", "value": person}}}
        content = {"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                   "version": "1.5", "body": [], "actions": [button]}  # fmt: skip
        thanked["attachments"] = [{"contentType": "application/vnd.microsoft.card.adaptive", "content": content}]
    return thanked


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
