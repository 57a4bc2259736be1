"""The wall at the Teams door: a customer-facing Azure AD tenant mapped to ``cs`` (collection
``public`` only) never sees the internal memo — not in the answer, not in the prompt — while the
staff tenant (``hr``) does, which shows the test can tell. Both state backends."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.teams_api import FakeTeams
from tests.test_walls import BONUS_Q, SECRET, kb_config, prompts, walled_kb  # noqa: F401 - a fixture

APP_ID, APP_PASSWORD = "walls-teams-app", "walls-teams-secret"
CUSTOMER, STAFF = "aad-customers", "aad-staff"


@pytest.fixture(scope="module", params=["memory", "redis"])
def door(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    walled_kb: tuple[Path, Path],  # noqa: F811 - the fixture imported above
) -> Iterator[tuple[HubServer, FakeTeams, FakeOpenAI]]:
    kb_dir, index_dir = walled_kb
    tmp = tmp_path_factory.mktemp(f"teams-walls-{request.param}")
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    with FakeOpenAI() as upstream, FakeTeams(app_id=APP_ID, app_password=APP_PASSWORD) as teams:
        config = write_yaml(tmp / "hub.yaml", kb_config(teams={"tenants": {CUSTOMER: "cs", STAFF: "hr"}}))
        settings = make_settings(
            tmp, KB_DIR=str(kb_dir), INDEX_DIR=str(index_dir), HUB_CONFIG=str(config), EMBEDDINGS="hash",
            OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=upstream.base_url, RATE_LIMIT_MAX_PER_USER="1000",
            TEAMS_APP_ID=APP_ID, TEAMS_APP_PASSWORD=APP_PASSWORD, TEAMS_OPENID_URL=teams.openid_url,
            TEAMS_TOKEN_URL=teams.token_url, **env,
        )  # fmt: skip
        with HubServer(settings) as hub:
            yield hub, teams, upstream


def ask(door: tuple[HubServer, FakeTeams, FakeOpenAI], tenant: str) -> str:
    hub, teams, _ = door
    conversation = f"a:{uuid.uuid4().hex}"
    body = teams.activity(BONUS_Q, conversation=conversation, tenant=tenant)
    response = httpx.post(f"{hub.url}/teams/messages", json=body, headers=teams.auth_header(body), timeout=10)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + 20
    while not (done := [m for m in teams.in_conversation(conversation) if m.updates]):
        assert time.monotonic() < deadline, "the answer did not arrive"
        time.sleep(0.05)
    return json.dumps([m.activity for m in done], ensure_ascii=False)


def test_a_customer_tenant_never_sees_an_internal_chunk(door: Any) -> None:
    upstream = door[2]
    upstream.reset()
    shown = ask(door, CUSTOMER)
    assert SECRET not in shown and "year-end-bonus" not in shown, "not the memo, not even its name"
    assert SECRET not in prompts(upstream)
    upstream.reset()
    staff = ask(door, STAFF)
    assert SECRET in prompts(upstream) or SECRET in staff, "the staff tenant's prompt holds the memo: the test can tell"
