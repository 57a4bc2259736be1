"""Per-user limits and tenant quotas: exact, with honest Retry-After, in memory and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core import logs
from core.errors import RateLimited
from tests.conftest import HubProcess, HubServer, RedisServer, make_settings, metric, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI

KEY_A, KEY_B, KEY_CS = (
    "ah_user-a-key-000000000000",
    "ah_user-b-key-000000000000",
    "ah_cs-key-0000000000000000",
)
KEYS = f"alice:hr:{KEY_A},bob:hr:{KEY_B},cs-bot:cs:{KEY_CS}"


def hub_with(tmp_path: Path, sample_index: Path, config: dict | None = None, **env: str) -> HubServer:  # type: ignore[type-arg]
    extra = {}
    if config is not None:
        path = write_yaml(tmp_path / "hub.yaml", config)
        extra["HUB_CONFIG"] = str(path)
    settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_API_KEYS=KEYS, **extra, **env)
    return HubServer(settings).start()


def ask(hub: HubServer | HubProcess, key: str, question: str = "印表機卡紙怎麼辦") -> httpx.Response:
    return httpx.post(f"{hub.url}/ask", json={"question": question}, headers={"X-API-Key": key}, timeout=10)


@pytest.fixture
def limited(tmp_path: Path, sample_index: Path) -> Iterator[HubServer]:
    hub = hub_with(tmp_path, sample_index, RATE_LIMIT_MAX_PER_USER="3", RATE_LIMIT_WINDOW_SEC="2")
    yield hub
    hub.stop()


def test_user_window_refuses_with_the_real_retry_after(limited: HubServer) -> None:
    responses = [ask(limited, KEY_A) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    for n, r in enumerate(responses[:3]):
        assert r.headers["x-ratelimit-limit"] == "3"
        assert r.headers["x-ratelimit-remaining"] == str(2 - n)
    refused = responses[3]
    assert refused.json()["error"]["type"] == "rate_limited"
    retry = int(refused.headers["retry-after"])
    assert 1 <= retry <= 2  # from the 2-second window, not a fixed number
    assert refused.headers["x-ratelimit-reset"] == str(retry)
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert ask(limited, KEY_B).status_code == 200, "another user has their own window"


def test_the_window_frees_up(limited: HubServer) -> None:
    for _ in range(3):
        ask(limited, KEY_A)
    refused = ask(limited, KEY_A)
    assert refused.status_code == 429
    import time

    time.sleep(float(refused.headers["retry-after"]) + 0.1)
    assert ask(limited, KEY_A).status_code == 200


def test_rejections_are_audited_without_the_question(limited: HubServer) -> None:
    before = metric(limited.url, "hub_rate_limit_rejections_total", tenant="hr", limit="user_window")
    for _ in range(4):
        ask(limited, KEY_A, "我的信用卡被盜刷了怎麼辦 secret-question-text")
    logs.flush()
    log = Path(str(limited.settings.log_file)).read_text(encoding="utf-8")
    line = next(x for x in log.splitlines() if '"event":"rate_limited"' in x)
    for field in (
        '"tenant":"hr"',
        '"client":"alice"',
        '"route":"/ask"',
        '"limit":"user_window"',
        '"user_hash":',
    ):
        assert field in line
    assert "secret-question-text" not in line and "信用卡" not in line
    after = metric(limited.url, "hub_rate_limit_rejections_total", tenant="hr", limit="user_window")
    assert after - before == 1


def test_tenant_daily_quota_and_burst(tmp_path: Path, sample_index: Path) -> None:
    config = {
        "tenants": {"hr": {"requests_per_day": 2}, "cs": {"burst": {"capacity": 2, "refill_per_sec": 0.5}}},
    }
    hub = hub_with(tmp_path, sample_index, config)
    try:
        assert [ask(hub, KEY_A).status_code, ask(hub, KEY_B).status_code] == [200, 200]
        over = ask(hub, KEY_A)
        assert over.status_code == 429
        assert "daily quota" in over.json()["error"]["message"]
        assert int(over.headers["retry-after"]) > 0  # until the quota day ends
        burst = [ask(hub, KEY_CS) for _ in range(3)]
        assert [r.status_code for r in burst] == [200, 200, 429]
        assert 1 <= int(burst[2].headers["retry-after"]) <= 2  # one token per 2 s
    finally:
        hub.stop()


def test_client_override_beats_the_default(tmp_path: Path, sample_index: Path) -> None:
    from core.auth import digest

    config = {"clients": [{"name": "batch", "tenant": "it", "key_sha256": [digest("ah_batch-key-0000000000")],
                           "rate_limit": {"max_per_user": 1, "window_sec": 60}}]}  # fmt: skip
    hub = hub_with(tmp_path, sample_index, config)
    try:
        assert [ask(hub, "ah_batch-key-0000000000").status_code for _ in range(2)] == [200, 429]
        assert ask(hub, KEY_A).headers["x-ratelimit-limit"] == "10"
    finally:
        hub.stop()


def test_token_budget(tmp_path: Path, sample_index: Path) -> None:
    with FakeOpenAI() as fake:
        hub = hub_with(
            tmp_path, sample_index, {"tenants": {"hr": {"tokens_per_day": 50}}},
            OPENAI_API_KEY="sk-x", OPENAI_BASE_URL=fake.base_url,
        )  # fmt: skip
        try:
            first = ask(hub, KEY_A, "How do I claim travel expenses?")
            assert first.status_code == 200 and first.json()["usage"]["prompt_tokens"] > 50
            over = ask(hub, KEY_B, "How do I set up the VPN?")
            assert over.status_code == 429
            assert "token budget" in over.json()["error"]["message"]
        finally:
            hub.stop()


def test_limits_are_exact_across_two_processes(tmp_path: Path, sample_index: Path, redis_db: str) -> None:
    env = {"INDEX_DIR": str(sample_index), "HUB_API_KEYS": KEYS, "REDIS_URL": redis_db,
           "RATE_LIMIT_MAX_PER_USER": "50", "RATE_LIMIT_WINDOW_SEC": "60"}  # fmt: skip
    hubs = [HubProcess(env, tmp_path), HubProcess(env, tmp_path)]
    try:
        for hub in hubs:
            hub.wait_ready()

        async def burst() -> list[int]:
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(timeout=30, limits=limits) as client:
                tasks = [
                    client.post(
                        f"{hubs[i % 2].url}/ask",
                        json={"question": "VPN 怎麼設定"},
                        headers={"X-API-Key": KEY_A},
                    )
                    for i in range(200)
                ]
                return [r.status_code for r in await asyncio.gather(*tasks)]

        codes = asyncio.run(burst())
        assert codes.count(200) == 50
        assert codes.count(429) == 150
    finally:
        for hub in hubs:
            hub.stop()


@pytest.mark.parametrize("policy", ["closed", "open"])
def test_redis_down_applies_the_policy_then_recovers(tmp_path: Path, sample_index: Path, policy: str) -> None:
    from core.auth import digest

    redis = RedisServer(tmp_path).start()
    config = {"limits": {"backend_down": policy},
              "clients": [{"name": "pager", "tenant": "it", "key_sha256": [digest("ah_pager-key-000000000")],
                           "exempt_when_backend_down": True}]}  # fmt: skip
    hub = hub_with(tmp_path, sample_index, config, REDIS_URL=redis.url, RATE_LIMIT_MAX_PER_USER="100")
    try:
        assert ask(hub, KEY_A).status_code == 200
        redis.stop()
        down = ask(hub, KEY_A)
        exempt = ask(hub, "ah_pager-key-000000000")
        ready = httpx.get(f"{hub.url}/readyz")
        assert ready.status_code == 503 and any("redis" in m for m in ready.json()["missing"])
        assert metric(hub.url, "hub_backend_up") == 0
        if policy == "closed":
            assert down.status_code == 503
            assert "shared state" in down.json()["error"]["message"]
            assert int(down.headers["retry-after"]) >= 1
        else:
            assert down.status_code == 200 and "x-ratelimit-remaining" not in down.headers
        assert exempt.status_code == 200
        redis.start()
        for _ in range(50):  # the client reconnects on its own
            recovered = ask(hub, KEY_A)
            if recovered.status_code == 200 and "x-ratelimit-remaining" in recovered.headers:
                break
        assert recovered.status_code == 200 and recovered.headers["x-ratelimit-remaining"] == "99"
        assert httpx.get(f"{hub.url}/readyz").status_code == 200
    finally:
        hub.stop()
        redis.stop()


def test_retry_after_is_rounded_up(limited: HubServer) -> None:
    for _ in range(3):
        ask(limited, KEY_B)
    refused = ask(limited, KEY_B)
    value = refused.headers["retry-after"]
    assert value.isdigit() and 1 <= int(value) <= 2  # whole seconds, from the 2-second window
    # Never rounded down (a client that waits that long is admitted), and never 0:
    assert RateLimited("x", retry_after=1.01).headers["Retry-After"] == "2"
    assert RateLimited("x", retry_after=0.2).headers["Retry-After"] == "1"
