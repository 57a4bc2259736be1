"""Small edges of issue #26 ("Lower"): each one a test that failed on the code before its fix."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from core import logs
from core.auth import Authenticator, digest
from core.config import ConfigError, load_settings
from core.errors import Unauthorized
from tests.conftest import ROOT, HubServer, RedisServer, make_settings, write_yaml


def run_core(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "INDEX_DIR": "/nonexistent-index"}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_an_empty_log_file_means_stdout_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LOG_FILE= is how the image, compose and Kubernetes say "stdout only"."""
    settings = load_settings({"LOG_FILE": ""})
    assert settings.log_file is None
    assert load_settings({}).log_file == "gateway.log", "unset: the default file, as documented"
    monkeypatch.chdir(tmp_path)
    logs.setup(settings)
    try:
        import logging

        logging.getLogger("askhub.test").warning("a line")
        logs.flush()
    finally:
        logs.setup(make_settings(tmp_path / "after"))  # the tests' usual writer again
    assert not (tmp_path / "gateway.log").exists()


def test_a_secret_file_that_is_a_fifo_is_refused_in_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "token"
    os.mkfifo(fifo)
    # In a process of its own first: before the fix, start-up hung here (the timeout fails the test).
    out = run_core("check", env={"OPENAI_API_KEY_FILE": str(fifo), "LOG_FILE": ""}, timeout=20)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "not a regular file" in out.stderr
    with pytest.raises(ConfigError, match=r"^SLACK_BOT_TOKEN_FILE: .*token is not a regular file$"):
        load_settings({"SLACK_BOT_TOKEN_FILE": str(fifo)})


@pytest.mark.parametrize("url", ["redis://alice:s3cr3t-pw@cache:6379/0", "ftp://alice:s3cr3t-pw@files.example"])
def test_a_config_error_line_masks_credentials_inside_a_url(url: str) -> None:
    out = run_core("check", env={"OPENAI_BASE_URL": url, "LOG_FILE": ""})
    assert out.returncode == 2 and "OPENAI_BASE_URL" in out.stderr
    assert "s3cr3t-pw" not in out.stderr and "alice" not in out.stderr and "***@" in out.stderr


def test_rotating_with_no_overlap_refuses_the_old_key_at_once(tmp_path: Path) -> None:
    old = "ah_portal-old-key-000000000000000"
    config = {"clients": [{"name": "portal", "tenant": "hr", "key_sha256": [digest(old)]}]}
    path = write_yaml(tmp_path / "hub.yaml", config)
    out = run_core("keys", "rotate", "--client", "portal", "--overlap-days", "0",
                   env={"HUB_CONFIG": str(path), "LOG_FILE": ""})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "no overlap" in out.stdout
    new = next(line.strip() for line in out.stdout.splitlines() if line.strip().startswith("ah_"))
    write_yaml(path, yaml.safe_load(out.stdout[out.stdout.index("clients:") :]))
    auth = Authenticator(make_settings(tmp_path, HUB_CONFIG=str(path)))
    with pytest.raises(Unauthorized):  # not "valid to the end of the UTC day"
        auth.authenticate(old, scope="ask", route="/ask", peer="127.0.0.1")
    assert auth.authenticate(new, scope="ask", route="/ask", peer="127.0.0.1").client == "portal"


def test_slack_events_with_the_shared_state_down_answer_a_json_503(tmp_path: Path, sample_index: Path) -> None:
    """Slack retries a 503; the body is still the hub's JSON error, never an empty text/plain."""
    from tests.fakes.slack_api import FakeSlack
    from tests.test_slack_adapter import SECRET, mention, send_event

    redis = RedisServer(tmp_path).start()
    with FakeSlack() as slack:
        settings = make_settings(tmp_path, INDEX_DIR=str(sample_index), REDIS_URL=redis.url,
                                 SLACK_BOT_TOKEN=slack.bot_token, SLACK_SIGNING_SECRET=SECRET,
                                 SLACK_API_URL=slack.api_url)  # fmt: skip
        with HubServer(settings) as hub:
            redis.stop()
            response = send_event(hub, mention(f"{time.time():.6f}"))
    assert response.status_code == 503, (response.status_code, response.headers, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["type"] == "unavailable" and "retry-after" in response.headers
