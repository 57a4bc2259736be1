"""/v1 for the clients people use (issue #28): upstream errors as they are, token-array and
large embedding batches, body limits that say how to raise them, `user`-scoped limits,
validation of n / max_tokens, models.retrieve, personal data with tools — with the official SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import tiktoken
from openai import OpenAI

from core.auth import digest
from core.llm.tokens import ENCODING
from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.openai_upstream import DEFAULT_EMBEDDING_DIM, FakeOpenAI, fake_embedding

KEY = "ah_v1-compat-key-000000000000000"
SERVICE = "ah_v1-compat-service-0000000000"
SMALL_BODY = "ah_v1-compat-small-body-00000000"
PII_TEXT = "請寄到 wang.xm@example.com"
TOOLS = [{"type": "function", "function": {"name": "lookup_order", "description": "Find an order",
                                           "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}}]  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-up") as server:
        yield server


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, sample_index: Path, fake: FakeOpenAI) -> Iterator[HubServer]:
    tmp_path = tmp_path_factory.mktemp("v1-compat")
    config = {
        "resilience": {"retries": 2, "backoff_base_sec": 0.01, "backoff_max_sec": 0.05,
                       "breaker": {"consecutive_failures": 4, "open_sec": 60}},
        "models": [{"name": "embed", "model": "text-embedding-3-small"}],
        "clients": [
            {"name": "app", "tenant": "hr", "key_sha256": [digest(KEY)]},
            {"name": "bot", "tenant": "cs", "key_sha256": [digest(SERVICE)],
             "rate_limit": {"max_per_user": 10, "window_sec": 60},
             "client_rate_limit": {"max_requests": 25, "window_sec": 60}},
        ],
    }  # fmt: skip
    settings = make_settings(
        tmp_path, INDEX_DIR=str(sample_index), HUB_CONFIG=str(write_yaml(tmp_path / "hub.yaml", config)),
        OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=fake.base_url, CHAT_MODEL="gpt-4o-mini", LARGE_MODEL="gpt-4o",
        RATE_LIMIT_MAX_PER_USER="100000",
    )  # fmt: skip
    with HubServer(settings) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(fake: FakeOpenAI) -> None:
    fake.reset()


def client(hub: HubServer, key: str = KEY, retries: int = 0) -> OpenAI:
    return OpenAI(base_url=f"{hub.url}/v1", api_key=key, max_retries=retries, timeout=30)


def ask(text: str = "How do I reset my MFA?") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# --- upstream errors as they are -----------------------------------------------------------


def test_an_upstream_400_reaches_the_sdk_as_it_is_after_one_upstream_call(hub: HubServer, fake: FakeOpenAI) -> None:
    message = "This model's maximum context length is 128000 tokens. However, your messages resulted in 130001 tokens."
    fake.set_behavior("gpt-4o-mini", mode="error", status=400, message=message, code="context_length_exceeded",
                      param="messages")  # fmt: skip
    with pytest.raises(openai.BadRequestError) as refused:
        client(hub, retries=2).chat.completions.create(model="small", messages=ask())  # the SDK's own retries on
    assert refused.value.status_code == 400
    assert refused.value.code == "context_length_exceeded" and refused.value.param == "messages"
    assert refused.value.type == "invalid_request_error", "the upstream's own type"
    assert message in str(refused.value)
    assert len(fake.calls_for("gpt-4o-mini")) == 1, "no retry"
    assert not fake.calls_for("gpt-4o"), "no fallback"
    assert hub.hub.models.breaker_states()["small"] == {"state": "closed"}


@pytest.mark.parametrize("status", [404, 413, 422])
def test_other_upstream_client_errors_keep_their_status(hub: HubServer, fake: FakeOpenAI, status: int) -> None:
    fake.set_behavior("gpt-4o-mini", mode="error", status=status, message=f"upstream says {status}", code="bad")
    for _ in range(5):  # more than consecutive_failures: the breaker must not count them
        resp = httpx.post(f"{hub.url}/v1/chat/completions", json={"model": "small", "messages": ask()},
                          headers={"Authorization": f"Bearer {KEY}"}, timeout=30)  # fmt: skip
        assert resp.status_code == status, resp.text
        assert resp.json()["error"]["message"] == f"upstream says {status}" and resp.json()["error"]["code"] == "bad"
    assert len(fake.calls_for("gpt-4o-mini")) == 5
    assert hub.hub.models.breaker_states()["small"] == {"state": "closed"}


def test_an_upstream_400_on_a_stream_is_a_400_too(hub: HubServer, fake: FakeOpenAI) -> None:
    fake.set_behavior("gpt-4o-mini", mode="error", status=400, message="Invalid schema for function 'x'")
    with pytest.raises(openai.BadRequestError, match="Invalid schema for function 'x'"):
        list(client(hub).chat.completions.create(model="small", messages=ask(), stream=True))
    assert len(fake.calls_for("gpt-4o-mini")) == 1


def test_an_upstream_429_that_outlasts_the_hubs_retries_is_a_429(hub: HubServer, fake: FakeOpenAI) -> None:
    fake.set_behavior("gpt-4o-mini", mode="rate_limit", retry_after=0.01)
    with pytest.raises(openai.RateLimitError) as limited:
        client(hub).chat.completions.create(model="small", messages=ask())
    assert limited.value.response.headers["retry-after"]
    assert len(fake.calls_for("gpt-4o-mini")) == 3, "the hub's own attempts first (1 + 2 retries)"


def test_an_upstream_400_on_embeddings_is_relayed(hub: HubServer, fake: FakeOpenAI) -> None:
    fake.set_behavior("text-embedding-3-small", mode="error", status=400, message="dimensions too large")
    with pytest.raises(openai.BadRequestError, match="dimensions too large"):
        client(hub).embeddings.create(model="embed", input="VPN")
    assert len(fake.calls_for("text-embedding-3-small")) == 1


# --- /v1 validation, models.retrieve, unserved routes ---------------------------------------


@pytest.mark.parametrize(
    ("extra", "status", "words"),
    [
        ({"n": 128}, 400, "n: "),
        ({"n": 2}, 400, "n: "),
        ({"n": "2"}, 422, "n: "),
        ({"max_tokens": -5}, 400, "max_tokens"),
        ({"max_tokens": 0}, 400, "max_tokens"),
        ({"max_completion_tokens": -1}, 400, "max_completion_tokens"),
        ({"max_tokens": 1.5}, 422, "max_tokens"),
        ({"max_tokens": True}, 422, "max_tokens"),
    ],
)
def test_n_and_token_caps_are_checked_never_sent_upstream(
    hub: HubServer, fake: FakeOpenAI, extra: dict[str, object], status: int, words: str
) -> None:
    resp = httpx.post(f"{hub.url}/v1/chat/completions", json={"model": "small", "messages": ask(), **extra},
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=30)  # fmt: skip
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["message"].startswith(words)
    assert not fake.calls, "never passed upstream"


def test_n_1_and_a_positive_max_tokens_pass(hub: HubServer, fake: FakeOpenAI) -> None:
    reply = client(hub).chat.completions.create(model="small", messages=ask(), n=1, max_tokens=50)
    assert reply.choices[0].message.content and fake.calls_for("gpt-4o-mini")[0].json["max_tokens"] == 50  # type: ignore[index]


def test_models_retrieve(hub: HubServer) -> None:
    assert client(hub).models.retrieve("small").id == "small"
    assert client(hub).models.retrieve("kb").id == "kb"
    assert client(hub).models.retrieve("gpt-4o-mini").id == "gpt-4o-mini", "an upstream name is a logical model"
    with pytest.raises(openai.NotFoundError, match="GET /v1/models"):
        client(hub).models.retrieve("gpt-5")


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/moderations"])
def test_unserved_openai_routes_say_what_is_served(hub: HubServer, path: str) -> None:
    resp = httpx.post(f"{hub.url}{path}", json={"model": "small", "input": "x", "prompt": "x"},
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=10)  # fmt: skip
    assert resp.status_code == 404
    message = resp.json()["error"]["message"]
    assert path in message and "/v1/chat/completions" in message and "/v1/embeddings" in message
    assert "/v1/moderations" not in message.split("it serves")[1] and "POST /v1/completions" not in message
    with pytest.raises(openai.NotFoundError):
        client(hub).moderations.create(input="hello")


# --- embeddings as OpenAI takes them --------------------------------------------------------


def test_token_arrays_are_decoded_and_embedded(hub: HubServer, fake: FakeOpenAI) -> None:
    table = tiktoken.get_encoding(ENCODING)
    texts = ["How do I claim travel expenses?", "加班規則是什麼?"]
    arrays = [table.encode(t) for t in texts]
    result = client(hub).embeddings.create(model="embed", input=arrays)
    sent = fake.calls_for("text-embedding-3-small")[0].json
    assert sent is not None and sent["input"] == texts, "the upstream gets the text"
    for row, text in zip(result.data, texts, strict=True):
        assert row.embedding == pytest.approx(fake_embedding(text, DEFAULT_EMBEDDING_DIM), abs=1e-6)
    one = client(hub).embeddings.create(model="hash", input=arrays[0])  # a single token array, embedded locally
    same = client(hub).embeddings.create(model="hash", input=texts[0])
    assert one.data[0].embedding == same.data[0].embedding


def test_token_arrays_holding_personal_data_never_reach_a_cloud_embedder(hub: HubServer, fake: FakeOpenAI) -> None:
    arrays = [tiktoken.get_encoding(ENCODING).encode(PII_TEXT)]
    with pytest.raises(openai.BadRequestError, match="personal data"):
        client(hub).embeddings.create(model="embed", input=arrays)
    assert not fake.calls
    assert client(hub).embeddings.create(model="hash", input=arrays).data


def test_bad_token_arrays_are_clear_errors(hub: HubServer) -> None:
    url, headers = f"{hub.url}/v1/embeddings", {"Authorization": f"Bearer {KEY}"}
    for body, status, words in [
        ({"model": "hash", "input": [[1, 2], "mixed"]}, 422, "token ids"),
        ({"model": "hash", "input": [[]]}, 422, "token ids"),
        ({"model": "hash", "input": [[10**9]]}, 400, "token ids are 0 to"),
        ({"model": "hash", "input": [[-1]]}, 400, "token ids are 0 to"),
        ({"model": "hash", "input": ["x"] * 2049}, 400, "at most 2048"),
    ]:
        resp = httpx.post(url, json=body, headers=headers, timeout=30)
        assert resp.status_code == status, (body["input"][:2], resp.text)  # type: ignore[index]
        assert words in resp.json()["error"]["message"]


def test_a_thousand_one_kilobyte_texts_embed_in_one_request(hub: HubServer, fake: FakeOpenAI) -> None:
    texts = [f"chunk {i}: " + "The travel policy covers trains, planes and hotels. " * 20 for i in range(1000)]
    assert len(texts[0]) > 1000
    result = client(hub).embeddings.create(model="embed", input=texts)
    assert len(result.data) == 1000 and len(fake.calls_for("text-embedding-3-small")) == 1


# --- body limits that say how to raise them -------------------------------------------------


def test_a_70000_character_message_is_accepted_on_v1(hub: HubServer, fake: FakeOpenAI) -> None:
    reply = client(hub).chat.completions.create(model="small", messages=ask("Summarise: " + "a" * 70_000))
    assert reply.choices[0].message.content and fake.calls_for("gpt-4o-mini")


def test_a_body_over_the_chat_limit_is_a_413_naming_the_setting(hub: HubServer) -> None:
    with pytest.raises(openai.APIStatusError) as refused:
        client(hub).chat.completions.create(model="small", messages=ask("a" * (1024 * 1024 + 10)))
    assert refused.value.status_code == 413
    message = str(refused.value)
    assert "requests.chat_max_body_bytes" in message and "/v1/chat/completions" in message
    resp = httpx.post(f"{hub.url}/ask", content=b'{"question": "' + b"a" * 70_000 + b'"}',
                      headers={"Authorization": f"Bearer {KEY}"}, timeout=10)  # fmt: skip
    assert resp.status_code == 413 and "requests.max_body_bytes" in resp.json()["error"]["message"]


def test_embeddings_take_bodies_up_to_8_mb_and_name_their_setting_beyond(hub: HubServer) -> None:
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    texts = ["x" * 3000] * 2048  # ~6 MB: 2,048 inputs, as OpenAI takes them
    ok = httpx.post(f"{hub.url}/v1/embeddings", json={"model": "hash", "input": texts}, headers=headers, timeout=60)
    assert ok.status_code == 200 and len(ok.json()["data"]) == 2048
    over = b'{"model": "hash", "input": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    refused = httpx.post(f"{hub.url}/v1/embeddings", content=over, headers=headers, timeout=60)
    assert refused.status_code == 413 and "requests.embeddings_max_body_bytes" in refused.json()["error"]["message"]


# --- limits for services --------------------------------------------------------------------


def test_user_names_the_end_user_for_the_per_user_limit(hub: HubServer) -> None:
    bot = client(hub, SERVICE)
    for _ in range(10):
        bot.embeddings.create(model="hash", input="x", user="alice")
    with pytest.raises(openai.RateLimitError) as limited:
        bot.embeddings.create(model="hash", input="x", user="alice")
    assert limited.value.response.headers["retry-after"]
    assert bot.chat.completions.create(model="small", messages=ask(), user="bob").choices, "another user passes"
    # The client-wide limit (25 a minute) counts every admitted request, every user together:
    # 11 so far (the refused one not), 14 more, then the 26th is refused whoever it names.
    for n in range(14):
        bot.embeddings.create(model="hash", input="x", user=f"user-{n}")
    with pytest.raises(openai.RateLimitError, match="this client"):
        bot.embeddings.create(model="hash", input="x", user="carol")


# --- personal data and tools ----------------------------------------------------------------


@pytest.mark.parametrize("tool_choice", [None, "auto", "required"])
def test_personal_data_with_tools_and_no_local_model_is_a_clear_400(
    hub: HubServer, fake: FakeOpenAI, tool_choice: str | None
) -> None:
    extra = {"tool_choice": tool_choice} if tool_choice else {}
    with pytest.raises(openai.BadRequestError, match="personal data") as refused:
        client(hub).chat.completions.create(model="small", messages=ask(PII_TEXT), tools=TOOLS, **extra)  # type: ignore[arg-type]
    assert "LOCAL_LLM_BASE_URL" in str(refused.value) and "wang.xm" not in str(refused.value)
    assert not fake.calls


def test_personal_data_without_tools_still_gets_the_local_answer(hub: HubServer, fake: FakeOpenAI) -> None:
    reply = client(hub).chat.completions.create(model="small", messages=ask(PII_TEXT), tools=TOOLS, tool_choice="none")
    assert reply.model == "extractive" and not fake.calls
