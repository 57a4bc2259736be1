"""SSE answers keep the connection alive with comments while the model is silent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import HubServer, make_settings
from tests.fakes.openai_upstream import FakeOpenAI


@pytest.fixture
def slow(tmp_path: Path, sample_index: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HubServer, FakeOpenAI]]:
    monkeypatch.setattr("core.http.sse.KEEPALIVE_SEC", 0.2)
    with FakeOpenAI(api_key="sk-test") as model:
        settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), OPENAI_API_KEY="sk-test",
                                 OPENAI_BASE_URL=model.base_url)  # fmt: skip
        with HubServer(settings) as server:
            model.set_behavior(None, delay=1.0)  # silent for five keep-alive periods, then the answer
            yield server, model


def _stream(url: str, body: dict[str, object]) -> list[bytes]:
    with httpx.stream("POST", url, json=body, timeout=20) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        return [line for line in response.iter_lines() if line]  # type: ignore[misc]


def test_ask_stream_sends_keepalive_comments_before_the_first_word(slow: tuple[HubServer, FakeOpenAI]) -> None:
    server, _ = slow
    lines = _stream(f"{server.url}/ask", {"question": "How do I set up the VPN?", "stream": True})
    first_event = next(n for n, line in enumerate(lines) if line.startswith("event:"))
    assert lines[:first_event] and all(line == ": keep-alive" for line in lines[:first_event])
    assert "event: done" in lines


def test_v1_stream_sends_keepalive_comments_while_the_model_is_silent(slow: tuple[HubServer, FakeOpenAI]) -> None:
    server, _ = slow
    body = {"model": "kb", "stream": True, "messages": [{"role": "user", "content": "How do I set up the VPN?"}]}
    lines = _stream(f"{server.url}/v1/chat/completions", body)
    assert ": keep-alive" in lines
    assert lines[-1] == "data: [DONE]"
