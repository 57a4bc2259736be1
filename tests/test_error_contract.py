"""Every unexpected exception is the contract's JSON 500, on every kind of route, and its text
never reaches the caller or the log (it could quote a question or a secret)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core import logs
from tests.conftest import HubServer, make_settings

LEAK = "sk-leaky-secret-in-an-exception"


def boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(f"unexpected, quoting {LEAK}")


async def boom_route() -> None:
    boom()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sample_index: Path) -> Iterator[HubServer]:
    tmp = tmp_path_factory.mktemp("errors")
    hub = HubServer(make_settings(tmp, INDEX_DIR=str(sample_index)))
    hub.app.add_api_route("/test/boom", boom_route, methods=["GET"])  # a FastAPI route that fails
    with hub:
        hub.hub.asker.ask = boom  # the fast lane's /ask fails below the route
        yield hub


@pytest.mark.parametrize(("method", "path", "body"), [("GET", "/test/boom", None),
                                                      ("POST", "/ask", {"question": "VPN?"})])  # fmt: skip
def test_an_unexpected_exception_is_the_contracts_json_500(server: HubServer, method: str, path: str,
                                                            body: object) -> None:  # fmt: skip
    response = httpx.request(method, f"{server.url}{path}", json=body, timeout=10)
    assert response.status_code == 500, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "internal_error" and "request id" in error["message"] and response.headers["x-request-id"]
    assert LEAK not in response.text
    logs.flush()
    log = Path(str(server.settings.log_file)).read_text(encoding="utf-8")
    assert response.headers["x-request-id"] in log and LEAK not in log
