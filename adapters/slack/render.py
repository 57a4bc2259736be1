"""AskResult -> Slack: Markdown as mrkdwn, Block Kit sections within Slack's limits, numbered
sources, and the 👍 / 👎 buttons. Pure functions; reply.py sends what they build.
"""

from __future__ import annotations

import re
from typing import Any

from core.schema import AskResult
from core.textsplit import split_text
from core.verified.mark import verified_line

SECTION_LIMIT = 3000  # characters in a section block's text
MAX_BLOCKS = 50  # blocks in one message
MAX_SOURCES = 10  # elements in a context block
TEXT_LIMIT = 3000  # the notification / progress text we send (Slack truncates at 40,000)
STREAM_CHUNK = 12_000  # markdown_text per chat.appendStream / chat.stopStream call
FEEDBACK_BLOCK = "askhub_feedback"
ACTION_UP, ACTION_DOWN = "askhub_feedback_up", "askhub_feedback_down"

THINKING = "_Thinking…_"
THANKS = {"up": "Thanks for the feedback 👍", "down": "Thanks — noted 👎. We use this to improve the answers."}


# --- Markdown -> mrkdwn --------------------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)\s*$")
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_QUOTE = re.compile(r"^ {0,3}>\s?(.*)$")
_RULE = re.compile(r"^ {0,3}([-*_])(\s*\1){2,}\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_LINK = re.compile(r"\[([^\]]+)\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"&lt;((?:https?|mailto):[^\s&]+(?:&amp;[^\s&]+)*)&gt;")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![*\w])\*(?=\S)([^*]+?)(?<=\S)\*(?![*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HOLD = "\x00"


def escape(text: str) -> str:
    """Slack's three control characters in text (https://docs.slack.dev/messaging/formatting-message-text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """Markdown (what the models write) as Slack mrkdwn: **bold** -> *bold*, *italic* -> _italic_,
    ~~strike~~ -> ~strike~, [text](url) -> <url|text>, headings -> bold lines, bullets as •,
    quotes and code (fenced and inline) kept, & < > escaped."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines():
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not m.group(2):
                fence = None
                out.append("```")
            else:
                out.append(escape(line))
            continue
        if m:
            fence = m.group(1)
            out.append("```")  # mrkdwn has no language tags
            continue
        out.append(_block_line(line))
    if fence is not None:  # an unclosed block (a partial answer while it streams)
        out.append("```")
    return "\n".join(out).strip("\n")


def _block_line(line: str) -> str:
    if m := _HEADING.match(line):
        title = _inline(m.group(1))
        title = title.replace("*", "")  # bold inside a bold line would end it early
        return f"*{title}*" if title else ""
    if _RULE.match(line):
        return "──────────"
    if m := _BULLET.match(line):
        indent = len(m.group(1).expandtabs(4)) // 2
        return "    " * indent + "• " + _inline(m.group(2))
    if m := _QUOTE.match(line):
        return "> " + _inline(m.group(1))
    return _inline(line)


def _inline(text: str) -> str:
    held: list[str] = []

    def hold(value: str) -> str:
        held.append(value)
        return f"{_HOLD}{len(held) - 1}{_HOLD}"

    text = _CODE_SPAN.sub(lambda m: hold(f"`{escape(m.group(2).strip())}`"), text)
    text = escape(text)

    def link(m: re.Match[str]) -> str:
        label = m.group(1).replace("|", "¦").strip() or m.group(2)
        return hold(f"<{m.group(2)}|{_emphasis(label)}>")

    text = _IMAGE.sub(link, text)
    text = _LINK.sub(link, text)
    text = _AUTOLINK.sub(lambda m: hold(f"<{m.group(1)}>"), text)
    text = _emphasis(text)
    while _HOLD in text:
        text = re.sub(rf"{_HOLD}(\d+){_HOLD}", lambda m: held[int(m.group(1))], text)
    return text


def _emphasis(text: str) -> str:
    text = _BOLD.sub(lambda m: f"{_HOLD}B{m.group(2)}{_HOLD}B", text)
    text = _ITALIC_STAR.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    return text.replace(f"{_HOLD}B", "*")


# --- Block Kit ------------------------------------------------------------------------------------


def answer_blocks(result: AskResult) -> list[dict[str, Any]]:
    """The whole answer: sections (each within the section limit), then sources and buttons."""
    footer = footer_blocks(result)
    parts = split_text(to_mrkdwn(result.answer), SECTION_LIMIT, max_parts=MAX_BLOCKS - len(footer)) or ["…"]
    return [section(part) for part in parts] + footer


def footer_blocks(result: AskResult) -> list[dict[str, Any]]:
    """What follows the answer's text: its sources (with scores) and the feedback buttons."""
    blocks = []
    if line := verified_line(result.verified, result.question):
        blocks.append(
            {"type": "context", "block_id": "askhub_verified", "elements": [{"type": "mrkdwn", "text": escape(line)}]}
        )
    if result.sources:
        blocks.append(sources_block(result))
    blocks.append(feedback_block(result.request_id))
    return blocks


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def sources_block(result: AskResult) -> dict[str, Any]:
    elements = []
    for n, source in enumerate(result.sources[:MAX_SOURCES], 1):
        title = escape(" ".join(source.title.split()) or source.id)
        if len(title) > 200:
            title = title[:199] + "…"
        if source.url and source.url.startswith(("https://", "http://")):
            title = f"<{escape(source.url).replace('|', '%7C')}|{title}>"  # a synced document links home
        elements.append({"type": "mrkdwn", "text": f"*[{n}]* {title} · score {source.score:.2f}"})
    return {"type": "context", "block_id": "askhub_sources", "elements": elements}


def feedback_block(request_id: str) -> dict[str, Any]:
    def button(action_id: str, emoji: str, label: str) -> dict[str, Any]:
        return {
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": emoji, "emoji": True},
            "value": request_id,
            "accessibility_label": label,
        }

    return {
        "type": "actions",
        "block_id": FEEDBACK_BLOCK,
        "elements": [
            button(ACTION_UP, "👍", "This answer helped"),
            button(ACTION_DOWN, "👎", "This answer did not help"),
        ],
    }


def notification_text(answer: str) -> str:
    """The message's plain ``text``: what notifications and screen readers show beside blocks."""
    text = to_mrkdwn(answer)
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def progress_text(partial: str) -> str:
    """A growing answer while it is produced (the chat.update fallback)."""
    text = to_mrkdwn(partial[: TEXT_LIMIT - 200])  # cut the Markdown, so that an open code block is closed
    if len(text) > TEXT_LIMIT - 2:
        text = text[: TEXT_LIMIT - 2]
    return f"{text} …" if text else THINKING


def stream_pieces(markdown: str) -> list[str]:
    """Markdown for the streaming methods, in pieces Slack accepts per call (concatenated as is)."""
    return [markdown[i : i + STREAM_CHUNK] for i in range(0, len(markdown), STREAM_CHUNK)]


def asked_text(user: str, question: str) -> str:
    """The message /ask posts in the channel; the answer goes in its thread."""
    shown = question if len(question) <= 500 else question[:499] + "…"
    return f"<@{user}> asked: {escape(shown)}"
