"""Shared fixtures: settings from a dict, a real hub on a loopback port, the sample index."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from core.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_KB = ROOT / "data" / "kb"


def make_settings(tmp_path: Path, **env: str) -> Settings:
    """Settings as the hub would read them from this environment (nothing else leaks in)."""
    base = {
        "KB_DIR": str(SAMPLE_KB),
        "INDEX_DIR": str(tmp_path / "index"),
        "LOG_FILE": str(tmp_path / "gateway.log"),
    }
    base.update(env)
    return load_settings(base)


class HubServer:
    """The real app under uvicorn on 127.0.0.1, in a thread with its own event loop."""

    def __init__(self, settings: Settings) -> None:
        from core.http.app import create_app

        self.settings = settings
        self.app = create_app(settings)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._server.serve(sockets=[self._sock]))

    @property
    def hub(self) -> Any:
        return self.app.state.hub

    def start(self) -> HubServer:
        self._thread.start()
        for _ in range(600):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                raise RuntimeError("hub server failed to start")
            threading.Event().wait(0.02)
        raise RuntimeError("hub server did not start in 12 s")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def run(self, coro: Any, timeout: float = 10) -> Any:
        """Run a coroutine on the server's loop (to reach hub state from a sync test)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample knowledge base, ingested once per test session (read-only for servers)."""
    from core.kb.embedders import HashEmbedder
    from core.kb.ingest import ingest

    index_dir = tmp_path_factory.mktemp("sample-index")
    settings = load_settings({})
    asyncio.run(
        ingest(
            SAMPLE_KB,
            index_dir,
            HashEmbedder(),
            chunk_chars=settings.retrieval.chunk_chars,
            exact_max=settings.retrieval.exact_max_chunks,
        )
    )
    return index_dir


@pytest.fixture
def hub_settings(tmp_path: Path, sample_index: Path) -> Settings:
    return make_settings(tmp_path, INDEX_DIR=str(sample_index))


@pytest.fixture
def hub(hub_settings: Settings) -> Iterator[HubServer]:
    """A hub in local demo mode on the sample knowledge base, offline answerer."""
    with HubServer(hub_settings) as server:
        yield server


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests talk to loopback only; a developer's proxy settings must not reroute them.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
