"""deploy/kubernetes: every manifest validates offline against Kubernetes' schemas, and the
environment, files, probes and commands they use are the ones the hub really has."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from core.config import environment_names, load_settings
from core.secrets import SECRET_VARIABLES
from tests.conftest import ROOT
from tests.deploy_files import default_of, procfile

K8S = ROOT / "deploy" / "kubernetes"
VERSION = "1.30.0"  # a Kubernetes release every supported cluster line understands


def resources() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in resources() if d["kind"] == kind}


def pod_specs() -> list[dict[str, Any]]:
    owners = [*by_kind("Deployment").values(), *by_kind("Job").values(), *by_kind("StatefulSet").values()]
    return [o["spec"]["template"]["spec"] for o in owners]


def hub_containers() -> list[dict[str, Any]]:
    return [c for spec in pod_specs() for c in spec["containers"] if c["image"].startswith("askhub")]


def test_every_manifest_validates_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("schema validation tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    docs = resources()
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ConfigMap", "Secret", "HorizontalPodAutoscaler",
                                         "PodDisruptionBudget", "Job", "PersistentVolumeClaim"}  # fmt: skip
    for doc in docs:
        kubernetes_validate.validate(doc, VERSION, strict=True)  # strict: unknown fields are errors too
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def test_a_broken_manifest_is_caught() -> None:
    wrong_type = by_kind("Deployment")["askhub-web"]
    wrong_type["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = {"name": "http"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong_type, VERSION, strict=True)
    unknown_field = by_kind("Deployment")["askhub-web"]
    unknown_field["spec"]["replicaz"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(unknown_field, VERSION, strict=True)


def test_every_environment_name_is_one_the_hub_reads() -> None:
    known = environment_names()
    used = {e["name"] for c in hub_containers() for e in c.get("env", [])}
    assert used and used <= known, f"unknown to the hub: {sorted(used - known)}"


def test_secrets_are_mounted_files_that_the_secret_holds() -> None:
    secret = by_kind("Secret")["askhub-secrets"]
    held = set(secret["stringData"])
    for spec in pod_specs():
        for container in spec["containers"]:
            mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
            for env in container.get("env", []):
                assert not env["name"].endswith(("_KEY", "_TOKEN", "_SECRET", "_KEYS")), "secrets come from files"
                if env["name"].endswith("_FILE") and env["name"].removesuffix("_FILE") in SECRET_VARIABLES:
                    volume = next(
                        v for v in spec["volumes"] if v.get("secret", {}).get("secretName") == "askhub-secrets"
                    )
                    directory, key = env["value"].rsplit("/", 1)
                    assert mounts[volume["name"]] == directory and key in held, env


def test_the_secret_and_the_configmap_are_what_the_hub_loads(tmp_path: Path) -> None:
    config = tmp_path / "hub.yaml"
    config.write_text(by_kind("ConfigMap")["askhub-config"]["data"]["hub.yaml"], encoding="utf-8")
    keys = tmp_path / "hub-api-keys"
    keys.write_text(by_kind("Secret")["askhub-secrets"]["stringData"]["hub-api-keys"], encoding="utf-8")
    settings = load_settings({"HUB_CONFIG": str(config), "HUB_API_KEYS_FILE": str(keys)})
    assert settings.auth_enabled and settings.hub_api_keys[0].startswith("portal:default:")


def test_deployments_run_the_procfile_processes_with_probes() -> None:
    processes = procfile()
    deployments = by_kind("Deployment")
    for name, port_env in (("web", "PORT"), ("worker", "WORKER_PORT")):
        spec = deployments[f"askhub-{name}"]["spec"]["template"]["spec"]
        container = spec["containers"][0]
        env, command = processes[name]
        assert container["command"] == command
        values = {e["name"]: e["value"] for e in container["env"]}
        assert all(values.get(k) == default_of(v) for k, v in env.items())
        port = next(p for p in container["ports"])
        assert values[port_env] == str(port["containerPort"]), "the probes reach the port the process listens on"
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port["name"]}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port["name"]}
        assert spec["securityContext"]["runAsNonRoot"] and container["securityContext"]["readOnlyRootFilesystem"]
        index = next(m for m in container["volumeMounts"] if m["mountPath"] == values["INDEX_DIR"])
        assert index["readOnly"], "serving pods read the index the ingest Job writes"
    job = by_kind("Job")["askhub-ingest"]["spec"]["template"]["spec"]["containers"][0]
    assert job["command"] == ["python", "-m", "core", "ingest"]


def test_autoscalers_and_budgets_point_at_the_deployments() -> None:
    deployments = by_kind("Deployment")
    for hpa in by_kind("HorizontalPodAutoscaler").values():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        container = deployments[target["name"]]["spec"]["template"]["spec"]["containers"][0]
        assert "cpu" in container["resources"]["requests"], "a CPU target needs a CPU request"
    labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments.values()]
    for pdb in by_kind("PodDisruptionBudget").values():
        wanted = pdb["spec"]["selector"]["matchLabels"]
        assert sum(all(lab.get(k) == v for k, v in wanted.items()) for lab in labels) == 1
    service = by_kind("Service")["askhub-web"]
    assert service["spec"]["selector"] == deployments["askhub-web"]["spec"]["selector"]["matchLabels"]
