"""Shared fixtures: settings from a dict, a real hub on a loopback port, the sample index."""

from __future__ import annotations

import asyncio
import json
import logging
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


_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def logged_text(records: list[logging.LogRecord]) -> str:
    """What these records put in log lines: each message and its extra fields — not the record's
    own timestamps and ids, whose random digits would make a "this number is never logged" flaky."""
    lines = [{"msg": r.getMessage(), **{k: v for k, v in vars(r).items() if k not in _RECORD_FIELDS}} for r in records]
    return json.dumps(lines, default=str, ensure_ascii=False)


def write_yaml(path: Path, data: Any) -> Path:
    """A YAML file (a hub config, a Prometheus config) written for a test; returns its path."""
    import yaml

    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def make_settings(tmp_path: Path, **env: str) -> Settings:
    """Settings as the hub would read them from this environment (nothing else leaks in)."""
    base = {
        "KB_DIR": str(SAMPLE_KB),
        "INDEX_DIR": str(tmp_path / "index"),
        "LOG_FILE": str(tmp_path / "gateway.log"),
        "EMBEDDINGS": "hash",  # instant ingest; the semantic model has its own tests (test_retrieval_*)
    }
    base.update(env)
    settings = load_settings(base)
    if settings.verified.file is None:  # not beside a shared (session) index: each test hub its own
        settings = settings.model_copy(
            update={"verified": settings.verified.model_copy(update={"file": tmp_path / "verified.json"})}
        )
    return settings


class HubServer:
    """The real app under uvicorn on 127.0.0.1, in a thread with its own event loop."""

    def __init__(self, settings: Settings, *, run_adapters: bool = False) -> None:
        from core.http.app import create_app

        self.settings = settings
        self.app = create_app(settings, run_adapters=run_adapters)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
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


@pytest.fixture
def redis_db() -> Iterator[str]:
    """A clean Redis test database. Missing Redis fails under CI=true (never a silent skip)."""
    import redis as redis_sync

    url = redis_url()
    client = redis_sync.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis_sync.exceptions.ConnectionError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI=true but {url} does not answer")
        pytest.skip(f"Redis not reachable at {url}")
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HubProcess:
    """``python -m core serve`` as a real separate process (for multi-process tests)."""

    def __init__(
        self, env: dict[str, str], tmp_path: Path, command: tuple[str, ...] = ("serve",), *, module: bool = False
    ) -> None:
        """``python -m core <command>``, or with ``module`` ``python -m <command>`` (an adapter's process)."""
        import subprocess
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KB_DIR": str(SAMPLE_KB), "LOG_FILE": "",
                "EMBEDDINGS": "hash"}  # fmt: skip
        full = {**base, **env, "PORT": str(self.port), "HOST": "127.0.0.1"}
        self.output = tmp_path / f"hub-{command[0]}-{self.port}.out"
        self._log = open(self.output, "wb")  # noqa: SIM115 - closed in stop()
        argv = [sys.executable, "-m", *command] if module else [sys.executable, "-m", "core", *command]
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=full,
                                     stdout=self._log, stderr=subprocess.STDOUT)  # fmt: skip

    def wait_output(self, text: str, timeout: float = 30) -> HubProcess:
        """Wait for a line of the process's output (a worker has no HTTP to poll)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output.read_text(encoding="utf-8", errors="replace"):
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited with {self.proc.returncode}: {self.output.read_text()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{text!r} did not appear in the process output")

    def wait_ready(self, timeout: float = 30) -> HubProcess:
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub process exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("hub process did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
        self._log.close()


class RedisServer:
    """A private redis-server on a free port, which a test may stop and start again."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tmp_path
        self.proc: Any = None

    def start(self, *, durable: bool = False) -> RedisServer:
        """``durable``: an append-only file fsynced on every write, as production Redis should
        run when it holds the event queue; a restart then loses nothing."""
        import shutil
        import subprocess
        import time

        import redis as redis_sync

        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI") == "true":
                pytest.fail("redis-server is required under CI=true")
            pytest.skip("redis-server not installed")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if durable else "no", "--appendfsync", "always", "--dir", str(self._dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis_sync.Redis(port=self.port, socket_connect_timeout=0.2)
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis_sync.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


def metric(base_url: str, name: str, **labels: str) -> float:
    """One sample of the hub's /metrics (0 when absent), parsed with prometheus-client."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(httpx.get(f"{base_url}/metrics", timeout=5).text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def wait_for_metric(base_url: str, name: str, above: float, timeout: float = 15, **labels: str) -> float:
    """Until the sample passes ``above`` (an event the hub counts, instead of a sleep)."""
    import time

    deadline = time.monotonic() + timeout
    while (value := metric(base_url, name, **labels)) <= above:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} stayed at {value}")
        time.sleep(0.05)
    return value


# -- make test-fast: the inner loop, no servers ---------------------------------------------------
# With ASKHUB_FAST_TESTS=1 every test runs that starts no server: binding a socket or starting a
# process raises StartsServer, and such a test (or one that needs Redis or Chromium) is reported
# as skipped, "run make test". Nothing is listed by hand, so a new test joins the right tier.
FAST = os.environ.get("ASKHUB_FAST_TESTS") == "1"
_SERVER_FIXTURES = {"redis_db", "browser", "hub", "dashboard_hub", "open_portal", "open_dashboard"}


class StartsServer(Exception):
    """Raised in the fast tier where a test would start a server or a process."""


if FAST:
    import subprocess as _subprocess

    def _refuse(*_: object, **__: object) -> Any:
        raise StartsServer("starts a server or a process: run make test")

    socket.socket.bind = _refuse  # type: ignore[method-assign]
    _subprocess.Popen.__init__ = _refuse  # type: ignore[method-assign]
    asyncio.create_subprocess_exec = _refuse  # type: ignore[assignment]

    def pytest_runtest_setup(item: pytest.Item) -> None:
        if _SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            pytest.skip("needs a server (Redis, Chromium or a hub): run make test")

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
        outcome = yield
        report = outcome.get_result()
        excinfo = call.excinfo
        if report.failed and excinfo is not None and _starts_server(excinfo.value):
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1] or 0, "Skipped: starts a server: run make test")


def _starts_server(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, StartsServer):
            return True
        if isinstance(exc, BaseExceptionGroup):
            return any(_starts_server(e) for e in exc.exceptions)
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False
