"""The agents' desk in Block Kit: the opening message of a handoff and its state after Take or
the end. Pure functions; desk.py posts and updates what they build."""

from __future__ import annotations

import json
from typing import Any

from adapters.slack.desk_text import untrusted
from adapters.slack.render import escape
from core.handoff import Handoff, Opening, Status
from core.handoff.notices import duration

ACTION_RESOLVE, ACTION_TAKE, ACTION_SAVE = "handoff_resolve", "handoff_take", "handoff_save_verified"
STATUS_BLOCK, ACTIONS_BLOCK = "askhub_handoff_status", "askhub_handoff_actions"
SECTION_LIMIT = 2900
PLATFORMS = {
    "line": "LINE",
    "discord": "Discord",
    "portal": "the web portal",
    "whatsapp": "WhatsApp",
    "telegram": "Telegram",
}
REASONS = {
    "trigger": "asked for a person",
    "no_answer": "the bot could not answer twice",
    "feedback": "👎 + asked for a person",
}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}}


def opening_text(handoff: Handoff) -> str:
    """The notification text (and what clients without blocks show)."""
    return f"🙋 A customer on {PLATFORMS.get(handoff.platform, handoff.platform)} ({handoff.tenant}) wants a person"


def opening_blocks(handoff: Handoff, opening: Opening) -> list[dict[str, Any]]:
    platform = PLATFORMS.get(opening.platform, opening.platform)
    fields = [
        {"type": "mrkdwn", "text": f"*Platform*\n{platform}"},
        {"type": "mrkdwn", "text": f"*Tenant*\n{escape(opening.tenant)}"},
        {"type": "mrkdwn", "text": f"*Why*\n{REASONS.get(handoff.reason, handoff.reason)}"},
        {"type": "mrkdwn", "text": f"*Language*\n{opening.language}"},
    ]
    label = "Summary" if opening.summary_kind == "llm" else "Last messages"
    # The customer's words (and the bot's, which a customer can steer) format nothing: only our labels are bold.
    lines = [f"*{'Customer' if who == 'customer' else 'Bot'}:* {untrusted(text)}" for who, text in opening.transcript]
    conversation = "\n".join(lines) or "_(nothing yet)_"
    return [
        {"type": "header", "text": {"type": "plain_text", "text": opening_text(handoff)[:150], "emoji": True}},
        {"type": "section", "fields": fields},
        _section(f"*{label}*\n{untrusted(opening.summary)}"),
        _section(f"*Conversation so far*\n{conversation}"),
        status_block(Status("open")),
        actions_block(handoff, Status("open")),
    ]


def status_block(status: Status) -> dict[str, Any]:
    if status.state == "open":
        text = "⏳ Waiting for an agent. Reply in this thread: the customer gets your reply."
    elif status.state == "taken":
        text = f"🙋 Taken by <@{status.taken_by}>. Replies in this thread go to the customer."
    else:
        took = duration(status.duration_sec or 0)
        who = f"Resolved by <@{status.resolved_by}>" if status.resolved_by else "Closed after a quiet spell"
        taken = f" (taken by <@{status.taken_by}>)" if status.taken_by else ""
        text = f"✅ {who} after {took}{taken}. The bot answers this customer again."
    return {"type": "context", "block_id": STATUS_BLOCK, "elements": [{"type": "mrkdwn", "text": text}]}


def actions_block(handoff: Handoff, status: Status, *, can_save: bool = False) -> dict[str, Any]:
    if status.state == "resolved":
        save = {"type": "plain_text", "text": "Save as verified answer"}
        elements = [{"type": "button", "action_id": ACTION_SAVE, "value": handoff.id, "text": save}] if can_save else []
    else:
        elements = [
            {"type": "button", "action_id": ACTION_TAKE, "value": handoff.id,
             "text": {"type": "plain_text", "text": "Take"}},
            {"type": "button", "action_id": ACTION_RESOLVE, "value": handoff.id, "style": "primary",
             "text": {"type": "plain_text", "text": "Resolve"}},
        ]  # fmt: skip
    return {"type": "actions", "block_id": ACTIONS_BLOCK, "elements": elements}


def with_status(
    blocks: list[dict[str, Any]], handoff: Handoff, status: Status, *, can_save: bool = False
) -> list[dict[str, Any]]:
    """The message's blocks with its state line and buttons replaced (the rest kept as posted)."""
    kept = [b for b in blocks if b.get("block_id") not in (STATUS_BLOCK, ACTIONS_BLOCK)]
    actions = actions_block(handoff, status, can_save=can_save)
    return [*kept, status_block(status), *([actions] if actions["elements"] else [])]


AUTHORS = {"customer": "Customer", "member": "Another member of the thread"}


def customer_line(text: str, author: str = "customer") -> str:
    """A relayed message in the handoff's thread: who wrote it (the customer, or someone else in a
    shared thread), then their text, which cannot format itself into a label."""
    return f"*{AUTHORS.get(author, AUTHORS['member'])}:* {untrusted(text)}"


SAVE_VIEW = "handoff_save_verified"


def save_modal(proposal: dict[str, Any], channel: str, ts: str) -> dict[str, Any]:
    """The "Save as verified answer" form: the customer's question and the agent's last reply,
    editable, and the collection it answers in (the customer's tenant's)."""

    def text_input(block: str, label: str, value: str, limit: int) -> dict[str, Any]:
        element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "multiline": True,
                                   "max_length": limit}  # fmt: skip
        if value.strip():
            element["initial_value"] = value[:limit]
        return {"type": "input", "block_id": block, "label": {"type": "plain_text", "text": label},
                "element": element}  # fmt: skip

    options = [{"text": {"type": "plain_text", "text": name[:75]}, "value": name} for name in proposal["collections"]]
    select: dict[str, Any] = {"type": "static_select", "action_id": "value", "options": options[:100]}
    if options:
        select["initial_option"] = options[0]
    label = {"type": "plain_text", "text": "Collection"}
    return {
        "type": "modal",
        "callback_id": SAVE_VIEW,
        "private_metadata": json.dumps({"channel": channel, "ts": ts}),
        "title": {"type": "plain_text", "text": "Verified answer"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            text_input("question", "Question (as customers ask it)", proposal["question"], 2000),
            text_input("answer", "Answer", proposal["answer"], 3000),
            {"type": "input", "block_id": "collection", "label": label, "element": select},
        ],
    }


def saved_line(user: str, collection: str) -> str:
    return f"✅ Saved as a verified answer in *{escape(collection)}* by <@{user}>."
