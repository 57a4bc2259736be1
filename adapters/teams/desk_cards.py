"""The agents' desk in Adaptive Cards: a handoff's opening card (Take / Resolve) and its state
after a Take or the end. Pure functions; desk.py posts and edits what they build.

The card is rebuilt whole from the handoff and its state on each edit (the Bot Connector cannot
read a message back), so what only the start knows — the summary and the conversation so far —
goes in the first reply of the card's reply chain instead.
"""

from __future__ import annotations

from typing import Any

from adapters.teams.translate import DESK_TAG
from core.handoff import Handoff, Opening, Status
from core.handoff.notices import duration

PLATFORMS = {
    "line": "LINE",
    "discord": "Discord",
    "portal": "the web portal",
    "teams": "Teams",
    "whatsapp": "WhatsApp",
    "telegram": "Telegram",
}
REASONS = {
    "trigger": "asked for a person",
    "no_answer": "the bot could not answer twice",
    "feedback": "👎 + asked for a person",
}
TEXT_LIMIT = 20_000  # of the summary reply: well inside Teams' 28 KB


def opening_text(handoff: Handoff) -> str:
    return f"🙋 A customer on {PLATFORMS.get(handoff.platform, handoff.platform)} ({handoff.tenant}) wants a person"


def status_text(status: Status) -> str:
    if status.state == "open":
        return "⏳ Waiting for an agent. Reply in this thread: the customer gets your reply."
    if status.state == "taken":
        return f"🙋 Taken by {status.taken_by}. Replies in this thread go to the customer."
    took = duration(status.duration_sec or 0)
    who = f"Resolved by {status.resolved_by}" if status.resolved_by else "Closed after a quiet spell"
    taken = f" (taken by {status.taken_by})" if status.taken_by else ""
    return f"✅ {who} after {took}{taken}. The bot answers this customer again."


def card(handoff: Handoff, status: Status) -> dict[str, Any]:
    facts = [
        {"title": "Platform", "value": PLATFORMS.get(handoff.platform, handoff.platform)},
        {"title": "Tenant", "value": handoff.tenant},
        {"title": "Why", "value": REASONS.get(handoff.reason, handoff.reason)},
        {"title": "Language", "value": handoff.language},
    ]
    actions = []
    if status.state != "resolved":
        actions = [
            {"type": "Action.Submit", "title": "Take", "data": {"askhub": DESK_TAG, "kind": "take", "h": handoff.id}},
            {"type": "Action.Submit", "title": "Resolve", "style": "positive",
             "data": {"askhub": DESK_TAG, "kind": "resolve", "h": handoff.id}},
        ]  # fmt: skip
    content = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": [
            {"type": "TextBlock", "text": opening_text(handoff), "weight": "Bolder", "wrap": True},
            {"type": "FactSet", "facts": facts},
            {"type": "TextBlock", "text": status_text(status), "wrap": True, "id": "status"},
        ],
        "actions": actions,
    }
    return {
        "type": "message",
        "summary": opening_text(handoff),
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": content}],
    }


def summary_text(opening: Opening) -> str:
    label = "Summary" if opening.summary_kind == "llm" else "Last messages"
    lines = [f"**{'Customer' if who == 'customer' else 'Bot'}:** {text}" for who, text in opening.transcript]
    text = f"**{label}**\n\n{opening.summary}\n\n**Conversation so far**\n\n" + ("\n\n".join(lines) or "(nothing yet)")
    return text[:TEXT_LIMIT]


def customer_line(text: str) -> str:
    return f"**Customer:** {text}"[:TEXT_LIMIT]
