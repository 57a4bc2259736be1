"""Personal data never leaves for a cloud embeddings API (issue #26, item 2): with
``EMBEDDINGS=openai:<model>``, a question holding personal data — or its rewrite, or the
conversation's earlier turn — is searched without the dense side; nothing of it is POSTed to the
provider's /v1/embeddings. The same for /v1's ``kb`` model. A question without any is embedded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HubServer, make_settings, write_yaml
from tests.fakes.openai_upstream import FakeOpenAI

KEY = "ah_pii-embeddings-key-00000000"
PHONE, TW_ID = "0912-345-678", "A123456789"
RAW = ("0912", "345", "678", TW_ID, "A12345")  # no piece of either may reach the provider


@pytest.fixture(scope="module")
def cloud() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def local() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, cloud: FakeOpenAI, local: FakeOpenAI) -> Iterator[HubServer]:
    tmp = tmp_path_factory.mktemp("pii-embeddings")
    config = write_yaml(tmp / "hub.yaml", {"resilience": {"retries": 0}})
    settings = make_settings(
        tmp, HUB_CONFIG=str(config), HUB_API_KEYS=f"svc:hr:{KEY}", EMBEDDINGS="openai:text-embedding-3-small",
        OPENAI_API_KEY="sk-up", OPENAI_BASE_URL=cloud.base_url, LOCAL_LLM_BASE_URL=local.base_url,
        LOCAL_LLM_MODEL="local-llm", RATE_LIMIT_MAX_PER_USER="10000",
    )  # fmt: skip
    with HubServer(settings) as server:  # the index is built on first start, through the cloud embedder
        yield server


@pytest.fixture(autouse=True)
def _reset(cloud: FakeOpenAI, local: FakeOpenAI) -> None:
    cloud.reset()
    local.reset()


def embedded(cloud: FakeOpenAI) -> list[str]:
    """Every text POSTed to the cloud /v1/embeddings since the last reset."""
    texts: list[str] = []
    for call in cloud.calls:
        if call.path.rstrip("/") == "/v1/embeddings" and call.json:
            value = call.json.get("input")
            texts += [value] if isinstance(value, str) else [str(v) for v in value or []]
    return texts


def ask(hub: HubServer, question: str, **extra: Any) -> dict[str, Any]:
    response = httpx.post(f"{hub.url}/ask", json={"question": question, **extra}, headers={"X-API-Key": KEY},
                          timeout=30)  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def assert_nothing_raw(texts: list[str]) -> None:
    for text in texts:
        for raw in RAW:
            assert raw not in text, f"{raw!r} reached the cloud embeddings API in {text!r}"


def test_a_question_without_personal_data_is_embedded_in_the_cloud(hub: HubServer, cloud: FakeOpenAI) -> None:
    """The control: the cloud embedder is the one in use, so the tests below can fail."""
    ask(hub, "How many days of annual leave do I get?")
    assert any("annual leave" in text for text in embedded(cloud))


def test_a_question_with_personal_data_is_not_sent_to_the_cloud_embedder(
    hub: HubServer, cloud: FakeOpenAI, local: FakeOpenAI
) -> None:
    answer = ask(hub, f"My phone is {PHONE} and my ID is {TW_ID}; how many days of annual leave do I get?")
    assert answer["model"] == "local-llm"
    assert embedded(cloud) == [], "the question went to the cloud /v1/embeddings"
    assert not [c for c in cloud.calls if c.path.endswith("/chat/completions")]
    # Answered by the local model from BM25's passages: the search without its dense side still finds them.
    (answered,) = [c for c in local.calls if "rewrite questions" not in str((c.json or {}).get("messages"))]
    assert "annual leave" in str(answered.json).lower() and answer["sources"]


def test_the_local_rewrite_of_a_personal_question_is_not_embedded_in_the_cloud(
    hub: HubServer, cloud: FakeOpenAI, local: FakeOpenAI
) -> None:
    """The rewrite is the local model's (the route says so); its lines — one holding the ID, one
    not — are the same question's, and obey its decision."""
    local.set_behavior("local-llm", reply=f"en: What is the annual leave of employee {TW_ID}?\nzh-TW: 特休有幾天")
    first = ask(hub, "特休怎麼算?", conversation_id="rewrite-1")
    ask(hub, f"那我的呢? 身分證 {TW_ID}", conversation_id="rewrite-1")
    assert first["answer"]
    rewrites = [c for c in local.calls if "rewrite questions" in str((c.json or {}).get("messages"))]
    assert rewrites, "the follow-up was not rewritten: this test would prove nothing"
    assert_nothing_raw(embedded(cloud))
    assert not any("特休有幾天" in text for text in embedded(cloud)), (
        "a line of the personal question's rewrite was embedded"
    )


def test_a_follow_up_to_a_personal_turn_is_not_embedded_in_the_cloud(hub: HubServer, cloud: FakeOpenAI) -> None:
    """The earlier turn goes into the follow-up's search (its context): the whole conversation is personal."""
    ask(hub, f"我的手機 {PHONE}，請問特休有幾天?", conversation_id="follow-1")
    cloud.reset()
    ask(hub, "那病假呢?", conversation_id="follow-1")
    assert embedded(cloud) == [], "the follow-up of a personal turn went to the cloud embedder"


def test_v1_kb_with_personal_data_in_a_number_is_not_embedded_in_the_cloud(hub: HubServer, cloud: FakeOpenAI) -> None:
    body = {"model": "kb", "messages": [{"role": "user", "content": "How many days of annual leave do I get?"}],
            "metadata": {"card": 4111111111111111}}  # fmt: skip
    response = httpx.post(f"{hub.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"},
                          timeout=30)  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "local-llm"
    assert embedded(cloud) == [], "the kb model's retrieval embedded a personal request in the cloud"
    control = {**body, "metadata": {"card": "none"}}
    httpx.post(f"{hub.url}/v1/chat/completions", json=control, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert any("annual leave" in text for text in embedded(cloud))


def test_withheld_questions_are_counted(hub: HubServer) -> None:
    ask(hub, f"ID {TW_ID}: how many days of annual leave?")
    metrics = httpx.get(f"{hub.url}/metrics").text
    line = next(row for row in metrics.splitlines() if row.startswith("hub_embeddings_withheld_total"))
    assert float(line.split()[-1]) >= 1


def test_the_log_keeps_no_raw_value(hub: HubServer) -> None:
    from core import logs

    ask(hub, f"ID {TW_ID} phone {PHONE}: annual leave?")
    logs.flush()
    text = Path(str(hub.settings.log_file)).read_text(encoding="utf-8")
    assert TW_ID not in text and PHONE not in text
