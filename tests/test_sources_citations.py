"""Citations point home: a source synced from a web page links to it on every door's renderer,
and a source without an address (a KB_DIR file) or with a non-web one (``javascript:``) does not."""

from __future__ import annotations

from adapters.discord import render as discord_render
from adapters.line import render as line_render
from adapters.slack import render as slack_render
from core.schema import AskResult, Source, Usage

HOME = "https://help.example.com/returns?x=1|2"
SOURCES = [
    Source("help/returns.md#0", "Returns & refunds", "Return within 30 days.", 0.9, "public", HOME),
    Source("hours.md#0", "Opening hours", "9 to 6.", 0.5, "public"),
    Source("evil.md#0", "Evil", "x", 0.4, "public", "javascript:alert(1)"),
]
RESULT = AskResult("q", "Within 30 days [1].", SOURCES, "extractive", False, Usage(), "a" * 32)


def test_slack_links_the_synced_title() -> None:
    texts = [e["text"] for e in slack_render.sources_block(RESULT)["elements"]]
    assert texts[0] == "*[1]* <https://help.example.com/returns?x=1%7C2|Returns &amp; refunds> · score 0.90"
    assert texts[1] == "*[2]* Opening hours · score 0.50"
    assert "javascript" not in texts[2]


def test_discord_links_the_synced_document() -> None:
    embed = discord_render.sources_embed(SOURCES)
    assert embed is not None
    values = [f["value"] for f in embed["fields"]]
    assert f"[open]({HOME})" in values[0]
    assert "[open]" not in values[1] and "javascript" not in values[2]


def test_line_opens_the_synced_document_when_its_line_is_tapped() -> None:
    message = line_render.sources_message(SOURCES, "en")
    lines = message.contents.body.contents[2:]
    assert lines[0].action is not None and lines[0].action.uri == HOME
    assert lines[1].action is None and lines[2].action is None
