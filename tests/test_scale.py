"""Scale out and lose nothing: real processes sharing a real Redis, a durable queue, faults.

The LINE adapter is the witness: its fake records every reply and push, so "answered exactly
once" is counted where the customer would see it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, HubProcess, RedisServer, write_yaml
from tests.fakes.line_api import BOT_USER_ID, FakeLineAPI
from tests.fakes.openai_upstream import FakeOpenAI
from tests.test_line_adapter import SECRET, TOKEN, new_user, sign, source, text_event

KEY = "ah_scale-test-key-0000000000"


@pytest.fixture
def line_api() -> Iterator[FakeLineAPI]:
    with FakeLineAPI(access_token=TOKEN) as fake:
        yield fake


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def environment(tmp_path: Path, sample_index: Path, line: FakeLineAPI, redis_url: str, name: str,
                config: dict[str, Any], **extra: str) -> dict[str, str]:  # fmt: skip
    path = write_yaml(tmp_path / f"{name}.yaml", config)
    return {"INDEX_DIR": str(sample_index), "REDIS_URL": redis_url, "HUB_CONFIG": str(path),
            "LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN, "LINE_API_URL": line.url,
            "HUB_API_KEYS": f"tester:cs:{KEY}", "RATE_LIMIT_MAX_PER_USER": "1000", **extra}  # fmt: skip


def web_and_worker_env(tmp_path: Path, sample_index: Path, line: FakeLineAPI, model: FakeOpenAI, redis_url: str,
                       base: dict[str, Any]) -> tuple[HubProcess, dict[str, str]]:  # fmt: skip
    """A started web process that only accepts, and the environment of the workers that answer."""
    web_env = environment(tmp_path, sample_index, line, redis_url, "web", {**base, "queue": {"consume": False}},
                          OPENAI_API_KEY="sk", OPENAI_BASE_URL=model.base_url)  # fmt: skip
    worker_env = environment(tmp_path, sample_index, line, redis_url, "worker", base,
                             OPENAI_API_KEY="sk", OPENAI_BASE_URL=model.base_url)  # fmt: skip
    return HubProcess(web_env, tmp_path).wait_ready(), worker_env


def wait_taken(model: FakeOpenAI, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(model.calls) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(model.calls) == count, "the worker took every event"


def webhook(url: str, events: list[dict[str, Any]], timeout: float = 10) -> httpx.Response:
    body = json.dumps({"destination": BOT_USER_ID, "events": events}, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "X-Line-Signature": sign(body)}
    return httpx.post(f"{url}/line/webhook", content=body, headers=headers, timeout=timeout)


def send_questions(url: str, line: FakeLineAPI, question: str, count: int) -> list[dict[str, Any]]:
    """``count`` one-event webhooks from new users, each accepted (200); the events sent."""
    events = [text_event(line, f"{question} ({n})", source(new_user())) for n in range(count)]
    for event in events:
        assert webhook(url, [event]).status_code == 200
    return events


def answers(line: FakeLineAPI, event: dict[str, Any]) -> list[Any]:
    """Deliveries that reached this event's chat: by its reply token or pushed to its user."""
    user = event["source"]["userId"]
    return [d for d in line.deliveries() if d.to in (event["replyToken"], user)]


def wait_answered(line: FakeLineAPI, events: list[dict[str, Any]], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(answers(line, e) for e in events):
            return
        time.sleep(0.1)
    missing = sum(1 for e in events if not answers(line, e))
    raise AssertionError(f"{missing} of {len(events)} accepted events were never answered")


def wait_drained(redis_url: str, kind: str = "line.event", timeout: float = 30) -> None:
    """Until the queue's stream of ``kind`` is empty: every job acknowledged, none left to redeliver."""
    import redis as redis_sync

    client = redis_sync.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while client.xlen(f"askhub:jobs:{kind}"):
        assert time.monotonic() < deadline, "jobs were left in the queue"
        time.sleep(0.05)


def assert_once(line: FakeLineAPI, events: list[dict[str, Any]]) -> None:
    counts = [len(answers(line, e)) for e in events]
    assert counts == [1] * len(events), counts


def test_a_killed_worker_loses_nothing(tmp_path: Path, sample_index: Path, line_api: FakeLineAPI,
                                       model: FakeOpenAI) -> None:  # fmt: skip
    redis = RedisServer(tmp_path).start()
    model.set_behavior(None, delay=2.0)  # every answer takes a while: the worker dies holding them
    base = {"line": {"reply_within_sec": 1}, "queue": {"reclaim_after_sec": 2}}
    web, worker_env = web_and_worker_env(tmp_path, sample_index, line_api, model, redis.url, base)
    first = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
    second = None
    try:
        events = send_questions(web.url, line_api, "How do I set up the VPN?", 6)
        wait_taken(model, len(events))
        first.proc.kill()  # kill -9 mid-answer
        first.proc.wait(5)
        assert not line_api.deliveries(), "nothing was answered before the crash"
        second = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
        wait_answered(line_api, events)
        wait_drained(redis.url)  # every job acknowledged and gone: no second answer can follow
        assert_once(line_api, events)
    finally:
        for proc in (web, first, second):
            if proc is not None:
                proc.stop()
        redis.stop()


def test_redis_restart_loses_no_accepted_event(tmp_path: Path, sample_index: Path, line_api: FakeLineAPI,
                                               model: FakeOpenAI) -> None:  # fmt: skip
    redis = RedisServer(tmp_path).start(durable=True)
    model.set_behavior(None, delay=3.0)
    env = environment(tmp_path, sample_index, line_api, redis.url, "hub", {"line": {"reply_within_sec": 1}},
                      OPENAI_API_KEY="sk", OPENAI_BASE_URL=model.base_url)  # fmt: skip
    hub = HubProcess(env, tmp_path).wait_ready()
    try:
        accepted = send_questions(hub.url, line_api, "印表機卡紙怎麼辦?", 4)
        redis.stop()
        refused = text_event(line_api, "Wi-Fi 密碼是多少?", source(new_user()))
        down = webhook(hub.url, [refused])
        assert down.status_code == 503, "not accepted, so LINE redelivers it"
        ask = httpx.post(f"{hub.url}/ask", json={"question": "VPN"}, headers={"X-API-Key": KEY}, timeout=10)
        assert ask.status_code == 503 and "shared state" in ask.json()["error"]["message"]  # fail closed
        redis.start(durable=True)
        deadline = time.monotonic() + 20
        while webhook(hub.url, [refused]).status_code != 200:  # LINE's redelivery
            assert time.monotonic() < deadline
            time.sleep(0.2)
        wait_answered(line_api, [*accepted, refused])
        assert_once(line_api, [*accepted, refused])
        ok = httpx.post(f"{hub.url}/ask", json={"question": "VPN"}, headers={"X-API-Key": KEY}, timeout=20)
        assert ok.status_code == 200 and "x-ratelimit-remaining" in ok.headers  # limits work again
    finally:
        hub.stop()
        redis.stop()


def test_500_events_on_two_web_processes(tmp_path: Path, sample_index: Path, line_api: FakeLineAPI,
                                         redis_db: str) -> None:  # fmt: skip
    env = environment(tmp_path, sample_index, line_api, redis_db, "hub", {"queue": {"workers": 4}})
    hubs = [HubProcess(env, tmp_path), HubProcess(env, tmp_path)]
    try:
        for hub in hubs:
            hub.wait_ready()
        events = [text_event(line_api, f"特休有幾天? #{n}", source(new_user())) for n in range(500)]

        requests = []
        for n, event in enumerate(events):
            body = json.dumps({"destination": BOT_USER_ID, "events": [event]}, ensure_ascii=False)
            headers = {"Content-Type": "application/json", "X-Line-Signature": sign(body.encode())}
            requests.append({"url": f"{hubs[n % 2].url}/line/webhook", "body": body, "headers": headers})
        sent = subprocess.run([sys.executable, "-m", "tests.fakes.burst"], input=json.dumps(requests), cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        results = json.loads(sent.stdout)
        assert [status for status, _, _ in results] == [200] * len(events)  # (ack latency: make bench)
        wait_answered(line_api, events, timeout=120)
        assert_once(line_api, events)
    finally:
        for hub in hubs:
            hub.stop()


def test_events_wait_for_the_model_and_are_answered_after_recovery(
    tmp_path: Path, sample_index: Path, line_api: FakeLineAPI, model: FakeOpenAI, redis_db: str
) -> None:
    config = {"line": {"reply_within_sec": 1},
              "resilience": {"retries": 0, "patient_sec": 60, "breaker": {"open_sec": 0.5}}}  # fmt: skip
    env = environment(tmp_path, sample_index, line_api, redis_db, "hub", config,
                      OPENAI_API_KEY="sk", OPENAI_BASE_URL=model.base_url)  # fmt: skip
    hub = HubProcess(env, tmp_path).wait_ready()
    try:
        model.set_behavior(None, mode="error", status=503)
        events = send_questions(hub.url, line_api, "How do I claim travel expenses?", 3)
        deadline = time.monotonic() + 10
        while len(model.calls) < 6 and time.monotonic() < deadline:  # the model is being tried, and failing
            time.sleep(0.05)
        assert not line_api.deliveries(), "no apology while the model may come back"
        model.reset()  # the model is back
        wait_answered(line_api, events, timeout=30)
        assert_once(line_api, events)
        for event in events:
            text = answers(line_api, event)[0].messages[0]["text"]
            assert text.startswith("[gpt-4o"), text  # a real answer, not an apology
    finally:
        hub.stop()


def test_sigterm_hands_back_what_it_cannot_finish(tmp_path: Path, sample_index: Path, line_api: FakeLineAPI,
                                                  model: FakeOpenAI) -> None:  # fmt: skip
    redis = RedisServer(tmp_path).start()
    model.set_behavior(None, delay=3.0)
    base = {"line": {"reply_within_sec": 1}, "queue": {"reclaim_after_sec": 2, "drain_sec": 0.5}}
    web, worker_env = web_and_worker_env(tmp_path, sample_index, line_api, model, redis.url, base)
    first = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
    second = None
    try:
        events = send_questions(web.url, line_api, "How do I book a meeting room?", 3)
        wait_taken(model, len(events))
        first.proc.terminate()  # SIGTERM while every answer is still waiting for the model (3 s)
        first.proc.wait(10)
        assert not line_api.deliveries(), "the drain is bounded: it stopped without waiting for the answers"
        assert "worker stopping" in first.output.read_text()
        second = HubProcess(worker_env, tmp_path, ("worker",)).wait_output("worker ready")
        wait_answered(line_api, events)
        assert_once(line_api, events)
    finally:
        for proc in (web, first, second):
            if proc is not None:
                proc.stop()
        redis.stop()
