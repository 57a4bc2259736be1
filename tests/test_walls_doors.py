"""The wall at the WhatsApp and Telegram doors: each door's tenant reads only its collections.

Both doors are mapped to the customer tenant ``cs`` (collection ``public`` only) of the two-
collection knowledge base of test_walls. A customer asking for the internal bonus memo never sees
it — not in the answer, not in the model's prompt — while an HR key on /ask of the same hub does,
which shows the test can tell.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.whatsapp_api import FakeWhatsApp
from tests.test_telegram_adapter import new_chat, telegram_env, text_update
from tests.test_telegram_adapter import post as telegram_post
from tests.test_walls import BONUS_Q, HR_KEY, SECRET, ask, kb_config, prompts, walled_kb  # noqa: F401 - a fixture
from tests.test_walls_platforms import wait_until
from tests.test_whatsapp_adapter import message, new_user, payload, post, whatsapp_env


@dataclass
class Doors:
    hub: HubServer
    upstream: FakeOpenAI
    wa: FakeWhatsApp
    tg: FakeTelegram


@pytest.fixture(scope="module", params=["memory", "redis"])
def doors(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    walled_kb: tuple[Path, Path],  # noqa: F811 - the fixture imported above
) -> Iterator[Doors]:
    kb_dir, index_dir = walled_kb
    tmp = tmp_path_factory.mktemp(f"walls-doors-{request.param}")
    env = {}
    if request.param == "redis":
        import redis as redis_sync

        from tests.conftest import redis_url

        env["REDIS_URL"] = redis_url()
        redis_sync.Redis.from_url(env["REDIS_URL"]).flushdb()
    with pytest.MonkeyPatch.context() as mp, FakeOpenAI() as upstream, FakeWhatsApp() as wa, FakeTelegram() as tg:
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        config = write_yaml(tmp / "hub.yaml", kb_config(whatsapp={"tenant": "cs"}, telegram={"tenant": "cs"}))
        settings = make_settings(
            tmp, KB_DIR=str(kb_dir), INDEX_DIR=str(index_dir), HUB_CONFIG=str(config), EMBEDDINGS="hash",
            OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=upstream.base_url, RATE_LIMIT_MAX_PER_USER="1000",
            **whatsapp_env(wa), **telegram_env(tg), **env,
        )  # fmt: skip
        with HubServer(settings) as hub:
            ask(hub, HR_KEY, BONUS_Q)
            assert SECRET in prompts(upstream), "the employee's prompt holds the memo: the fixture can tell"
            yield Doors(hub, upstream, wa, tg)


def test_a_whatsapp_customer_never_sees_an_internal_chunk(doors: Doors) -> None:
    doors.upstream.reset()
    doors.upstream.reset()
    user = new_user()
    assert post(doors.hub, payload(message(user, BONUS_Q))).status_code == 200
    (sent,) = wait_until(lambda: doors.wa.to(user))
    shown = json.dumps(sent.body, ensure_ascii=False)
    assert SECRET not in shown and "year-end-bonus" not in shown, "not even the document's name"
    assert SECRET not in prompts(doors.upstream)


def test_a_telegram_user_never_sees_an_internal_chunk(doors: Doors) -> None:
    doors.upstream.reset()
    doors.upstream.reset()
    chat = new_chat()
    assert telegram_post(doors.hub, text_update(chat, BONUS_Q)).status_code == 200
    doors.hub.run(doors.hub.hub.jobs.idle(), timeout=30)
    (shown,) = doors.tg.in_chat(chat)
    assert shown["reply_markup"], "the final answer, not the placeholder"
    text = json.dumps(shown, ensure_ascii=False)
    assert SECRET not in text and "year-end-bonus" not in text, "not even the document's name"
    assert SECRET not in prompts(doors.upstream)
