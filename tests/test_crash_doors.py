"""Exactly one visible answer on WhatsApp and Telegram after a worker is killed (-9) mid-answer.

The rig of test_crash_answers: real processes on a private Redis, a web process that only accepts,
a worker killed while its answers are open, a second worker that reclaims the jobs. The fakes
record what each customer sees: one answer each, never two, never none.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import HubProcess, RedisServer
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.whatsapp_api import FakeWhatsApp
from tests.test_crash_answers import notes, processes, queue_empty, wait
from tests.test_telegram_adapter import SECRET_TOKEN, new_chat, telegram_env, text_update
from tests.test_whatsapp_adapter import message, new_user, payload, sign, whatsapp_env


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def post_whatsapp(url: str, data: dict[str, object]) -> None:
    body = json.dumps(data).encode()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)}
    assert httpx.post(f"{url}/whatsapp/webhook", content=body, headers=headers, timeout=10).status_code == 200


@pytest.mark.parametrize("cut", ["while the model thinks", "while the answer is being sent"])
def test_a_whatsapp_answer_cut_by_a_crash_is_sent_once(
    tmp_path: Path, sample_index: Path, model: FakeOpenAI, cut: str
) -> None:
    """Killed while waiting for the model: the reclaiming worker answers. Killed while WhatsApp
    took the answer but had not said so: the reclaiming worker does not send it again."""
    redis = RedisServer(tmp_path).start()
    if cut == "while the model thinks":
        model.set_behavior(None, delay=60)
    with FakeWhatsApp() as wa:
        if cut != "while the model thinks":
            wa.hold(3)
        env = {"INDEX_DIR": str(sample_index), "OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": model.base_url,
               **whatsapp_env(wa)}  # fmt: skip
        web, worker_env = processes(tmp_path, redis, env)
        first = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
        second = None
        users = [new_user() for _ in range(3)]
        try:
            for user in users:
                post_whatsapp(web.url, payload(message(user, "How do I set up the VPN?")))
            if cut == "while the model thinks":
                wait(lambda: len([n for n in notes(redis, "whatsapp") if n.get("asking")]) == 3, "three asking")
                assert not wa.sent
            else:
                wait(lambda: len(wa.sent) == 3, "three answers taken by WhatsApp, none acknowledged")
            first.proc.kill()  # kill -9
            first.proc.wait(5)
            model.set_behavior(None, delay=0)
            second = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
            wait(lambda: queue_empty(redis, "whatsapp.message"), "every job reclaimed, finished and acknowledged")
        finally:
            for proc in (web, first, second):
                if proc is not None:
                    proc.stop()
            redis.stop()
        assert [len(wa.to(user)) for user in users] == [1, 1, 1]
        assert all("[gpt-4o" in wa.texts_to(user)[0] for user in users)  # the model's answer, complete


def test_a_telegram_answer_cut_by_a_crash_is_finished_in_its_message_not_sent_twice(
    tmp_path: Path, sample_index: Path, model: FakeOpenAI
) -> None:
    """Killed with "💭 …" shown in three chats while the model thinks: the reclaiming worker
    edits each of those messages into the answer and sends no second one."""
    redis = RedisServer(tmp_path).start()
    model.set_behavior(None, delay=60)
    with FakeTelegram() as tg:
        env = {"INDEX_DIR": str(sample_index), "OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": model.base_url,
               **telegram_env(tg)}  # fmt: skip
        web, worker_env = processes(tmp_path, redis, env)
        first = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
        second = None
        chats = [new_chat() for _ in range(3)]
        try:
            for chat in chats:
                response = httpx.post(f"{web.url}/telegram/webhook", json=text_update(chat, "How do I set up the VPN?"),
                                      headers={"X-Telegram-Bot-Api-Secret-Token": SECRET_TOKEN}, timeout=10)  # fmt: skip
                assert response.status_code == 200
            wait(lambda: len([n for n in notes(redis, "telegram") if n.get("progress")]) == 3, "three placeholders")
            first.proc.kill()  # kill -9
            first.proc.wait(5)
            model.set_behavior(None, delay=0)
            second = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
            wait(lambda: queue_empty(redis, "telegram.update"), "every job reclaimed, finished and acknowledged")
        finally:
            for proc in (web, first, second):
                if proc is not None:
                    proc.stop()
            redis.stop()
        for chat in chats:
            (answer,) = tg.in_chat(chat)
            assert "[gpt-4o" in answer["text"] and answer["reply_markup"], answer
