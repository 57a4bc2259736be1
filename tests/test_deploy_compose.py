"""compose.yaml: its structure (checked in Python: `docker compose config` needs the engine),
its services' commands against the Procfile, and the files and names it refers to."""

from __future__ import annotations

import re
from typing import Any

import yaml

from core.config import environment_names, load_settings
from tests.conftest import ROOT
from tests.deploy_files import default_of, procfile

# The top-level and service keys of the Compose Specification that this file may use.
TOP_LEVEL = {"name", "services", "volumes", "secrets", "networks", "configs"}
SERVICE_KEYS = {"image", "build", "command", "environment", "ports", "volumes", "secrets", "depends_on", "restart",
                "init", "healthcheck", "profiles", "deploy"}  # fmt: skip
RESTART = {"no", "always", "on-failure", "unless-stopped"}


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))  # resolves the << merge keys
    return {k: v for k, v in data.items() if not k.startswith("x-")}


def test_the_compose_file_is_well_formed() -> None:
    data = compose()
    assert set(data) <= TOP_LEVEL and isinstance(data["services"], dict)
    for name, service in data["services"].items():
        assert set(service) <= SERVICE_KEYS, f"{name}: {set(service) - SERVICE_KEYS}"
        assert "image" in service or "build" in service, name
        assert isinstance(service.get("command", []), list) and all(
            isinstance(w, str) for w in service.get("command", [])
        )
        assert service.get("restart", "no") in RESTART
        for port in service.get("ports", []):
            assert re.fullmatch(r"(\$\{[A-Z_]+:-\d+\}|\d+):\d+", port), port
        for dep in service.get("depends_on", {}):
            assert dep in data["services"], f"{name} depends on unknown {dep}"
        for secret in service.get("secrets", []):
            assert secret in data["secrets"]
        for mount in service.get("volumes", []):
            source, target = mount.split(":")[:2]
            assert target.startswith("/")
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in data["volumes"], f"{name}: unknown volume {source}"
        health = service.get("healthcheck", {})
        assert health.get("disable") or not health or health["test"][0] in ("CMD", "CMD-SHELL")
    for secret in data["secrets"].values():
        assert (ROOT / secret["file"]).parent.is_dir()


def test_services_run_the_procfile_processes() -> None:
    services = compose()["services"]
    for name, (env, command) in procfile().items():
        assert services[name]["command"] == command, name
        for key, value in env.items():
            assert services[name]["environment"][key] == default_of(value), (name, key)


def test_redis_keeps_an_append_only_file_and_hub_processes_share_it() -> None:
    services = compose()["services"]
    command = services["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(m.endswith(":/data") for m in services["redis"]["volumes"])
    for name in procfile():
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_monitoring_is_an_optional_profile_with_the_ops_dashboards() -> None:
    services = compose()["services"]
    assert services["prometheus"]["profiles"] == services["grafana"]["profiles"] == ["monitoring"]
    mounts = [m.split(":")[0] for m in services["prometheus"]["volumes"] + services["grafana"]["volumes"]]
    assert {"./ops/alerts.yml", "./ops/grafana-dashboard.json"} <= set(mounts)
    scrape = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text(encoding="utf-8"))
    targets = {(c["names"][0], c["port"]) for c in scrape["scrape_configs"][0]["dns_sd_configs"]}
    assert targets == {("web", 8000), ("worker", int(services["worker"]["environment"]["WORKER_PORT"]))}
    assert all("profiles" not in services[name] for name in ("web", "worker", "redis"))


def test_environment_names_and_the_config_are_the_hubs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    services = compose()["services"]
    known = environment_names()
    for name in procfile():
        used = set(services[name]["environment"])
        assert used <= known, f"{name}: unknown to the hub: {sorted(used - known)}"
    keys = tmp_path / "keys"
    keys.write_text("portal:default:ah_compose-test-key-000000\n", encoding="utf-8")
    settings = load_settings({"HUB_CONFIG": str(ROOT / "deploy/compose/hub.yaml"), "HUB_API_KEYS_FILE": str(keys)})
    assert settings.auth_enabled
