"""With the shared state down every route still answers the contract's JSON: 503 with Retry-After
where the backend is needed, never a text/plain 500; a client that hangs up is not a server error."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.auth.keys import digest
from tests.conftest import HubServer, RedisServer, make_settings, metric, write_yaml
from tests.test_line_adapter import SECRET, TOKEN, sign

ADMIN_KEY = "ah_outage-admin-key-0000000000"


@pytest.fixture(scope="module")
def down(tmp_path_factory: pytest.TempPathFactory, sample_index: Path) -> Iterator[HubServer]:
    tmp = tmp_path_factory.mktemp("outage")
    redis = RedisServer(tmp).start()
    config = write_yaml(
        tmp / "hub.yaml",
        {
            "clients": [
                {"name": "ops", "tenant": "it", "scopes": ["ask", "chat", "admin"], "key_sha256": [digest(ADMIN_KEY)]}
            ]
        },
    )
    settings = make_settings(tmp, INDEX_DIR=str(sample_index), HUB_CONFIG=str(config), REDIS_URL=redis.url,
                             LINE_CHANNEL_SECRET=SECRET, LINE_CHANNEL_ACCESS_TOKEN=TOKEN)  # fmt: skip
    with HubServer(settings) as server:
        redis.stop()
        yield server


AUTH = {"X-API-Key": ADMIN_KEY}
NEEDS_BACKEND = [
    ("POST", "/ask", {"question": "How do I set up the VPN?"}),
    ("POST", "/ask", {"question": "How do I set up the VPN?", "stream": True}),
    ("POST", "/v1/chat/completions", {"model": "kb", "messages": [{"role": "user", "content": "VPN?"}]}),
    ("POST", "/feedback", {"request_id": "abc", "rating": "up"}),
    ("GET", "/admin/stats", None),
    ("GET", "/admin/usage", None),
    ("GET", "/admin/feedback", None),
]


@pytest.mark.parametrize(("method", "path", "body"), NEEDS_BACKEND)
def test_routes_that_need_the_backend_answer_503_json_with_retry_after(
    down: HubServer, method: str, path: str, body: object
) -> None:
    response = httpx.request(method, f"{down.url}{path}", json=body, headers=AUTH, timeout=10)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["type"] == "unavailable"
    assert int(response.headers["retry-after"]) >= 1


def test_a_platform_webhook_is_refused_with_503_so_the_platform_retries(down: HubServer) -> None:
    event = {"type": "message", "webhookEventId": "01OUTAGE", "timestamp": 0, "mode": "active",
             "source": {"type": "user", "userId": "U1"}, "replyToken": "r",
             "message": {"type": "text", "id": "1", "text": "hi"}, "deliveryContext": {"isRedelivery": False}}  # fmt: skip
    body = json.dumps({"destination": "Ubot", "events": [event]}).encode()
    response = httpx.post(f"{down.url}/line/webhook", content=body, timeout=10,
                          headers={"Content-Type": "application/json", "X-Line-Signature": sign(body)})  # fmt: skip
    assert response.status_code == 503 and response.headers["content-type"] == "application/json"
    assert "retry-after" in response.headers


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/v1/models", "/no/such/route"])
def test_every_other_route_answers_without_a_text_plain_500(down: HubServer, path: str) -> None:
    response = httpx.get(f"{down.url}{path}", headers=AUTH, timeout=10)
    assert response.status_code < 500 or response.status_code == 503, response.text
    assert "text/plain" not in response.headers.get("content-type", "") or path == "/metrics"


def test_a_client_that_hangs_up_mid_body_is_not_a_500(down: HubServer, caplog: pytest.LogCaptureFixture) -> None:
    before = metric(down.url, "gateway_requests_total", route="/ask", method="POST", status="499")
    errors = metric(down.url, "gateway_requests_total", route="/ask", method="POST", status="500")
    host, port = down.url.removeprefix("http://").split(":")
    with caplog.at_level(logging.INFO, logger="askhub.http"), socket.create_connection((host, int(port))) as conn:
        conn.sendall(f"POST /ask HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"X-API-Key: {ADMIN_KEY}\r\nContent-Length: 1000\r\n\r\n{{\"question\": ".encode())  # fmt: skip
        conn.shutdown(socket.SHUT_RDWR)
    deadline = time.monotonic() + 10
    while metric(down.url, "gateway_requests_total", route="/ask", method="POST", status="499") == before:
        assert time.monotonic() < deadline, "the disconnect was not counted"
        time.sleep(0.05)
    assert metric(down.url, "gateway_requests_total", route="/ask", method="POST", status="500") == errors
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def every_route(server: HubServer) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves, path parameters filled in: a route added later
    is covered without editing this file."""
    from starlette.routing import Mount, Route

    found: list[tuple[str, str]] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Route):
                path = prefix + route.path.replace("{", "").replace("}", "").replace(":path", "")
                found.extend((method, path) for method in sorted(route.methods or {"GET"}) if method != "HEAD")
            elif isinstance(route, Mount):
                found.append(("GET", f"{prefix}{route.path}/"))
            elif hasattr(route, "original_router"):  # FastAPI's included router
                walk(route.original_router.routes, prefix + route.include_context.prefix)

    walk(server.app.routes, "")
    return found


def test_the_route_table_is_walked(down: HubServer) -> None:
    routes = every_route(down)
    assert ("POST", "/ask") in routes and ("POST", "/line/webhook") in routes and len(routes) > 15, routes


def test_with_the_backend_down_no_route_answers_text_plain_or_500(down: HubServer) -> None:
    """Every route of the app, with and without a key: JSON (or the page or metrics a route
    serves), 503 the only 5xx, and a 503 says when to retry (/readyz reports, it does not refuse)."""
    bad = []
    with httpx.Client(base_url=down.url, timeout=10) as client:
        for method, path in every_route(down):
            for headers in (AUTH, {}):
                body = {} if method in ("POST", "PUT", "PATCH") else None
                response = client.request(method, path, json=body, headers=headers)
                ctype = response.headers.get("content-type", "")
                served_text = path == "/metrics" or ctype.startswith(("text/html", "text/css", "application/javascript",
                                                                       "text/javascript", "image/"))  # fmt: skip
                if (response.status_code >= 500 and response.status_code != 503) or (
                    "text/plain" in ctype and not served_text
                ):
                    bad.append((method, path, bool(headers), response.status_code, ctype, response.text[:80]))
                elif response.status_code == 503 and "retry-after" not in response.headers and path != "/readyz":
                    bad.append((method, path, bool(headers), 503, "no Retry-After", response.text[:80]))
    assert not bad, bad
