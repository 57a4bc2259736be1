"""OpenAI clients keep their model names: upstream names as aliases on /v1, and /v1/embeddings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from core.auth import digest
from core.config import load_settings
from core.llm.routing import Router
from tests.conftest import HubServer, make_settings, metric, write_yaml
from tests.fakes.openai_upstream import DEFAULT_EMBEDDING_DIM, FakeOpenAI, fake_embedding

KEY = "ah_openai-names-key-00000000000"
NARROW = "ah_openai-names-narrow-0000000"
ASK_ONLY = "ah_openai-names-ask-only-00000"
SLOW = "ah_openai-names-one-a-minute-0"
PII_TEXT = "客戶王小明的手機是 0912-345-678"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-up") as server:
        yield server


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, sample_index: Path, fake: FakeOpenAI) -> Iterator[HubServer]:
    tmp_path = tmp_path_factory.mktemp("openai-names")
    config = {
        "resilience": {"retries": 0},
        "models": [
            {"name": "embed", "model": "text-embedding-3-small"},  # cloud, on OPENAI_BASE_URL
            {"name": "embed-local", "model": "bge-m3", "base_url": fake.base_url, "local": True},
        ],
        "clients": [
            {"name": "app", "tenant": "hr", "key_sha256": [digest(KEY)]},
            {"name": "narrow", "tenant": "hr", "models": ["large", "hash"], "key_sha256": [digest(NARROW)]},
            {"name": "asker", "tenant": "hr", "scopes": ["ask"], "key_sha256": [digest(ASK_ONLY)]},
            {"name": "slow", "tenant": "cs", "rate_limit": {"max_per_user": 1, "window_sec": 60},
             "key_sha256": [digest(SLOW)]},
        ],
    }  # fmt: skip
    settings = make_settings(
        tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(write_yaml(tmp_path / "hub.yaml", config)),
        OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=fake.base_url, CHAT_MODEL="gpt-4o-mini", LARGE_MODEL="gpt-4o",
        RATE_LIMIT_MAX_PER_USER="1000",
    )  # fmt: skip
    with HubServer(settings) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(fake: FakeOpenAI) -> None:
    fake.reset()


def client(hub: HubServer, key: str = KEY) -> OpenAI:
    return OpenAI(base_url=f"{hub.url}/v1", api_key=key, max_retries=0, timeout=20)


def test_upstream_names_are_aliases_of_their_logical_models() -> None:
    router = Router(load_settings({"OPENAI_API_KEY": "sk", "CHAT_MODEL": "gpt-4o-mini", "LARGE_MODEL": "gpt-4o",
                                   "LOCAL_LLM_BASE_URL": "http://127.0.0.1:9/v1", "LOCAL_LLM_MODEL": "qwen2.5"}))  # fmt: skip
    assert router.resolve("gpt-4o-mini") == "small" and router.resolve("gpt-4o") == "large"
    assert router.resolve("qwen2.5") == "local" and router.resolve("small") == "small"
    assert router.resolve("gpt-5") == "gpt-5", "an unknown name stays unknown (404 later)"
    same = Router(load_settings({"OPENAI_API_KEY": "sk", "CHAT_MODEL": "gpt-4o", "LARGE_MODEL": "gpt-4o"}))
    assert same.resolve("gpt-4o") == "small", "two logical models on one upstream: the first one"


def test_the_sdk_sends_the_upstream_name_and_the_logical_model_answers(hub: HubServer, fake: FakeOpenAI) -> None:
    reply = client(hub).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "How do I reset my MFA?"}]
    )
    assert reply.model == "gpt-4o-mini" and reply.choices[0].message.content
    assert len(fake.calls_for("gpt-4o-mini")) == 1 and not fake.calls_for("gpt-4o")
    ids = [m.id for m in client(hub).models.list()]
    assert "small" in ids and "gpt-4o-mini" not in ids, "/v1/models stays the hub's list"


def test_an_alias_keeps_the_logical_models_rules(hub: HubServer, fake: FakeOpenAI) -> None:
    # Personal data: the local chain answers (here the offline one), never the named cloud model.
    reply = client(hub).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PII_TEXT}])
    assert reply.model == "extractive" and not fake.calls_for("gpt-4o-mini")
    # The client's model list applies to what the alias means.
    with pytest.raises(openai.PermissionDeniedError, match="'small'"):
        client(hub, NARROW).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    ok = client(hub, NARROW).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert ok.model == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client(hub).chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])


def test_embeddings_through_the_hub_with_the_sdk(hub: HubServer, fake: FakeOpenAI) -> None:
    texts = ["How do I claim travel expenses?", "加班規則是什麼?"]
    before = metric(hub.url, "hub_tenant_tokens_total", tenant="hr", model="text-embedding-3-small")
    result = client(hub).embeddings.create(model="text-embedding-3-small", input=texts)  # base64 on the wire
    assert [len(row.embedding) for row in result.data] == [DEFAULT_EMBEDDING_DIM] * 2
    for row, text in zip(result.data, texts, strict=True):
        assert row.embedding == pytest.approx(fake_embedding(text, DEFAULT_EMBEDDING_DIM), abs=1e-6)
    assert result.usage.prompt_tokens > 0
    call = fake.calls_for("text-embedding-3-small")[0]
    assert call.path == "/v1/embeddings" and call.headers["authorization"] == "Bearer sk-up"
    assert metric(hub.url, "hub_tenant_tokens_total", tenant="hr", model="text-embedding-3-small") == (
        before + result.usage.prompt_tokens
    )
    floats = client(hub).embeddings.create(model="embed", input="VPN", encoding_format="float", dimensions=8)
    assert floats.data[0].embedding == pytest.approx(fake_embedding("VPN", 8), abs=1e-6)


def test_personal_data_never_goes_to_a_cloud_embedder(hub: HubServer, fake: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="personal data") as refused:
        client(hub).embeddings.create(model="text-embedding-3-small", input=["fine", PII_TEXT])
    assert refused.value.status_code == 400 and PII_TEXT not in str(refused.value)
    with pytest.raises(openai.BadRequestError, match="personal data"):  # any string of the body counts
        client(hub).embeddings.create(model="embed", input="fine", user="a.chen@example.com")
    assert not fake.calls_for("text-embedding-3-small")
    local = client(hub).embeddings.create(model="bge-m3", input=PII_TEXT)
    assert local.data[0].embedding == pytest.approx(fake_embedding(PII_TEXT, DEFAULT_EMBEDDING_DIM), abs=1e-6)
    offline = client(hub).embeddings.create(model="hash", input=[PII_TEXT, PII_TEXT])
    assert len(offline.data[0].embedding) == 512 and offline.data[0].embedding == offline.data[1].embedding
    assert offline.model == "hash-v1-512"


def test_embeddings_follow_scopes_limits_and_model_lists(hub: HubServer) -> None:
    with pytest.raises(openai.PermissionDeniedError):
        client(hub, ASK_ONLY).embeddings.create(model="hash", input="x")
    with pytest.raises(openai.PermissionDeniedError):
        client(hub, NARROW).embeddings.create(model="text-embedding-3-small", input="x")
    assert client(hub, NARROW).embeddings.create(model="hash", input="x").data
    client(hub, SLOW).embeddings.create(model="hash", input="x")
    with pytest.raises(openai.RateLimitError) as limited:
        client(hub, SLOW).embeddings.create(model="hash", input="x")
    assert limited.value.response.headers["retry-after"]
    with pytest.raises(openai.NotFoundError):
        client(hub).embeddings.create(model="no-such-embedder", input="x")
    with pytest.raises(openai.BadRequestError, match="does not embed"):
        client(hub).embeddings.create(model="extractive", input="x")
    assert client(hub).embeddings.create(model="hash", input=[[1, 2, 3]]).data, "token arrays (tests/test_v1_compat.py)"


def test_bad_embedding_requests_get_clear_json_errors(hub: HubServer) -> None:
    url, headers = f"{hub.url}/v1/embeddings", {"Authorization": f"Bearer {KEY}"}
    cases = [
        (b"not json", 400, "JSON object"),
        (b'{"model": "hash"}', 400, "input"),
        (b'{"model": "hash", "input": ["fine", "  "]}', 400, "non-empty"),
        (b'{"input": "x"}', 400, "model"),
        (b'{"model": "hash", "input": "x", "encoding_format": "int8"}', 400, "encoding_format"),
        (b'["model", "hash"]', 422, "JSON object"),
    ]
    for body, status, words in cases:
        resp = httpx.post(url, content=body, headers={**headers, "Content-Type": "application/json"}, timeout=10)
        assert resp.status_code == status, (body, resp.text)
        error = resp.json()["error"]
        assert words in error["message"] and {"type", "param", "code"} <= set(error), body
    assert httpx.post(url, json={"model": "hash", "input": "x"}, timeout=10).status_code == 401
