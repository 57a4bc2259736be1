"""Secrets from files (Docker and Kubernetes mounts), key expiry and rotation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import jwt
import pytest
import yaml
from playwright.sync_api import Browser, expect

from core import logs
from core.auth import Authenticator, digest
from core.auth import keys as key_module
from core.config import ConfigError, load_settings
from core.errors import Unauthorized
from core.llm.routing import Router
from tests.browser import Pages, browser, needs_browser  # noqa: F401 - the browser fixture
from tests.conftest import ROOT, HubServer, make_settings, metric, write_yaml

ADMIN = "ah_admin-key-for-the-secrets-test-0001"
EXPIRED = "ah_expired-key-for-the-secrets-test-01"
SOON = "ah_soon-key-for-the-secrets-test-000001"
LATER = "ah_later-key-for-the-secrets-test-00001"


def secret_file(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value + "\n", encoding="utf-8")  # as `echo value > file` writes it
    return str(path)


def test_every_secret_variable_reads_from_its_file(tmp_path: Path) -> None:
    env = {
        "OPENAI_API_KEY_FILE": secret_file(tmp_path, "openai", "sk-from-a-file"),
        "SLACK_SIGNING_SECRET_FILE": secret_file(tmp_path, "slack", "slack-signing-from-file"),
        "SLACK_BOT_TOKEN_FILE": secret_file(tmp_path, "bot", "xoxb-from-file"),
        "LINE_CHANNEL_SECRET_FILE": secret_file(tmp_path, "line", "line-secret-from-file"),
        "DISCORD_BOT_TOKEN_FILE": secret_file(tmp_path, "discord", "discord-from-file"),
        "REDIS_URL_FILE": secret_file(tmp_path, "redis", "redis://:pw@127.0.0.1:6379/3"),
        # One entry a line, as a mounted Secret holding several keys is easiest to edit.
        "HUB_API_KEYS_FILE": secret_file(tmp_path, "keys", "portal:hr:ah_one-key-000000\nslack:it:ah_two-key-00000"),
    }
    settings = load_settings(env)
    assert settings.openai_api_key is not None and settings.openai_api_key.get_secret_value() == "sk-from-a-file"
    assert settings.slack_signing_secret is not None
    assert settings.slack_signing_secret.get_secret_value() == "slack-signing-from-file"
    assert settings.slack_bot_token is not None and settings.slack_bot_token.get_secret_value() == "xoxb-from-file"
    assert settings.line_channel_secret is not None
    assert settings.line_channel_secret.get_secret_value() == "line-secret-from-file"
    assert settings.discord_bot_token is not None
    assert settings.discord_bot_token.get_secret_value() == "discord-from-file"
    assert settings.redis_url == "redis://:pw@127.0.0.1:6379/3"
    assert settings.hub_api_keys == ["portal:hr:ah_one-key-000000", "slack:it:ah_two-key-00000"]


def test_yaml_named_secrets_read_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A JWT key's secret_env and a model's api_key_env take the _FILE variant too."""
    monkeypatch.setenv("SSO_HMAC_FILE", secret_file(tmp_path, "hmac", "an-hmac-secret-of-32-bytes-000000"))
    monkeypatch.setenv("VLLM_KEY_FILE", secret_file(tmp_path, "vllm", "vllm-key-from-file"))
    config = {
        "jwt": {"issuer": "sso", "audience": "hub", "keys": [{"kid": "k1", "algorithm": "HS256",
                                                                "secret_env": "SSO_HMAC"}]},
        "models": [{"name": "onprem", "model": "qwen", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "VLLM_KEY",
                    "local": True}],
    }  # fmt: skip
    settings = make_settings(tmp_path, HUB_CONFIG=str(write_yaml(tmp_path / "hub.yaml", config)))
    assert Router(settings).specs["onprem"].api_key == "vllm-key-from-file"
    token = jwt.encode({"iss": "sso", "aud": "hub", "sub": "u1", "scope": "ask", "exp": 4102444800},
                       "an-hmac-secret-of-32-bytes-000000", algorithm="HS256", headers={"kid": "k1"})  # fmt: skip
    who = Authenticator(settings).authenticate(token, scope="ask", route="/ask", peer="127.0.0.1")
    assert who.user == "u1"


def run_core(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "LOG_FILE": "", "INDEX_DIR": "/nonexistent-index"}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_an_unreadable_secret_file_is_one_config_line_without_the_secret(tmp_path: Path) -> None:
    missing = run_core("ingest", env={"OPENAI_API_KEY_FILE": str(tmp_path / "nope")})
    assert missing.returncode == 2
    assert missing.stderr == f"config error: OPENAI_API_KEY_FILE: file not found: {tmp_path / 'nope'}\n"

    unreadable = tmp_path / "a-directory"
    unreadable.mkdir()
    with pytest.raises(ConfigError, match=r"^SLACK_BOT_TOKEN_FILE: cannot read .*a-directory: IsADirectoryError$"):
        load_settings({"SLACK_BOT_TOKEN_FILE": str(unreadable)})
    with pytest.raises(ConfigError, match=r"^LINE_CHANNEL_SECRET: set either LINE_CHANNEL_SECRET or "):
        load_settings({"LINE_CHANNEL_SECRET": "x", "LINE_CHANNEL_SECRET_FILE": secret_file(tmp_path, "l", "y")})
    # A malformed value from a file is named by the file's variable, never shown.
    bad = secret_file(tmp_path, "bad-keys", "portal-without-colons-TOPSECRET")
    with pytest.raises(ConfigError) as info:
        load_settings({"HUB_API_KEYS_FILE": bad})
    assert str(info.value).startswith("HUB_API_KEYS_FILE: ") and "TOPSECRET" not in str(info.value)


@pytest.fixture
def expiring(tmp_path: Path, sample_index: Path) -> Iterator[HubServer]:
    today = key_module.today()
    config = {"clients": [
        {"name": "ops", "tenant": "it", "scopes": ["ask", "admin"], "key_sha256": [digest(ADMIN)]},
        {"name": "gone", "tenant": "hr", "key_sha256": [{"sha256": digest(EXPIRED), "expires": today - timedelta(1)}]},
        {"name": "soon", "tenant": "hr", "key_sha256": [{"sha256": digest(SOON), "expires": today + timedelta(5)}]},
        {"name": "later", "tenant": "hr", "key_sha256": [{"digest": digest(LATER), "expires": today + timedelta(60)}]},
    ]}  # fmt: skip
    settings = make_settings(tmp_path, INDEX_DIR=str(sample_index),
                             HUB_CONFIG=str(write_yaml(tmp_path / "hub.yaml", config)))  # fmt: skip
    with HubServer(settings) as server:
        yield server


def ask(hub: HubServer, key: str) -> httpx.Response:
    return httpx.post(f"{hub.url}/ask", json={"question": "VPN 怎麼設定"}, headers={"X-API-Key": key}, timeout=10)


def log_records(hub: HubServer) -> list[dict[str, object]]:
    logs.flush()
    assert hub.settings.log_file is not None
    return [json.loads(line) for line in Path(hub.settings.log_file).read_text(encoding="utf-8").splitlines()]


def test_an_expired_key_is_refused_like_a_wrong_one(expiring: HubServer) -> None:
    expired, wrong = ask(expiring, EXPIRED), ask(expiring, "ah_no-such-key-000000000000000000")
    assert expired.status_code == wrong.status_code == 401
    assert expired.json() == wrong.json()
    assert ask(expiring, LATER).status_code == 200
    reasons = [r.get("reason") for r in log_records(expiring) if r.get("event") == "auth_failed"]
    assert reasons == ["expired_key", "unknown_key"]


def test_a_key_near_its_end_is_audited_and_counted(expiring: HubServer) -> None:
    before = metric(expiring.url, "hub_key_expiring_uses_total", client="soon")
    assert ask(expiring, SOON).status_code == 200
    assert ask(expiring, SOON).status_code == 200
    assert ask(expiring, LATER).status_code == 200  # 60 days left: no warning
    assert metric(expiring.url, "hub_key_expiring_uses_total", client="soon") == before + 2
    assert metric(expiring.url, "hub_key_expiring_uses_total", client="later") == 0
    warnings = [r for r in log_records(expiring) if r.get("event") == "key_expiring"]
    assert len(warnings) == 1, "one audit line a key and day, not one a request"
    assert warnings[0]["logger"] == "askhub.audit" and warnings[0]["client"] == "soon"
    assert warnings[0]["days_left"] == 5 and warnings[0]["key"] == digest(SOON)[:12]
    text = Path(str(expiring.settings.log_file)).read_text(encoding="utf-8")
    assert SOON not in text and digest(SOON) not in text


def test_admin_lists_keys_by_expiry_without_key_material(expiring: HubServer) -> None:
    resp = httpx.get(f"{expiring.url}/admin/keys", headers={"X-API-Key": ADMIN}, timeout=5)
    assert resp.status_code == 200
    rows = resp.json()["keys"]
    assert [(r["client"], r["state"]) for r in rows] == [
        ("gone", "expired"), ("soon", "expiring"), ("later", "valid"), ("ops", "no_expiry")
    ]  # fmt: skip
    assert rows[1]["days_left"] == 5 and rows[1]["expires"] == str(key_module.today() + timedelta(5))
    for secret in (ADMIN, EXPIRED, SOON, LATER):
        assert secret not in resp.text and digest(secret) not in resp.text
    assert httpx.get(f"{expiring.url}/admin/keys", headers={"X-API-Key": LATER}, timeout=5).status_code == 403


def test_pasting_the_rotation_output_keeps_both_keys_for_the_overlap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = "ah_portal-old-key-000000000000000"
    config = {"clients": [
        {"name": "ops", "tenant": "it", "scopes": ["ask", "admin"], "key_sha256": [digest(ADMIN)]},
        {"name": "portal", "tenant": "hr", "collections": ["default"], "key_sha256": [digest(old)]},
    ]}  # fmt: skip
    path = write_yaml(tmp_path / "hub.yaml", config)
    out = run_core("keys", "rotate", "--client", "portal", "--overlap-days", "7", env={"HUB_CONFIG": str(path)})
    assert out.returncode == 0, out.stderr
    new = next(line.strip() for line in out.stdout.splitlines() if line.strip().startswith("ah_"))
    assert out.stdout.count(new) == 1, "the key is shown once"
    pasted = yaml.safe_load(out.stdout[out.stdout.index("clients:") :])
    # The operator replaces the client's entry with what was printed.
    config["clients"] = [c for c in config["clients"] if c["name"] != "portal"] + pasted["clients"]
    write_yaml(path, config)

    auth = Authenticator(make_settings(tmp_path, HUB_CONFIG=str(path)))
    for key in (old, new):
        who = auth.authenticate(key, scope="ask", route="/ask", peer="127.0.0.1")
        assert (who.client, who.tenant) == ("portal", "hr")
    overlap_end = key_module.today() + timedelta(days=7)
    monkeypatch.setattr(key_module, "today", lambda: overlap_end)
    assert auth.authenticate(old, scope="ask", route="/ask", peer="127.0.0.1").client == "portal"
    monkeypatch.setattr(key_module, "today", lambda: overlap_end + timedelta(days=1))
    with pytest.raises(Unauthorized):
        auth.authenticate(old, scope="ask", route="/ask", peer="127.0.0.1")
    assert auth.authenticate(new, scope="ask", route="/ask", peer="127.0.0.1").client == "portal"


def test_rotating_an_unknown_client_says_so(tmp_path: Path) -> None:
    out = run_core("keys", "rotate", "--client", "nobody", env={"HUB_API_KEYS": "portal:hr:ah_x-key-0000000000"})
    assert out.returncode == 2 and "no client named 'nobody'" in out.stderr and not out.stdout


@needs_browser
def test_the_dashboard_shows_keys_by_expiry(browser: Browser, expiring: HubServer) -> None:  # noqa: F811
    pages = Pages(browser, expiring.url, "/admin")
    page = pages.open()
    page.get_by_label("Admin key or token").fill(ADMIN)
    page.get_by_role("button", name="Show dashboard").click()
    rows = page.locator("#keys tbody tr")
    expect(rows).to_have_count(4)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.state)") == ["expired", "expiring", "valid", "no_expiry"]
    expect(rows.nth(1)).to_contain_text("soon")
    expect(rows.nth(1)).to_contain_text(digest(SOON)[:12])
    html = page.content()
    assert digest(SOON) not in html and SOON not in html
    pages.close()
