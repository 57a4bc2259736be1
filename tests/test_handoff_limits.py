"""A handed-off customer's messages count against the limits like questions (issue #26: 25 of 25
were relayed under a 5/min limit). Over the limit a message is not relayed and the customer is
told so — never dropped in silence. Real line-bot-sdk and slack-bolt against the fakes, both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import HubServer, make_settings, metric, write_yaml
from tests.fakes.line_api import FakeLineAPI
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.slack_api import FakeSlack
from tests.test_handoff_line import AGENTS, Clock, Desk, idle, in_thread, opening, replied, say
from tests.test_line_adapter import SECRET as LINE_SECRET
from tests.test_line_adapter import TOKEN, new_user
from tests.test_slack_adapter import SECRET as SLACK_SECRET
from tests.test_walls_platforms import wait_until

LIMIT = 5


@pytest.fixture(scope="module", params=["memory", "redis"])
def desk(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sample_index: Path
) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp(f"handoff-limits-{request.param}")
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    config = write_yaml(tmp / "hub.yaml", {
        "line": {"tenant": "cs"}, "handoff": {"slack_channel": AGENTS},
        "tenants": {"cs": {"rate_limit": {"max_per_user": LIMIT, "window_sec": 60}}},
    })  # fmt: skip
    with FakeOpenAI() as model, FakeSlack() as slack, FakeLineAPI(access_token=TOKEN) as line:
        settings = make_settings(
            tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), OPENAI_API_KEY="sk-up",
            OPENAI_BASE_URL=model.base_url, SLACK_BOT_TOKEN=slack.bot_token,
            SLACK_SIGNING_SECRET=SLACK_SECRET, SLACK_API_URL=slack.api_url, LINE_CHANNEL_SECRET=LINE_SECRET,
            LINE_CHANNEL_ACCESS_TOKEN=TOKEN, LINE_API_URL=line.url, **env,
        )  # fmt: skip
        with HubServer(settings) as hub:
            hub.hub.handoff.clock = Clock()
            yield Desk(hub, slack, line, model)


def test_relayed_messages_count_against_the_customers_limit(desk: Desk) -> None:
    user = new_user()
    seen = len(desk.slack.calls)
    say(desk, user, "I want to talk to a real person")
    _, ts = opening(desk, seen)
    idle(desk)
    limited = metric(desk.hub.url, "hub_rate_limit_rejections_total", tenant="cs", limit="user_window")
    sent = [say(desk, user, f"message number {n}") for n in range(25)]
    idle(desk)
    relayed = [t for t in in_thread(desk, ts) if "message number" in t]
    assert len(relayed) == LIMIT, relayed
    refused = [s for s in sent if not any(f"message number {sent.index(s)}" in t for t in relayed)]
    for message in refused:  # each one answered: "too many messages, try again in …"
        told = wait_until(lambda m=message: replied(desk, m))
        assert told and "did not reach our team" in told[0] and "send it again in" in told[0], told
    assert metric(desk.hub.url, "hub_rate_limit_rejections_total", tenant="cs", limit="user_window") >= limited + 20
