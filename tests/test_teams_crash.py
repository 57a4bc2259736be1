"""One visible Teams answer after a worker is killed (-9) mid-answer.

Real processes on a private Redis: a web process accepts (it does not consume), a worker opens
the personal chat's stream and posts the channel's "…" placeholder, waits for the model, and is
killed there; a second worker reclaims the jobs, ends the same stream with the answer and edits
the same placeholder into it. Every conversation ends with one message holding the whole
answer, never two.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import HubProcess, RedisServer, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.teams_api import FakeTeams
from tests.test_crash_answers import notes, queue_empty, wait

APP_ID, APP_PASSWORD, TENANT = "crash-teams-app", "crash-teams-secret", "aad-crash"


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def test_a_teams_answer_cut_by_a_crash_ends_its_stream_or_placeholder_not_posted_twice(
    tmp_path: Path, sample_index: Path, model: FakeOpenAI
) -> None:
    redis = RedisServer(tmp_path).start()
    model.set_behavior(None, delay=60)  # placeholders posted, then the model keeps the worker waiting: killed there
    with FakeTeams(app_id=APP_ID, app_password=APP_PASSWORD) as teams:
        env = {"INDEX_DIR": str(sample_index), "TEAMS_APP_ID": APP_ID, "TEAMS_APP_PASSWORD": APP_PASSWORD,
               "TEAMS_OPENID_URL": teams.openid_url, "TEAMS_TOKEN_URL": teams.token_url, "OPENAI_API_KEY": "sk",
               "OPENAI_BASE_URL": model.base_url, "REDIS_URL": redis.url}  # fmt: skip
        base = {"queue": {"reclaim_after_sec": 1}, "teams": {"tenants": {TENANT: "default"}}}
        web_yaml = write_yaml(tmp_path / "web.yaml", {**base, "queue": {"reclaim_after_sec": 1, "consume": False}})
        worker_env = {**env, "HUB_CONFIG": str(write_yaml(tmp_path / "worker.yaml", base))}
        web = HubProcess({**env, "HUB_CONFIG": str(web_yaml)}, tmp_path).wait_ready()
        first = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
        second = None
        try:
            channel = f"19:{uuid.uuid4().hex}@thread.tacv2"
            bodies = [
                teams.activity("How do I set up the VPN?", conversation=f"a:{uuid.uuid4().hex}", tenant=TENANT),
                teams.activity("How do I set up the VPN?", conversation=channel, kind="channel", mention=True,
                               tenant=TENANT),
            ]  # fmt: skip
            for body in bodies:
                response = httpx.post(f"{web.url}/teams/messages", json=body, headers=teams.auth_header(body))
                assert response.status_code == 200, response.text
            wait(lambda: sum("placeholder" in n or "stream" in n for n in notes(redis, "teams")) == 2,
                 "a stream and a placeholder noted")  # fmt: skip
            first.proc.kill()  # kill -9 with both answers open
            first.proc.wait(5)
            model.set_behavior(None, delay=0)
            second = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
            wait(lambda: queue_empty(redis, "teams.activity"), "every job answered and acknowledged")
        finally:
            for proc in (web, first, second):
                if proc is not None:
                    proc.stop()
            redis.stop()
        conversations = [bodies[0]["conversation"]["id"], f"{channel};messageid={bodies[1]['id']}"]
        for conversation in conversations:
            visible = teams.in_conversation(conversation)
            assert len(visible) == 1, [m.activity for m in visible]  # the dead worker's placeholder, nothing else
            (answer,) = visible
            assert answer.updates == 1 and "[gpt-4o" in answer.text, answer.activity
        assert teams.stream_errors == [] and teams.rate_limited == 0
        (streamed,) = [m for m in teams.all() if m.stream]  # the personal chat's: the dead worker's stream, ended
        assert streamed.conversation == conversations[0] and streamed.ended and len(streamed.stream) == 1
