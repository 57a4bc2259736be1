"""The openai provider, through the real openai SDK, against the local fake upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.kb import store
from core.kb.retriever import Hit
from core.llm.base import ProviderError
from core.llm.openai_provider import OpenAIProvider
from core.llm.prompt import build_prompt
from tests.conftest import HubServer, make_settings
from tests.fakes.openai_upstream import FakeOpenAI


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-upstream") as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(fake: FakeOpenAI) -> None:
    fake.reset()


def hits(sample_index: Path) -> list[Hit]:
    index = store.load(sample_index)
    assert index is not None
    chunk = next(c for c in index.chunks() if c.doc_id == "travel-expenses.md")
    return [Hit(chunk, 0.9, 0.9, 0.9)]


def provider(fake: FakeOpenAI, timeout: float = 5.0) -> OpenAIProvider:
    return OpenAIProvider(model="gpt-4o-mini", api_key="sk-upstream", base_url=fake.base_url, timeout=timeout)


async def test_success_returns_text_model_and_usage(fake: FakeOpenAI, sample_index: Path) -> None:
    llm = provider(fake)
    prompt = build_prompt("How do I claim travel expenses?", hits(sample_index))
    completion = await llm.complete(prompt, temperature=0.2, max_tokens=300)
    await llm.aclose()
    assert completion.model == "gpt-4o-mini"
    assert completion.text.startswith("[gpt-4o-mini]")
    assert completion.prompt_tokens > 0 and completion.completion_tokens > 0
    call = fake.calls_for("gpt-4o-mini")[0]
    assert call.headers["authorization"] == "Bearer sk-upstream"
    assert call.json is not None
    assert call.json["messages"][0]["role"] == "system"
    assert "[1] Travel Expense Claims" in call.json["messages"][-1]["content"]
    assert call.json["temperature"] == 0.2 and call.json["max_tokens"] == 300


@pytest.mark.parametrize(
    ("behavior", "kind"),
    [
        ({"mode": "error", "status": 500}, "server"),
        ({"mode": "error", "status": 503}, "server"),
        ({"mode": "rate_limit", "retry_after": 7}, "rate_limited"),
        ({"mode": "malformed", "malformed": "shape"}, "bad_response"),
        ({"mode": "malformed", "malformed": "truncated"}, "bad_response"),
        ({"mode": "error", "status": 400}, "client"),
    ],
)
async def test_failures_are_classified(fake: FakeOpenAI, sample_index: Path, behavior: dict, kind: str) -> None:
    fake.set_behavior("gpt-4o-mini", **behavior)
    llm = provider(fake)
    with pytest.raises(ProviderError) as caught:
        await llm.complete(build_prompt("q", hits(sample_index)), temperature=0.2, max_tokens=100)
    await llm.aclose()
    assert caught.value.kind == kind
    if kind == "rate_limited":
        assert caught.value.retry_after == 7
    assert len(fake.calls_for("gpt-4o-mini")) == 1, "the SDK's own retries are off"


async def test_a_client_error_keeps_the_upstreams_own_message_and_code(fake: FakeOpenAI, sample_index: Path) -> None:
    fake.set_behavior(
        "gpt-4o-mini", mode="error", status=400, message="context too long", code="context_length_exceeded"
    )
    llm = provider(fake)
    with pytest.raises(ProviderError) as caught:
        await llm.complete(build_prompt("q", hits(sample_index)), temperature=0.2, max_tokens=100)
    await llm.aclose()
    assert caught.value.status == 400 and caught.value.upstream is not None
    assert caught.value.upstream["message"] == "context too long"
    assert caught.value.upstream["code"] == "context_length_exceeded"


async def test_timeout_is_classified(fake: FakeOpenAI, sample_index: Path) -> None:
    fake.set_behavior("gpt-4o-mini", mode="stall")
    llm = provider(fake, timeout=0.3)
    with pytest.raises(ProviderError) as caught:
        await llm.complete(build_prompt("q", hits(sample_index)), temperature=0.2, max_tokens=100)
    await llm.aclose()
    assert caught.value.kind == "timeout"


@pytest.fixture
def llm_hub(fake: FakeOpenAI, tmp_path: Path, sample_index: Path) -> Iterator[HubServer]:
    settings = make_settings(
        tmp_path,
        INDEX_DIR=str(sample_index),
        OPENAI_API_KEY="sk-upstream",
        OPENAI_BASE_URL=fake.base_url,
        HUB_CONFIG=str(_config(tmp_path)),
    )
    with HubServer(settings) as server:
        yield server


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text("llm:\n  timeout_sec: 0.5\nresilience:\n  retries: 1\n  backoff_base_sec: 0.01\n", encoding="utf-8")
    return path


def ask(hub: HubServer, question: str = "How do I claim travel expenses?") -> httpx.Response:
    return httpx.post(f"{hub.url}/ask", json={"question": question}, timeout=10)


def test_ask_uses_the_upstream_model(llm_hub: HubServer, fake: FakeOpenAI) -> None:
    response = ask(llm_hub)
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "gpt-4o-mini"
    assert body["answer"].startswith("[gpt-4o-mini]")
    assert body["usage"]["prompt_tokens"] > 0
    assert body["sources"]


def test_unrelated_question_does_not_call_the_model(llm_hub: HubServer, fake: FakeOpenAI) -> None:
    body = ask(llm_hub, "What is the airspeed velocity of an unladen swallow?").json()
    assert body["model"] == "none"
    assert not fake.calls_for("gpt-4o-mini")


@pytest.mark.parametrize(
    ("behavior", "status", "type_"),
    [
        ({"mode": "error", "status": 500}, 503, "unavailable"),
        ({"mode": "rate_limit", "retry_after": 9}, 503, "unavailable"),
        ({"mode": "stall"}, 504, "upstream_timeout"),
        ({"mode": "malformed"}, 502, "upstream_error"),
    ],
)
def test_upstream_trouble_maps_to_gateway_statuses(
    llm_hub: HubServer, fake: FakeOpenAI, behavior: dict, status: int, type_: str
) -> None:
    fake.set_behavior(None, **behavior)  # both models of the route fail
    response = ask(llm_hub)
    assert response.status_code == status
    assert response.json()["error"]["type"] == type_
    if status == 503:
        assert int(response.headers["retry-after"]) >= 1
    assert "sk-upstream" not in response.text and "Traceback" not in response.text


def test_readyz_reports_an_unreachable_upstream(tmp_path: Path, sample_index: Path) -> None:
    settings = make_settings(
        tmp_path, INDEX_DIR=str(sample_index), OPENAI_API_KEY="sk-x", OPENAI_BASE_URL="http://127.0.0.1:9/v1"
    )
    with HubServer(settings) as hub:
        ready = httpx.get(f"{hub.url}/readyz", timeout=10)
    assert ready.status_code == 503
    assert any(m.startswith("model small:") for m in ready.json()["missing"])
