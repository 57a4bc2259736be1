"""Text crossing the desk in both directions, so neither side can speak in the other's voice.

customer -> agents  ``untrusted``: the customer's text as mrkdwn that formats nothing. Slack has
                    no escape for ``*`` ``_`` ``~`` `````: each is replaced by a look-alike (∗ ＿ ∼ ˋ),
                    so a customer cannot write a bold "*Agent note (supervisor):*" line or a code
                    block; ``& < >`` are escaped as Slack asks, so no mention or link is made either.
agents -> customer  ``agent_text``: an agent's Slack message as plain text for LINE, Discord and the
                    portal: a link keeps its URL (``<https://x|label>`` -> "label (https://x)"),
                    bold, italics, strike-through and code marks are dropped, quotes and entities
                    decoded. Hand-written: Slack's mrkdwn is small and no maintained parser exists.
"""

from __future__ import annotations

import re

_LOOKALIKES = str.maketrans({"*": "∗", "_": "＿", "~": "∼", "`": "ˋ"})
_URL = re.compile(r"https?://[^\s<>*~`]+")


def untrusted(text: str) -> str:
    """Outside a URL every mark is a look-alike; a URL keeps its own characters (an image link
    with an underscore still opens), and Slack formats nothing inside a link."""
    out, at = [], 0
    for url in _URL.finditer(text):
        out += [_escape(text[at : url.start()]).translate(_LOOKALIKES), _escape(url.group())]
        at = url.end()
    out.append(_escape(text[at:]).translate(_LOOKALIKES))
    return "".join(out)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_ANGLE = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_FENCE = re.compile(r"```\n?(.*?)\n?```", re.DOTALL)
_CODE = re.compile(r"`([^`\n]+)`")
_MARKS = [
    re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"),
    re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"),
    re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])"),
]
_QUOTE = re.compile(r"^&gt;\s?", re.MULTILINE)


def agent_text(text: str, bot_user_id: str | None = None) -> str:
    """A Slack message (mrkdwn with Slack's entities) as the plain text a customer is sent."""

    def angle(m: re.Match[str]) -> str:
        target, label = m.group(1), m.group(2)
        if target.startswith("@"):  # <@U123> (a colleague): the bot's own mention is dropped
            return "" if target[1:] == bot_user_id else (f"@{label}" if label else "@agent")
        if target.startswith(("#C", "#G")):
            return f"#{label}" if label else "#channel"
        if target.startswith("!"):  # <!here>, <!subteam^…|@team>
            return label or ""
        if target.startswith("mailto:"):
            return label or target.removeprefix("mailto:")
        if label and label != target:
            return f"{label} ({target})"
        return target

    text = _FENCE.sub(lambda m: m.group(1), text)
    text = _CODE.sub(lambda m: m.group(1), text)
    for mark in _MARKS:
        text = mark.sub(lambda m: m.group(1), text)
    text = _QUOTE.sub("", text)
    text = _ANGLE.sub(angle, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(lines).strip()
