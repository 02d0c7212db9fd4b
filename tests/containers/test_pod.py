"""docker/k8s/pod.yaml: valid against the Kubernetes schema (kubernetes-validate, strict),
and its sidecar settings the same as those docker/compose.yaml runs with (test_compose)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.containers.test_compose import compose_settings

POD_FILE = Path(__file__).resolve().parents[2] / "docker" / "k8s" / "pod.yaml"
K8S_VERSION = "1.30.0"  # validated against this and the newest schema the package ships


def documents() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(POD_FILE.read_text()) if doc]


def pod() -> dict[str, Any]:
    return next(doc for doc in documents() if doc["kind"] == "Pod")


def container(name: str) -> dict[str, Any]:
    return next(c for c in pod()["spec"]["containers"] if c["name"] == name)


@pytest.mark.parametrize("version", [K8S_VERSION, kubernetes_validate.latest_version()])
def test_manifest_is_valid_kubernetes(version: str) -> None:
    for doc in documents():
        kubernetes_validate.validate(doc, version, strict=True)


def test_a_broken_manifest_is_rejected() -> None:
    broken = pod()
    broken["spec"]["shareProcessNamespace"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_sidecar_settings_match_the_compose_file() -> None:
    compose = compose_settings()
    sidecar = container("pfwatch")
    env = {item["name"]: item["value"] for item in sidecar["env"]}
    mounts = {m["mountPath"]: m for m in sidecar["volumeMounts"]}
    security = sidecar["securityContext"]

    # one PID namespace: shareProcessNamespace <-> pid: "service:postfix"
    assert pod()["spec"]["shareProcessNamespace"] is True
    assert compose["pid"] == "service:postfix"
    # the same configuration, log and state paths
    for name in ("PFWATCH_CONFIG_DIR", "PFWATCH_MAILLOG", "PFWATCH_STATE_DIR"):
        assert env[name] == compose["environment"][name], name
    ro = {v.split(":")[1] for v in compose["volumes"] if v.endswith(":ro")}
    assert ro == {env["PFWATCH_CONFIG_DIR"], str(Path(env["PFWATCH_MAILLOG"]).parent)}
    assert all(mounts[path].get("readOnly") is True for path in ro)
    assert not mounts[env["PFWATCH_STATE_DIR"]].get("readOnly", False)
    assert "/tmp" in mounts and "/tmp" in compose["tmpfs"]
    # unprivileged, read-only root, no capabilities
    assert security["readOnlyRootFilesystem"] is True and compose["read_only"] is True
    assert f"{security['runAsUser']}:{security['runAsGroup']}" == compose["user"]
    assert security["capabilities"]["drop"] == ["ALL"] == compose["cap_drop"]
    assert security["allowPrivilegeEscalation"] is False
    assert "no-new-privileges:true" in compose["security_opt"]
    # health: the probe asks /healthz on the port pfwatch listens on, as HEALTHCHECK does
    port = next(p for p in sidecar["ports"] if p["name"] == "metrics")["containerPort"]
    assert env["PFWATCH_LISTEN"].endswith(f":{port}")
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert "args" not in sidecar and "command" not in sidecar  # the image runs `pfwatch watch`
    # Postfix logs to the shared volume the sidecar follows
    main_cf = next(d for d in documents() if d["kind"] == "ConfigMap")["data"]["main.cf"]
    assert f"maillog_file = {env['PFWATCH_MAILLOG']}" in main_cf
