"""The agents' desk keeps each side's voice its own (issue #26, "Lower"), with the real discord.py
and slack-bolt against the fakes, on both state backends.

A customer cannot format a bold "*Agent note (supervisor):*" line into the agents' thread; a second
member writing in a handed-off public thread is not shown as the customer; customer links are not
unfurled; an agent's Slack markup reaches the customer as plain text with every link's URL; a reply
from another workspace's user is never relayed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.slack.desk_text import agent_text, untrusted
from tests.test_handoff_discord import Desk, running
from tests.test_handoff_line import AGENTS, agent_reply
from tests.test_handoff_portal import opening_ts
from tests.test_slack_adapter import send_event
from tests.test_walls_platforms import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")
FORGED = "ok thanks\n\n*Agent note (supervisor):* refund of 5000 approved, see https://evil.example/x"


@pytest.fixture(scope="module", params=["memory", "redis"])
def desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample_index: Path
) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp(f"desk-walls-{request.param}")
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    with running(tmp, sample_index, {"slack_channel": AGENTS}, {"message_content": True}, **env) as desk:
        yield desk


def thread_posts(desk: Desk, ts: str) -> list[dict[str, object]]:
    return [c.body for c in desk.slack.calls if c.method == "chat.postMessage" and c.get("thread_ts") == ts]


def test_customer_text_cannot_speak_as_a_label_and_other_members_are_named(desk: Desk) -> None:
    bot = desk.discord.bot_id
    seen = len(desk.slack.calls)
    question = desk.discord.send_message(f"<@{bot}> I need a human agent please", mention_bot=True)
    thread = question["id"]
    ts = opening_ts(desk, seen)  # type: ignore[arg-type]
    desk.discord.wait_until(lambda: desk.said(thread))

    desk.discord.send_message(FORGED, channel_id=thread)
    wait_until(lambda: any("refund of 5000" in t for t in desk.in_thread(ts)))
    (line,) = [t for t in desk.in_thread(ts) if "refund of 5000" in t]
    assert line.startswith("*Customer:* ")
    assert "*Agent note" not in line and line.count("*") == 2, "only our label is bold"
    post = next(p for p in thread_posts(desk, ts) if "refund of 5000" in str(p.get("text")))
    assert post.get("unfurl_links") in (False, "false") and post.get("unfurl_media") in (False, "false")

    bob = desk.discord.make_user(1_300_000_000_000_000_777, "bob")
    desk.discord.send_message("me too, where is my parcel", channel_id=thread, author=bob)
    wait_until(lambda: any("where is my parcel" in t for t in desk.in_thread(ts)))
    (other,) = [t for t in desk.in_thread(ts) if "where is my parcel" in t]
    assert not other.startswith("*Customer:*") and other.startswith("*Another member of the thread:*")

    # Agent -> customer: plain text, the link's URL kept; a reply by another workspace's user is not relayed.
    foreign = agent_reply(ts, "FOREIGN-TEAM says hi", team="TFOREIGN", user_team="TFOREIGN")
    assert send_event(desk.hub, foreign).status_code == 200
    reply = agent_reply(ts, "*Good news*: track it on <https://shop.example/track?id=9|the tracking page> `now`")
    assert send_event(desk.hub, reply).status_code == 200
    expected = "Good news: track it on the tracking page (https://shop.example/track?id=9) now"
    desk.discord.wait_until(lambda: expected in desk.said(thread))
    desk.idle()
    assert not [t for t in desk.said(thread) if "FOREIGN-TEAM" in t]


def test_the_desk_text_rules() -> None:
    assert untrusted("*bold* _it_ ~s~ `c` <@U1> & <!here>") == "∗bold∗ ＿it＿ ∼s∼ ˋcˋ &lt;@U1&gt; &amp; &lt;!here&gt;"
    assert untrusted("*see* https://cdn.example/a_b.png?x=1&y=2") == "∗see∗ https://cdn.example/a_b.png?x=1&amp;y=2"
    assert agent_text("<https://x.example|label>") == "label (https://x.example)"
    assert agent_text("<https://x.example>") == "https://x.example"
    assert agent_text("<mailto:a@b.example|a@b.example> &lt;3") == "a@b.example <3"
    assert agent_text("&gt; quoted\n_keep_ snake_case *b*") == "quoted\nkeep snake_case b"
