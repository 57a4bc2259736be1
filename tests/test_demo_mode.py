"""Demo mode is closed to the network however the app is started, and Host is checked.

The production command of the README, ``uvicorn core.app:app --host 0.0.0.0``, binds every
address; with no client configured the app itself must still answer only loopback peers that
name a loopback host (which also stops DNS rebinding: the attacker's page sends its own name).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.http.hosts import HostGuard
from tests.conftest import ROOT, SAMPLE_KB, HubServer, free_port, make_settings


@pytest.fixture
def uvicorn_demo(tmp_path: Path, sample_index: Path) -> Iterator[tuple[str, Path]]:
    """``uvicorn core.app:app --host 0.0.0.0`` with no client configured, as a real process."""
    port = free_port()
    output = tmp_path / "uvicorn.out"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KB_DIR": str(SAMPLE_KB), "INDEX_DIR": str(sample_index),
           "LOG_FILE": "", "EMBEDDINGS": "hash"}  # fmt: skip
    with open(output, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "core.app:app", "--host", "0.0.0.0", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, output.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url, output
    finally:
        proc.terminate()
        proc.wait(10)


def test_uvicorn_on_every_address_answers_only_loopback_names(uvicorn_demo: tuple[str, Path]) -> None:
    url, output = uvicorn_demo
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    local = httpx.post(f"{url}/ask", json={"question": "How do I claim travel expenses?"}, timeout=10)
    assert local.status_code == 200, "loopback with a loopback Host: the demo works"
    assert httpx.get(f"{url}/healthz", headers={"Host": "localhost:8000"}, timeout=5).status_code == 200

    for path in ("/admin/stats", "/ask", "/healthz", "/"):
        foreign = httpx.get(f"{url}{path}", headers={"Host": "rebind.attacker.example"}, timeout=5)
        assert foreign.status_code == 403, (path, foreign.text)
        assert foreign.headers["content-type"] == "application/json"
        assert foreign.json()["error"]["type"] == "forbidden"
    asked = httpx.post(f"{url}/ask", json={"question": "hi"}, headers={"Host": "10.0.0.8"}, timeout=5)
    assert asked.status_code == 403

    deadline = time.monotonic() + 10
    while "local demo mode: refusing" not in output.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert output.read_text().count("local demo mode: refusing") == 1, "said once, not per request"


def scope(peer: str, host: str, path: str = "/ask") -> dict[str, object]:
    return {"type": "http", "path": path, "client": (peer, 50000), "headers": [(b"host", host.encode())]}


def test_demo_mode_refuses_a_peer_that_is_not_loopback() -> None:
    guard = HostGuard(lambda: True, None, [])
    assert guard.refusal(scope("127.0.0.1", "127.0.0.1:8000")) is None
    assert guard.refusal(scope("::1", "[::1]:8000")) is None
    refused = guard.refusal(scope("192.0.2.7", "localhost:8000"))
    assert refused is not None and refused.status == 403


def test_with_keys_the_host_must_be_a_public_name(tmp_path: Path, sample_index: Path) -> None:
    settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), HUB_API_KEYS="svc:hr:ah_host-test-key-000000",
                             PUBLIC_URL="https://ask.example.com", HUB_ALLOWED_HOSTS="ask-internal.example.com")  # fmt: skip
    with HubServer(settings) as hub:
        key = {"X-API-Key": "ah_host-test-key-000000"}
        question = {"question": "How do I claim travel expenses?"}
        for host in ("ask.example.com", "ask-internal.example.com:443", f"127.0.0.1:{hub.port}"):
            response = httpx.post(f"{hub.url}/ask", json=question, headers={**key, "Host": host}, timeout=10)
            assert response.status_code == 200, (host, response.text)
        wrong = httpx.post(f"{hub.url}/ask", json=question, headers={**key, "Host": "evil.example"}, timeout=10)
        assert wrong.status_code == 400 and "Host" in wrong.json()["error"]["message"]
        # Probes and scrapes reach a pod by its address.
        assert httpx.get(f"{hub.url}/healthz", headers={"Host": "10.1.2.3:8000"}, timeout=5).status_code == 200
        assert httpx.get(f"{hub.url}/metrics", headers={"Host": "10.1.2.3:8000"}, timeout=5).status_code == 200
        # No redirect is ever built from a Host header.
        slash = httpx.get(f"{hub.url}/admin/", headers={"Host": "ask.example.com"}, timeout=5)
        assert slash.status_code == 404 and "location" not in slash.headers
