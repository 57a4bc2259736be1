"""Routing and resilience: PII to the local model, small/large rules, retries, fallbacks,
breakers, streaming, the OpenAI-compatible API and conversation memory."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from core import logs
from core.config import ConfigError, ResilienceSettings, load_settings
from core.llm.base import ProviderError
from core.llm.prompt import SYSTEM
from core.llm.resilience import Resilience
from core.llm.routing import Router
from tests.conftest import HubServer, make_settings, metric, wait_for_metric, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI

KEY = "ah_router-test-key-000000000"
PII_QUESTION = "我的手機 0912-345-678 收不到 MFA 驗證碼怎麼辦?"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-up") as server:
        yield server


@pytest.fixture(scope="module")
def local() -> Iterator[FakeOpenAI]:
    """The company's own model server (vLLM, Ollama …): a separate host, no key."""
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(fake: FakeOpenAI, local: FakeOpenAI) -> None:
    fake.reset()
    local.reset()


def start(tmp_path: Path, sample_index: Path, fake: FakeOpenAI, config: dict | None = None, **env: str) -> HubServer:  # type: ignore[type-arg]
    base = {"resilience": {"retries": 1, "backoff_base_sec": 0.01, "backoff_max_sec": 0.05}}
    base.update(config or {})
    path = write_yaml(tmp_path / "hub.yaml", base)
    settings = make_settings(
        tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(path), HUB_API_KEYS=f"tester:hr:{KEY}",
        OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=fake.base_url, RATE_LIMIT_MAX_PER_USER="1000", **env,
    )  # fmt: skip
    return HubServer(settings).start()


def ask(hub: HubServer, question: str, **extra: object) -> httpx.Response:
    return httpx.post(f"{hub.url}/ask", json={"question": question, **extra}, headers={"X-API-Key": KEY}, timeout=20)


def cloud_calls(fake: FakeOpenAI) -> int:
    return len(fake.calls_for("gpt-4o-mini")) + len(fake.calls_for("gpt-4o"))


# --- rules ------------------------------------------------------------------------


def test_default_rules_route_by_pii_length_and_reasoning() -> None:
    router = Router(load_settings({"OPENAI_API_KEY": "sk", "LOCAL_LLM_BASE_URL": "http://127.0.0.1:9/v1"}))
    route = lambda q, pii=False: router.route(q, pii=pii, tenant="hr", platform="api")  # noqa: E731
    assert route("How do I reset my password?").name == "default"
    assert [m.name for m in route("How do I reset my password?").models] == ["small", "large"]
    assert route("為什麼加班費要乘以 1.34? 請比較平日和休息日").name == "reasoning"
    assert route("x" * 450).models[0].name == "large"
    pii = route(PII_QUESTION, pii=True)
    assert pii.name == "pii" and [m.name for m in pii.models] == ["local"]


def test_yaml_rules_match_in_order(tmp_path: Path) -> None:
    config = {
        "models": [{"name": "legal", "model": "gpt-4o", "local": False}],
        "routes": [
            {"name": "hr-slack", "when": {"tenants": ["hr"], "platforms": ["slack"]}, "models": ["large"]},
            {"name": "contracts", "when": {"keywords": ["contract", "合約"]}, "models": ["legal", "small"]},
            {"name": "ticket", "when": {"pattern": r"\bINC-\d+\b"}, "models": ["small"]},
            {"name": "short", "when": {"max_chars": 20}, "models": ["small"]},
            {"name": "default", "models": ["large"]},
        ],
    }
    path = write_yaml(tmp_path / "hub.yaml", config)
    router = Router(load_settings({"OPENAI_API_KEY": "sk", "HUB_CONFIG": str(path)}))
    r = lambda q, tenant="cs", platform="api": router.route(q, pii=False, tenant=tenant, platform=platform).name  # noqa: E731
    assert r("a question about our contract with a supplier", tenant="hr", platform="slack") == "hr-slack"
    assert r("please review the contract renewal terms") == "contracts"
    assert r("這份合約的付款條件是什麼呢請幫我看一下") == "contracts"
    assert r("what is the status of INC-4411 for my laptop") == "ticket"
    assert r("vpn?") == "short"
    assert r("How many days of annual leave do I get each year?") == "default"
    pii = router.route("contract for 0912345678", pii=True, tenant="cs", platform="api")
    assert [m.name for m in pii.models] == ["extractive"], "the rule names cloud models only: PII stays offline"


def test_unknown_model_in_a_route_stops_the_start(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "hub.yaml", {"routes": [{"name": "x", "models": ["nope"]}]})
    with pytest.raises(ConfigError, match=r"routes\.x: unknown model"):
        Router(load_settings({"OPENAI_API_KEY": "sk", "HUB_CONFIG": str(path)}))


def test_pii_never_reaches_a_cloud_model(
    tmp_path: Path, sample_index: Path, fake: FakeOpenAI, local: FakeOpenAI
) -> None:
    hub = start(tmp_path, sample_index, fake, LOCAL_LLM_BASE_URL=local.base_url, LOCAL_LLM_MODEL="local-llm")
    try:
        before = metric(hub.url, "hub_pii_routed_total", tenant="hr")
        answered = ask(hub, PII_QUESTION)
        assert answered.status_code == 200 and answered.json()["model"] == "local-llm"
        local.set_behavior("local-llm", mode="error", status=500)
        down = ask(hub, "我的信用卡號 4111 1111 1111 1111 被盜刷了要找誰?")
        assert down.status_code == 503 and int(down.headers["retry-after"]) >= 1
        assert cloud_calls(fake) == 0, "not even as a fallback"
        assert metric(hub.url, "hub_pii_routed_total", tenant="hr") - before == 2
        # A follow-up without PII in a conversation that had it stays local too.
        local.reset()
        ask(hub, PII_QUESTION, conversation_id="c-pii")
        follow = ask(hub, "那要怎麼重新綁定?", conversation_id="c-pii")
        assert follow.status_code == 200 and follow.json()["model"] == "local-llm"
        assert cloud_calls(fake) == 0
        logs.flush()
        log = Path(str(hub.settings.log_file)).read_text(encoding="utf-8")
        assert "0912-345-678" not in log and "4111 1111 1111 1111" not in log
        assert "[PHONE]" in log
    finally:
        hub.stop()


# --- retries, fallbacks, breakers ---------------------------------------------------


def test_backoff_delays_are_bounded_and_honour_retry_after() -> None:
    resilience = Resilience(ResilienceSettings(retries=3, backoff_base_sec=0.1, backoff_max_sec=0.3))
    for retry, ceiling in ((0, 0.1), (1, 0.2), (2, 0.3)):
        for _ in range(50):
            delay = resilience._delay(ProviderError("server", "x"), retry)
            assert delay is not None and 0 <= delay <= ceiling
    assert resilience._delay(ProviderError("rate_limited", "x", retry_after=0.25), 0) == 0.25
    assert resilience._delay(ProviderError("rate_limited", "x", retry_after=9), 0) is None  # try the next model
    assert resilience._delay(ProviderError("client", "x"), 0) is None
    assert resilience._delay(ProviderError("server", "x"), 3) is None  # out of retries


def test_retries_then_success_counts_calls(tmp_path: Path, sample_index: Path, fake: FakeOpenAI) -> None:
    hub = start(tmp_path, sample_index, fake, {"resilience": {"retries": 2, "backoff_base_sec": 0.01}})
    try:
        fake.set_behavior("gpt-4o-mini", mode="error", status=503, times=2)
        response = ask(hub, "How do I claim travel expenses?")
        assert response.status_code == 200 and response.json()["model"] == "gpt-4o-mini"
        assert len(fake.calls_for("gpt-4o-mini")) == 3 and not fake.calls_for("gpt-4o")
        fake.set_behavior("gpt-4o-mini", mode="rate_limit", retry_after=0.02, times=1)
        assert ask(hub, "How do I set up the VPN on a Mac?").json()["model"] == "gpt-4o-mini"
    finally:
        hub.stop()


def test_fallback_order_and_all_down(tmp_path: Path, sample_index: Path, fake: FakeOpenAI) -> None:
    hub = start(tmp_path, sample_index, fake)
    try:
        fake.set_behavior("gpt-4o-mini", mode="error", status=500)
        response = ask(hub, "How do I claim travel expenses?")
        assert response.status_code == 200 and response.json()["model"] == "gpt-4o"
        order = [c.model for c in fake.calls if c.path.endswith("/chat/completions")]
        assert order == ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]  # small (1 retry), then large
        fake.set_behavior(None, mode="error", status=502)
        down = ask(hub, "How do I reset my password?")
        assert down.status_code == 503 and down.json()["error"]["type"] == "unavailable"
        assert "retry-after" in down.headers
    finally:
        hub.stop()


def test_breaker_opens_fails_over_probes_and_closes(tmp_path: Path, sample_index: Path, fake: FakeOpenAI) -> None:
    config = {"resilience": {"retries": 0, "breaker": {"consecutive_failures": 2, "open_sec": 1.5}}}
    hub = start(tmp_path, sample_index, fake, config)
    try:
        fake.set_behavior("gpt-4o-mini", mode="error", status=500)
        questions = ["How do I claim travel expenses?", "How do I reset my password?", "VPN 怎麼設定?",
                     "印表機卡紙怎麼辦?", "特休有幾天?"]  # fmt: skip
        for q in questions[:2]:
            assert ask(hub, q).json()["model"] == "gpt-4o"
        assert metric(hub.url, "hub_breaker_state", model="small") == 2
        ready = httpx.get(f"{hub.url}/readyz").json()
        assert ready["models"]["small"]["state"] == "open"
        small_calls = len(fake.calls_for("gpt-4o-mini"))
        assert ask(hub, questions[2]).json()["model"] == "gpt-4o"
        assert len(fake.calls_for("gpt-4o-mini")) == small_calls, "an open circuit skips the model"
        logs.flush()
        log = Path(str(hub.settings.log_file)).read_text(encoding="utf-8")
        assert log.count('"event":"breaker_open"') == 1
        fake.reset()  # the small model recovers; after open_sec one probe may go to it
        import time

        deadline = time.monotonic() + 10
        models = []
        while time.monotonic() < deadline and (not models or models[-1] != "gpt-4o-mini"):
            models.append(ask(hub, f"{questions[3]} ({len(models)})").json()["model"])
            time.sleep(0.1)
        assert models[-1] == "gpt-4o-mini" and set(models[:-1]) <= {"gpt-4o"}
        assert metric(hub.url, "hub_breaker_state", model="small") == 0
    finally:
        hub.stop()


def test_breaker_opens_on_p95_latency(tmp_path: Path, sample_index: Path, fake: FakeOpenAI) -> None:
    config = {"resilience": {"retries": 0, "breaker": {"min_calls": 3, "p95_latency_sec": 0.15}}}
    hub = start(tmp_path, sample_index, fake, config)
    try:
        fake.set_behavior("gpt-4o-mini", delay=0.2)
        for q in ["How do I claim travel expenses?", "How do I reset my password?", "VPN 怎麼設定?"]:
            assert ask(hub, q).status_code == 200
        assert metric(hub.url, "hub_breaker_state", model="small") == 2
        assert ask(hub, "印表機卡紙怎麼辦?").json()["model"] == "gpt-4o"
    finally:
        hub.stop()


# --- streaming ------------------------------------------------------------------------


def sse_events(response: httpx.Response) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    import json

    events = []
    for block in response.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_ask_streams_deltas_then_the_whole_answer(tmp_path: Path, sample_index: Path, fake: FakeOpenAI) -> None:
    hub = start(tmp_path, sample_index, fake)
    try:
        response = ask(hub, "How do I claim travel expenses?", stream=True)
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "x-ratelimit-remaining" in response.headers
        events = sse_events(response)
        deltas = [data["text"] for kind, data in events if kind == "delta"]
        kind, done = events[-1]
        assert kind == "done" and len(deltas) > 2
        assert "".join(deltas) == done["answer"] and done["sources"] and done["usage"]["completion_tokens"] > 0
        fake.set_behavior(None, mode="cut_stream", cut_after=2)
        cut = sse_events(ask(hub, "How do I reset my password?", stream=True))
        assert cut[-1][0] == "error" and all(kind != "done" for kind, _ in cut)
        fake.set_behavior(None, mode="error", status=500)
        refused = ask(hub, "印表機卡紙怎麼辦?", stream=True)
        assert refused.status_code == 503 and refused.json()["error"]["type"] == "unavailable"
    finally:
        hub.stop()


# --- the OpenAI-compatible API ------------------------------------------------------------


@pytest.fixture
def v1(tmp_path: Path, sample_index: Path, fake: FakeOpenAI, local: FakeOpenAI) -> Iterator[HubServer]:
    from core.auth import digest

    config = {"clients": [{"name": "narrow", "tenant": "cs", "key_sha256": [digest("ah_narrow-key-000000000")],
                           "models": ["small"]}]}  # fmt: skip
    hub = start(tmp_path, sample_index, fake, config, LOCAL_LLM_BASE_URL=local.base_url, LOCAL_LLM_MODEL="local-llm")
    yield hub
    hub.stop()


def client(hub: HubServer, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{hub.url}/v1", max_retries=0, timeout=20)


def test_v1_chat_with_the_official_sdk(v1: HubServer, fake: FakeOpenAI) -> None:
    sdk = client(v1)
    reply = sdk.chat.completions.create(model="auto", messages=[{"role": "user", "content": "Say hello to the team"}])
    assert reply.model == "gpt-4o-mini" and reply.choices[0].message.content.startswith("[gpt-4o-mini]")
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    upstream = fake.calls_for("gpt-4o-mini")[-1]
    assert upstream.headers["authorization"] == "Bearer sk-up", "the hub's provider key, not the client's"
    large = sdk.chat.completions.create(model="large", messages=[{"role": "user", "content": "hi"}])
    assert large.model == "gpt-4o"
    ids = [m.id for m in sdk.models.list().data]
    assert {"auto", "kb", "small", "large", "local"} <= set(ids)


def test_v1_kb_adds_the_knowledge_base(v1: HubServer, fake: FakeOpenAI) -> None:
    reply = client(v1).chat.completions.create(
        model="kb", messages=[{"role": "user", "content": "How do I claim travel expenses?"}]
    )
    assert reply.choices[0].message.content
    sent = fake.calls_for("gpt-4o-mini")[-1].json
    assert sent is not None and sent["messages"][0]["role"] == "system"
    assert "Travel Expense Claims" in sent["messages"][0]["content"]


def test_v1_pii_goes_local_whatever_was_asked(v1: HubServer, fake: FakeOpenAI) -> None:
    reply = client(v1).chat.completions.create(
        model="large", messages=[{"role": "user", "content": "Email mary.chen@lumentech.com.tw about her payslip"}]
    )
    assert reply.model == "local-llm" and cloud_calls(fake) == 0


def test_v1_streaming_with_the_official_sdk(v1: HubServer) -> None:
    sdk = client(v1)
    chunks = list(sdk.chat.completions.create(model="small", stream=True, stream_options={"include_usage": True},
                                               messages=[{"role": "user", "content": "Tell me about the VPN"}]))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[gpt-4o-mini]")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    plain = list(sdk.chat.completions.create(model="small", stream=True, messages=[{"role": "user", "content": "hi"}]))
    assert all(c.usage is None for c in plain), "no usage chunk unless the client asked for it"
    raw = httpx.post(f"{v1.url}/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}"}, timeout=20,
                     json={"model": "small", "stream": True, "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert raw.text.rstrip().endswith("data: [DONE]")


def test_v1_cut_stream_surfaces_as_an_error(v1: HubServer, fake: FakeOpenAI) -> None:
    fake.set_behavior("gpt-4o-mini", mode="cut_stream", cut_after=2)
    with pytest.raises(openai.APIError):
        for _ in client(v1).chat.completions.create(
            model="small", stream=True, messages=[{"role": "user", "content": "hi"}]
        ):
            pass


def test_v1_errors_in_openai_format(v1: HubServer, fake: FakeOpenAI) -> None:
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.AuthenticationError):
        client(v1, "ah_wrong").chat.completions.create(model="auto", messages=messages)
    with pytest.raises(openai.NotFoundError):
        client(v1).chat.completions.create(model="gpt-9", messages=messages)
    with pytest.raises(openai.PermissionDeniedError):
        client(v1, "ah_narrow-key-000000000").chat.completions.create(model="large", messages=messages)
    with pytest.raises(openai.BadRequestError):
        client(v1).chat.completions.create(model="auto", messages=[])
    fake.set_behavior(None, mode="error", status=500)
    with pytest.raises(openai.InternalServerError) as caught:
        client(v1).chat.completions.create(model="auto", messages=messages)
    assert caught.value.status_code == 503
    body = httpx.post(f"{v1.url}/v1/chat/completions", json={"model": "x"}, headers={"X-API-Key": KEY}).json()
    assert set(body["error"]) == {"message", "type", "param", "code"}


# --- conversation memory -------------------------------------------------------------------


def test_a_follow_up_uses_its_conversation(tmp_path: Path, sample_index: Path, fake: FakeOpenAI) -> None:
    hub = start(tmp_path, sample_index, fake)
    try:
        alone = ask(hub, "how long does it take?", top_k=2).json()
        assert not any(s["id"].startswith("travel-expenses.md") for s in alone["sources"])
        ask(hub, "How do I claim travel expenses?", conversation_id="conv-1")
        follow = ask(hub, "how long does it take?", conversation_id="conv-1", top_k=2).json()
        assert any(s["id"].startswith("travel-expenses.md") for s in follow["sources"])
        assert follow["cached"] is False
        sent = fake.calls_for("gpt-4o-mini")[-1].json
        assert sent is not None
        roles = [m["role"] for m in sent["messages"]]
        assert roles == ["system", "user", "assistant", "user"]
        assert sent["messages"][1]["content"] == "How do I claim travel expenses?"
        other = ask(hub, "how long does it take?", conversation_id="conv-2", top_k=2).json()
        assert not any(s["id"].startswith("travel-expenses.md") for s in other["sources"])
    finally:
        hub.stop()


def test_asyncio_is_not_blocked_by_a_stalled_model(tmp_path: Path, sample_index: Path, fake: FakeOpenAI) -> None:
    hub = start(tmp_path, sample_index, fake, {"llm": {"timeout_sec": 1.0}})
    try:
        fake.set_behavior("gpt-4o-mini", mode="stall")

        async def both() -> tuple[int, bool, httpx.Response]:
            async with httpx.AsyncClient(timeout=20) as http:
                slow = asyncio.create_task(
                    http.post(f"{hub.url}/ask", json={"question": "VPN 怎麼設定?"}, headers={"X-API-Key": KEY})
                )
                while not fake.calls_for("gpt-4o-mini"):  # noqa: ASYNC110 - the question is with the stalled model
                    await asyncio.sleep(0.01)
                health = await http.get(f"{hub.url}/healthz")
                pending = not slow.done()  # the hub answered health while the question still waited
                return health.status_code, pending, await slow

        health, pending, slow = asyncio.run(both())
        assert health == 200 and pending
        assert slow.status_code == 200 and slow.json()["model"] == "gpt-4o"  # the small one timed out
    finally:
        hub.stop()


def test_route_and_model_changes_apply_without_a_restart(
    tmp_path: Path, sample_index: Path, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    path = write_yaml(tmp_path / "hub.yaml", {"routes": [{"name": "default", "models": ["small"]}]})
    env = {"HUB_CONFIG": str(path), "INDEX_DIR": str(sample_index), "LOG_FILE": str(tmp_path / "gateway.log"),
           "OPENAI_API_KEY": "sk-up", "OPENAI_BASE_URL": fake.base_url, "RATE_LIMIT_MAX_PER_USER": "1000"}  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with HubServer(make_settings(tmp_path, **env)) as hub:
        assert httpx.post(f"{hub.url}/ask", json={"question": "VPN 怎麼設定?"}).json()["model"] == "gpt-4o-mini"
        config = {"models": [{"name": "helpdesk", "model": "helpdesk-7b"}],
                  "routes": [{"name": "default", "models": ["helpdesk", "small"]}]}  # fmt: skip
        write_yaml(path, config)
        deadline, model = time.monotonic() + 10, ""
        while time.monotonic() < deadline and model != "helpdesk-7b":
            model = httpx.post(f"{hub.url}/ask", json={"question": f"印表機卡紙? {time.monotonic()}"}).json()["model"]
            time.sleep(0.2)
        assert model == "helpdesk-7b"
        refused = metric(hub.url, "hub_config_reloads_total", outcome="refused")
        write_yaml(path, {"routes": [{"name": "default", "models": ["nope"]}]})
        # a route to an unknown model is refused; the running routes stay
        wait_for_metric(hub.url, "hub_config_reloads_total", refused, outcome="refused")
        assert httpx.post(f"{hub.url}/ask", json={"question": "Wi-Fi 密碼?"}).json()["model"] == "helpdesk-7b"


def test_a_saturated_model_gives_http_callers_a_bounded_wait(
    tmp_path: Path, sample_index: Path, fake: FakeOpenAI
) -> None:
    # No question rewrite: one model call per question, so the calls in flight can be counted.
    config = {"models": [{"name": "small", "model": "gpt-4o-mini", "max_concurrency": 1}],
              "routes": [{"name": "default", "models": ["small"]}],
              "resilience": {"max_wait_sec": 0.3, "retries": 0},
              "retrieval": {"rewrite": {"enabled": False}}}  # fmt: skip
    hub = start(tmp_path, sample_index, fake, config)
    try:
        fake.set_behavior("gpt-4o-mini", delay=1.5)

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=20) as http:
                questions = ["VPN 怎麼設定?", "印表機卡紙怎麼辦?", "特休有幾天?", "How do I reset my password?"]
                return list(await asyncio.gather(*(http.post(f"{hub.url}/ask", json={"question": q},
                                                             headers={"X-API-Key": KEY}) for q in questions)))  # fmt: skip

        responses = asyncio.run(burst())
        codes = sorted(r.status_code for r in responses)
        assert codes == [200, 503, 503, 503], codes
        busy = next(r for r in responses if r.status_code == 503)
        assert busy.json()["error"]["type"] == "unavailable" and int(busy.headers["retry-after"]) >= 1
        answers = [c for c in fake.calls_for("gpt-4o-mini") if c.json and c.json["messages"][0]["content"] == SYSTEM]
        assert len(answers) == 1, "never more in flight than the model's bound (a question rewrite may come first)"
    finally:
        hub.stop()
