"""The wall's rules from the settings alone: which tenant a platform id is, what a tenant reads,
what start-up says, and ``python -m core check`` — no server, no state."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.__main__ import main
from core.auth.collections import CollectionPolicy
from core.auth.platforms import discord_tenant, slack_tenant
from core.auth.walls import log_startup
from core.config import DiscordSettings, SlackSettings
from tests.conftest import make_settings, write_yaml

WALLED = {
    "collections": {"internal": {"path": "internal"}, "public": {"path": "public"}},
    "tenants": {"cs": {"collections": ["public"]}, "hr": {}},
    "clients": [{"name": "portal", "tenant": "sales", "key_sha256": ["a" * 64]}],
    "discord": {"tenants": {"111": "cs"}},
    "slack": {"tenants": {"TSTAFF": "hr"}},
}


def test_without_a_map_every_id_goes_to_the_default_tenant_as_before() -> None:
    assert slack_tenant(SlackSettings(), "TANY") == "default"
    assert slack_tenant(SlackSettings(default_tenant="it"), "TANY") == "it"
    assert discord_tenant(DiscordSettings(), 42) == "default"
    assert discord_tenant(DiscordSettings(), None) == "default", "a DM as before"
    assert discord_tenant(DiscordSettings(default_tenant="it"), None) == "it"


def test_with_a_map_only_explicit_settings_place_an_id() -> None:
    mapped = {"tenants": {"T1": "hr"}}
    assert slack_tenant(SlackSettings(**mapped), "T1") == "hr"
    assert slack_tenant(SlackSettings(**mapped), "T2") is None, "unmapped, no explicit default"
    assert slack_tenant(SlackSettings(**mapped, default_tenant="default"), "T2") == "default"
    guilds = {"tenants": {"111": "cs"}}
    assert discord_tenant(DiscordSettings(**guilds), 111) == "cs"
    assert discord_tenant(DiscordSettings(**guilds), 222) is None
    assert discord_tenant(DiscordSettings(**guilds), None) is None, "a DM needs dm_tenant once a map is set"
    assert discord_tenant(DiscordSettings(**guilds, default_tenant="cs"), None) is None
    assert discord_tenant(DiscordSettings(**guilds, default_tenant="cs"), 222) == "cs"
    assert discord_tenant(DiscordSettings(**guilds, dm_tenant="hr"), None) == "hr"


def test_with_collections_a_tenant_that_names_none_reads_none(tmp_path: Path) -> None:
    walled = make_settings(tmp_path, HUB_CONFIG=str(write_yaml(tmp_path / "hub.yaml", WALLED)))
    policy = CollectionPolicy(walled)
    assert policy.readable("cs") == {"public"}
    for tenant in ("hr", "sales", "default", "never-heard-of"):
        assert policy.readable(tenant) == frozenset(), tenant
    open_ = CollectionPolicy(make_settings(tmp_path / "open"))
    assert open_.readable("anyone") == {"default"}, "without the section nothing changes"


def test_start_up_names_each_tenant_reading_nothing_and_each_unplaced_platform(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, HUB_CONFIG=str(write_yaml(tmp_path / "hub.yaml", WALLED)),
                             DISCORD_BOT_TOKEN="t", SLACK_BOT_TOKEN="xoxb-t")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="askhub.walls"):
        log_startup(settings)
    tenants = sorted(r.tenant for r in caplog.records if getattr(r, "event", "") == "tenant_reads_nothing")
    assert tenants == ["hr", "sales"], "each once (no door reaches 'default': every platform has a map)"
    gaps = [r.getMessage() for r in caplog.records if getattr(r, "event", "") == "unplaced_platform"]
    assert len(gaps) == 3 and any("dm_tenant" in g for g in gaps) and any("slack.default_tenant" in g for g in gaps)


def test_check_prints_what_every_door_and_tenant_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HUB_CONFIG", str(write_yaml(tmp_path / "hub.yaml", WALLED)))
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "t")
    monkeypatch.setenv("LOG_FILE", "")
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "cs: public" in out and "hr: nothing" in out and "sales: nothing" in out
    assert "client portal -> tenant sales: nothing" in out
    assert "discord guild 111 -> tenant cs: public" in out
    assert "discord direct messages: NOT ANSWERED" in out


def test_check_says_a_config_error_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "HUB_CONFIG", str(write_yaml(tmp_path / "hub.yaml", {"tenants": {"cs": {"collections": ["x"]}}}))
    )
    assert main(["check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown collection 'x'" in err
