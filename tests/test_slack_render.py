"""The Slack adapter's pure parts: Markdown -> mrkdwn, Block Kit within Slack's limits, and which
events are questions (who, where, what)."""

from __future__ import annotations

from adapters.slack import render, translate
from core.schema import AskResult, Source, Usage


def result(answer: str, sources: int = 2) -> AskResult:
    found = [Source(f"doc{n}.md#0", f"Doc <{n}> & co", "text", 0.5 - n / 10) for n in range(1, sources + 1)]
    return AskResult("q", answer, found, "extractive", False, Usage(), "a" * 32)


def test_markdown_becomes_mrkdwn() -> None:
    md = (
        "# VPN setup\n"
        "Use **FortiClient** and *approve* the prompt, see [the guide](https://wiki.example.com/vpn?a=1&b=2).\n"
        "- Open **Company Portal**\n"
        "  - search for `**not bold**`\n"
        "* Install it\n"
        "1. Connect\n"
        "> Note: 2 < 3 & 4 > 1\n"
        "~~old~~ way, 5*3*2 and snake_case_name, <https://example.com/x>\n"
        "```bash\n"
        "sudo openfortivpn -c **/etc**/x.conf <in>\n"
        "```"
    )
    assert render.to_mrkdwn(md).splitlines() == [
        "*VPN setup*",
        "Use *FortiClient* and _approve_ the prompt, see <https://wiki.example.com/vpn?a=1&amp;b=2|the guide>.",
        "• Open *Company Portal*",
        "    • search for `**not bold**`",
        "• Install it",
        "1. Connect",
        "> Note: 2 &lt; 3 &amp; 4 &gt; 1",
        "~old~ way, 5*3*2 and snake_case_name, <https://example.com/x>",
        "```",
        "sudo openfortivpn -c **/etc**/x.conf &lt;in&gt;",
        "```",
    ]


def test_a_partial_answer_keeps_its_code_block_closed() -> None:
    shown = render.progress_text("Run this:\n```python\nprint('hi')")
    assert shown.count("```") == 2 and shown.endswith("…")
    assert render.progress_text("") == render.THINKING


def test_answer_blocks_sections_sources_and_buttons() -> None:
    blocks = render.answer_blocks(result("**Yes.** Ask IT [1]."))
    assert [b["type"] for b in blocks] == ["section", "context", "actions"]
    assert blocks[0]["text"] == {"type": "mrkdwn", "text": "*Yes.* Ask IT [1]."}
    assert [e["text"] for e in blocks[1]["elements"]] == [
        "*[1]* Doc &lt;1&gt; &amp; co · score 0.40",
        "*[2]* Doc &lt;2&gt; &amp; co · score 0.30",
    ]
    buttons = blocks[2]["elements"]
    assert [(b["action_id"], b["value"], b["text"]["text"]) for b in buttons] == [
        ("askhub_feedback_up", "a" * 32, "👍"),
        ("askhub_feedback_down", "a" * 32, "👎"),
    ]
    assert [b["type"] for b in render.answer_blocks(result("No idea.", sources=0))] == ["section", "actions"]


def test_long_answers_fit_slacks_limits() -> None:
    answer = "\n\n".join(f"Paragraph {n}. " + "word " * 400 for n in range(90))  # ~180,000 characters
    blocks = render.answer_blocks(result(answer, sources=15))
    assert len(blocks) == render.MAX_BLOCKS
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(s) <= render.SECTION_LIMIT for s in sections)
    assert sections[-1].endswith("…")  # cut short, visibly
    assert len(blocks[-2]["elements"]) == render.MAX_SOURCES
    assert len(render.notification_text(answer)) <= render.TEXT_LIMIT
    pieces = render.stream_pieces(answer)
    assert "".join(pieces) == answer and all(len(p) <= render.STREAM_CHUNK for p in pieces)


def test_question_text_drops_the_bot_mention_and_slack_markup() -> None:
    text = "<@UBOT>  how do I reach <https://wiki.example.com|the wiki> from <#C024BE7LR|general> &amp; ask <@U0002>?"
    assert translate.question_text(text, "UBOT") == "how do I reach the wiki from #general & ask @user?"
    assert translate.question_text("<mailto:it@example.com> &lt;tag&gt;", None) == "it@example.com <tag>"


def callback(event: dict) -> dict:
    return {"team_id": "T1", "event_id": "Ev1", "type": "event_callback", "event": event}


def test_which_events_are_questions() -> None:
    def classify(**event: object) -> object:
        base = {"type": "message", "user": "U1", "text": "hi", "ts": "2.0", "channel": "C1"}
        return translate.from_event(callback({**base, **event}), bot_user_id="UBOT", bot_id="BBOT")

    mention = classify(type="app_mention", text="<@UBOT> vpn?")
    assert isinstance(mention, translate.Incoming)
    assert (mention.kind, mention.thread_ts, mention.text, mention.key) == ("mention", "2.0", "vpn?", "msg:T1:C1:2.0")
    assert mention.conversation_id == "slack:T1:C1:2.0"
    dm = classify(channel="D1", channel_type="im", thread_ts="1.0")
    assert isinstance(dm, translate.Incoming) and (dm.kind, dm.thread_ts) == ("dm", "1.0")
    follow = classify(channel_type="channel", thread_ts="1.0")
    assert isinstance(follow, translate.Incoming) and follow.kind == "thread"
    assert follow.conversation_id == "slack:T1:C1:1.0"

    reasons = {
        "bot": [classify(bot_id="B9"), classify(subtype="bot_message"), classify(user="UBOT"),
                classify(type="app_mention", bot_id="B9")],
        "edited": [classify(subtype="message_changed")],
        "deleted": [classify(subtype="message_deleted")],
        "subtype": [classify(subtype="channel_join"), classify(subtype="channel_topic")],
        "not_addressed": [classify(channel_type="channel")],
        "addressed_to_someone_else": [classify(channel_type="channel", thread_ts="1.0", text="<@U9> look")],
        "event": [classify(type="reaction_added")],
    }  # fmt: skip
    for reason, got in reasons.items():
        assert all(g == translate.Ignored(reason) for g in got), (reason, got)


def test_slash_commands_and_buttons() -> None:
    cmd = translate.from_command({"team_id": "T1", "channel_id": "C1", "user_id": "U1", "text": " vpn ",
                                  "trigger_id": "tr1", "response_url": "https://hooks/x"})  # fmt: skip
    assert (cmd.kind, cmd.key, cmd.text, cmd.thread_ts, cmd.conversation_id) == (
        "command",
        "cmd:T1:tr1",
        "vpn",
        None,
        None,
    )
    click = {"team": {"id": "T1"}, "user": {"id": "U2"}, "trigger_id": "tr2",
             "container": {"channel_id": "C1", "message_ts": "3.0", "thread_ts": "2.0"}}  # fmt: skip
    vote = translate.from_action(click, {"action_id": "askhub_feedback_down", "value": "r" * 32})
    assert vote is not None
    assert (vote.rating, vote.request_id, vote.user, vote.thread_ts, vote.key) == (
        "down",
        "r" * 32,
        "U2",
        "2.0",
        "act:T1:tr2",
    )
    assert translate.from_action(click, {"action_id": "something_else", "value": "x"}) is None
