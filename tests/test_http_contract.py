"""The HTTP contract of the core: shapes, statuses and the error format."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import HubServer


def post(hub: HubServer, body: object | None = None, *, content: bytes | None = None, **kw: object) -> httpx.Response:
    if content is None:
        return httpx.post(f"{hub.url}/ask", json=body, timeout=10, **kw)  # type: ignore[arg-type]
    return httpx.post(f"{hub.url}/ask", content=content, timeout=10, **kw)  # type: ignore[arg-type]


def assert_error(response: httpx.Response, status: int, type_: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == type_
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in response.text


def test_health_and_ready(hub: HubServer) -> None:
    assert httpx.get(f"{hub.url}/healthz").json() == {"ok": True}
    ready = httpx.get(f"{hub.url}/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True


def test_ask_answers_with_contract_shape(hub: HubServer) -> None:
    response = post(hub, {"question": "How do I claim travel expenses?"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"question", "answer", "sources", "model", "cached", "usage", "request_id"}
    assert body["model"] == "extractive"
    assert body["cached"] is False
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "cost_usd"}
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["sources"], "a grounded answer names its sources"
    for source in body["sources"]:
        assert set(source) == {"id", "title", "text", "score", "collection"}
        assert 0 < source["score"] <= 1
    assert any(s["id"].startswith("travel-expenses.md") for s in body["sources"])
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", body["answer"])}
    assert cited and cited <= set(range(1, len(body["sources"]) + 1)), "the answer cites its sources as [n]"


def test_request_id_is_taken_from_the_header(hub: HubServer) -> None:
    response = post(hub, {"question": "VPN 怎麼設定"}, headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"
    odd = post(hub, {"question": "VPN 怎麼設定"}, headers={"X-Request-ID": "bad id with spaces"})
    assert odd.headers["x-request-id"] != "bad id with spaces"


def test_unrelated_question_gets_dont_know_without_sources(hub: HubServer) -> None:
    body = post(hub, {"question": "What is the airspeed velocity of an unladen swallow?"}).json()
    assert body["sources"] == []
    assert body["model"] == "none"
    assert "could not find" in body["answer"]


@pytest.mark.parametrize(
    ("body", "status", "type_"),
    [
        ({}, 400, "invalid_request"),
        ({"question": None}, 400, "invalid_request"),
        ({"question": "   \n\t "}, 400, "invalid_request"),
        ({"question": "x" * 2001}, 400, "invalid_request"),
        ({"question": 42}, 422, "invalid_type"),
        ({"question": ["a"]}, 422, "invalid_type"),
        ({"question": "hi", "temperature": 2.5}, 422, "invalid_type"),
        ({"question": "hi", "temperature": -0.1}, 422, "invalid_type"),
        ({"question": "hi", "temperature": "hot"}, 422, "invalid_type"),
        ({"question": "hi", "temperature": True}, 422, "invalid_type"),
        ({"question": "hi", "top_k": 0}, 422, "invalid_type"),
        ({"question": "hi", "top_k": 21}, 422, "invalid_type"),
        ({"question": "hi", "top_k": 2.5}, 422, "invalid_type"),
        ({"question": "hi", "stream": "yes"}, 422, "invalid_type"),
        ({"question": "hi", "conversation_id": 7}, 422, "invalid_type"),
        ([1, 2], 422, "invalid_type"),
        ("just a string", 422, "invalid_type"),
    ],
)
def test_bad_bodies_get_the_right_status(hub: HubServer, body: object, status: int, type_: str) -> None:
    assert_error(post(hub, body), status, type_)


def test_valid_options_are_accepted(hub: HubServer) -> None:
    response = post(hub, {"question": "How many days of annual leave do I get?", "temperature": 0, "top_k": 1})
    assert response.status_code == 200
    assert len(response.json()["sources"]) <= 1


def test_not_json_and_too_large(hub: HubServer) -> None:
    assert_error(post(hub, content=b"{not json"), 400, "invalid_request")
    assert_error(post(hub, content=b'{"question": "' + b"a" * 70_000 + b'"}'), 413, "payload_too_large")


def test_chunked_body_over_the_limit_is_413(hub: HubServer) -> None:
    def chunks():  # no Content-Length: the limit must hold on the bytes that arrive
        for _ in range(20):
            yield b"a" * 8192

    assert_error(post(hub, content=chunks()), 413, "payload_too_large")  # type: ignore[arg-type]


def test_framework_errors_use_the_error_shape(hub: HubServer) -> None:
    assert_error(httpx.get(f"{hub.url}/no/such/route"), 404, "not_found")
    assert_error(httpx.delete(f"{hub.url}/ask"), 405, "method_not_allowed")
    assert_error(httpx.get(f"{hub.url}/ask"), 405, "method_not_allowed")


def test_openapi_is_served(hub: HubServer) -> None:
    spec = httpx.get(f"{hub.url}/openapi.json").json()
    assert "/ask" in spec["paths"]
    schema = spec["paths"]["/ask"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "question" in schema["properties"]


def test_metrics_count_requests_by_route_template(hub: HubServer) -> None:
    post(hub, {"question": "How do I reset my password?"})
    httpx.get(f"{hub.url}/no/such/route/12345")
    text = httpx.get(f"{hub.url}/metrics").text
    assert 'gateway_requests_total{method="POST",route="/ask",status="200"}' in text
    assert 'route="unmatched"' in text
    assert "/no/such/route/12345" not in text
    assert 'gateway_errors_total{route="unmatched",type="not_found"}' in text
    assert "gateway_request_duration_seconds_bucket" in text
    assert 'route="/metrics"' not in text


def test_the_example_configuration_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.config import load_settings
    from core.llm.routing import Router
    from tests.conftest import ROOT

    settings = load_settings(
        {
            "HUB_CONFIG": str(ROOT / "config" / "hub.example.yaml"),
            "OPENAI_API_KEY": "sk",
            "LOCAL_LLM_BASE_URL": "http://127.0.0.1:9/v1",
        }
    )
    assert settings.auth_enabled and len(settings.clients) == 4 and settings.tenants["hr"].requests_per_day == 2000
    assert [r.name for r in Router(settings).rules] == ["pii", "contracts", "long", "default"]
