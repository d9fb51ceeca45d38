"""deploy/k8s: every manifest valid against the Kubernetes schemas (kubernetes-validate, strict: unknown fields
fail), the kustomization listing them all, and the promises each workload makes: native gRPC probes (HTTP
for the gateway and Envoy), resources, a locked-down security context, config from its ConfigMap and keys
only from Secrets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.integration.deploy.common import K8S_DIR

pytestmark = pytest.mark.integration

# The oldest release these manifests target; native gRPC probes are GA since 1.27.
K8S_VERSION = "1.30.0"
GRPC_SERVICES = {
    "chain-base": (50051, "swap.chain.v1.ChainService"),
    "chain-near": (50052, "swap.chain.v1.ChainService"),
    "quote": (50053, "swap.quote.v1.QuoteService"),
    "session": (50054, "swap.session.v1.SessionService"),
}
WORKLOADS = {*GRPC_SERVICES, "gateway", "envoy"}
SECRET_ENV = {"SESSION_SECRET_KEY", "GATEWAY_API_KEY_HASHES", "CHAIN_BASE_RESOLVER_KEY", "CHAIN_NEAR_RESOLVER_KEY"}


def manifests() -> list[Path]:
    return sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in manifests():
        for doc in documents(path):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


@pytest.mark.parametrize("path", manifests(), ids=lambda p: p.name)
def test_manifest_is_valid(path: Path) -> None:
    docs = documents(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_validation_can_fail() -> None:
    deployment = copy.deepcopy(resources()[("Deployment", "quote")])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpcc"] = {"port": 50053}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest_but_the_secret_template() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in manifests()} - {"secrets.template.yaml"}
    images = {image["name"] for image in kustomization["images"]}
    used = {
        container["image"].rsplit(":", 1)[0]
        for (kind, _), doc in resources().items()
        if kind == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
    }
    assert images == used


def test_secret_template_holds_no_secret() -> None:
    secrets = [doc for doc in documents(K8S_DIR / "secrets.template.yaml")]
    assert {doc["metadata"]["name"] for doc in secrets} == {
        "swap-chain-base",
        "swap-chain-near",
        "swap-session",
        "swap-gateway",
    }
    for secret in secrets:
        assert "data" not in secret
        assert all(value == "" for value in secret["stringData"].values()), secret["metadata"]["name"]


def test_every_workload_has_a_deployment_and_a_service() -> None:
    found = resources()
    for name in WORKLOADS:
        assert ("Deployment", name) in found, name
        assert ("Service", name) in found, name
        if name != "envoy":
            assert ("ConfigMap", name) in found, name
    assert found[("Service", "envoy")]["spec"]["type"] == "LoadBalancer"
    for name in WORKLOADS - {"envoy"}:
        # Headless: Envoy balances per request across every ready pod.
        assert found[("Service", name)]["spec"]["clusterIP"] == "None", name


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_workload_is_locked_down(name: str) -> None:
    deployment = resources()[("Deployment", name)]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}, kind
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert mounts["/tmp"] == "tmp"


@pytest.mark.parametrize("name", sorted(GRPC_SERVICES))
def test_grpc_services_use_native_grpc_probes(name: str) -> None:
    port, service = GRPC_SERVICES[name]
    found = resources()
    (container,) = found[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == port, probe
    assert container["readinessProbe"]["grpc"]["service"] == service
    assert container["startupProbe"]["grpc"]["service"] == service
    prefix = name.replace("-", "_").upper()
    assert container["envFrom"] == [{"configMapRef": {"name": name}}]
    config = found[("ConfigMap", name)]["data"]
    assert config[f"{prefix}_PORT"] == str(port)
    assert config[f"{prefix}_HOST"] == "0.0.0.0"
    assert found[("Service", name)]["spec"]["ports"][0]["port"] == port


def test_http_probes_for_gateway_and_envoy() -> None:
    found = resources()
    for name, ready in (("gateway", "/health"), ("envoy", "/healthz")):
        (container,) = found[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == ready, name
        assert "httpGet" in container["livenessProbe"], name


def test_keys_come_from_secrets_only() -> None:
    found = resources()
    for (kind, name), doc in found.items():
        if kind == "ConfigMap":
            assert not SECRET_ENV & set(doc["data"]), name
    refs: dict[str, str] = {}
    files: dict[str, str] = {}
    for name in WORKLOADS:
        pod = found[("Deployment", name)]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        for item in container.get("env", []):
            assert "value" not in item, f"{name}: {item['name']} set in clear"
            refs[item["name"]] = item["valueFrom"]["secretKeyRef"]["name"]
        for volume in pod["volumes"]:
            if "secret" in volume:
                files[name] = volume["secret"]["secretName"]
    assert refs == {"SESSION_SECRET_KEY": "swap-session", "GATEWAY_API_KEY_HASHES": "swap-gateway"}
    assert files == {"chain-base": "swap-chain-base", "chain-near": "swap-chain-near"}
    for name in ("chain-base", "chain-near"):
        prefix = name.replace("-", "_").upper()
        assert found[("ConfigMap", name)]["data"][f"{prefix}_RESOLVER_KEY_FILE"].startswith(f"/run/secrets/{name}/")
