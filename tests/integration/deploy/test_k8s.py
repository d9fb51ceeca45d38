"""deploy/k8s: every manifest valid against the Kubernetes schemas (kubernetes-validate, strict: unknown fields
fail), the kustomization listing them all, and the promises each workload makes: gRPC health probes over
mutual TLS (HTTP for the gateway and Envoy), resources, a locked-down security context, config from its
ConfigMap, its certificate and keys only from Secrets, no development mode; and the optional cert-manager
resources issuing exactly the Secrets the workloads mount."""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from tests.integration.deploy.common import K8S_DIR, HealthStub, Pki

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
SECRET_ENV = {
    "SESSION_SECRET_KEY",
    "GATEWAY_API_KEY_HASHES",
    "CHAIN_BASE_RESOLVER_KEY",
    "CHAIN_NEAR_RESOLVER_KEY",
    "QUOTE_SIGNING_KEY",
    "SESSION_QUOTE_PUBLIC_KEYS",
}
# Not applied with the kustomization: the Secrets' shape, and cert-manager's resources (optional; their kinds
# are cert-manager's, which kubernetes-validate does not know).
OPTIONAL = {"secrets.template.yaml", "cert-manager.yaml"}
CERT_MANAGER = K8S_DIR / "cert-manager.yaml"
TLS_DIR = "/run/secrets/tls"
# Who has a certificate: every workload but the gateway's HTTP side, and the operator's tools.
IDENTITIES = {*GRPC_SERVICES, "gateway", "envoy", "operator"}


def manifests() -> list[Path]:
    return sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


def validated() -> list[Path]:
    return [p for p in manifests() if p.name != CERT_MANAGER.name]


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def resources() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in validated():
        for doc in documents(path):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


@pytest.mark.parametrize("path", validated(), ids=lambda p: p.name)
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


def test_kustomization_lists_every_manifest_but_the_optional_ones() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in manifests()} - OPTIONAL
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
        "swap-quote",
        "swap-session",
        "swap-gateway",
        *(f"swap-tls-{name}" for name in IDENTITIES - {"operator"}),
    }
    for secret in secrets:
        assert "data" not in secret
        assert all(value == "" for value in secret["stringData"].values()), secret["metadata"]["name"]
        if secret["metadata"]["name"].startswith("swap-tls-"):
            # What a TLS directory holds, under the type cert-manager gives its Secrets.
            assert secret["type"] == "kubernetes.io/tls"
            assert set(secret["stringData"]) == {"tls.crt", "tls.key", "ca.crt"}


def test_every_secret_a_workload_uses_is_in_the_template() -> None:
    template = {doc["metadata"]["name"] for doc in documents(K8S_DIR / "secrets.template.yaml")}
    used: set[str] = set()
    for name in WORKLOADS:
        pod = resources()[("Deployment", name)]["spec"]["template"]["spec"]
        used |= {volume["secret"]["secretName"] for volume in pod["volumes"] if "secret" in volume}
        (container,) = pod["containers"]
        used |= {item["valueFrom"]["secretKeyRef"]["name"] for item in container.get("env", [])}
    assert used == template


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


def container_of(name: str) -> dict[str, Any]:
    (container,) = resources()[("Deployment", name)]["spec"]["template"]["spec"]["containers"]
    return dict(container)


@pytest.mark.parametrize("name", sorted(GRPC_SERVICES))
def test_grpc_services_probe_their_health_over_mutual_tls(name: str) -> None:
    """The kubelet's gRPC probe cannot show a client certificate: the probes run the image's own probe, the
    command of its HEALTHCHECK, which asks with the service's certificate."""
    port, service = GRPC_SERVICES[name]
    found = resources()
    container = container_of(name)
    prefix = name.replace("-", "_").upper()
    probe = ["python", "-m", "swap_runtime.probe", f"{prefix}_"]
    for kind in ("startupProbe", "readinessProbe"):
        assert container[kind] == {**container[kind], "exec": {"command": [*probe, service]}}, kind
    assert container["livenessProbe"]["exec"]["command"] == probe
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert "grpc" not in container[kind], kind
        # An interpreter starts before the call's own 3 s deadline runs.
        assert container[kind]["timeoutSeconds"] > 3, kind
    assert container["envFrom"] == [{"configMapRef": {"name": name}}]
    config = found[("ConfigMap", name)]["data"]
    assert config[f"{prefix}_PORT"] == str(port)
    assert config[f"{prefix}_HOST"] == "0.0.0.0"
    assert found[("Service", name)]["spec"]["ports"][0]["port"] == port


@pytest.mark.parametrize("name", sorted(GRPC_SERVICES))
async def test_probe_commands_work_with_the_configmap(
    name: str, tls_health_stub: HealthStub, health_stub: HealthStub, pki: Pki
) -> None:
    """The probes as the pod runs them, with the ConfigMap's settings (the port and the certificate directory
    pointed at a stand-in and a test CA): healthy over mutual TLS, unhealthy against a plaintext server."""
    prefix = name.replace("-", "_").upper()
    env = {**resources()[("ConfigMap", name)]["data"], f"{prefix}_TLS_DIR": str(pki.dir(name))}
    container = container_of(name)
    for kind in ("readinessProbe", "livenessProbe"):
        argv = [sys.executable, *container[kind]["exec"]["command"][1:]]
        for port, healthy in ((tls_health_stub.port, True), (health_stub.port, False)):
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env={**env, f"{prefix}_PORT": str(port)},
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            assert (await asyncio.wait_for(proc.wait(), 20) == 0) is healthy, (kind, port)


@pytest.mark.parametrize("name", sorted(WORKLOADS - {"envoy"}))
def test_workloads_mount_their_certificate_at_their_tls_dir(name: str) -> None:
    found = resources()
    pod = found[("Deployment", name)]["spec"]["template"]["spec"]
    container = container_of(name)
    prefix = name.replace("-", "_").upper()
    config = found[("ConfigMap", name)]["data"]
    assert config[f"{prefix}_TLS_DIR"] == TLS_DIR
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts[TLS_DIR]["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mounts[TLS_DIR]["name"]]
    assert volume["secret"]["secretName"] == f"swap-tls-{name}"
    # Readable by the pod's group only (the Secret's files take the pod's fsGroup).
    assert volume["secret"]["defaultMode"] == 0o440
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]


def test_envoy_reads_its_certificate_as_its_own_group() -> None:
    pod = resources()[("Deployment", "envoy")]["spec"]["template"]["spec"]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"] == 101
    (volume,) = [v for v in pod["volumes"] if "secret" in v]
    assert volume["secret"] == {"secretName": "swap-tls-envoy", "defaultMode": 0o440}


def test_no_plaintext_and_no_development_mode() -> None:
    for (kind, name), doc in resources().items():
        if kind != "ConfigMap":
            continue
        assert not [key for key in doc["data"] if key.endswith("_PLAINTEXT")], name
        assert all(doc["data"][key] == "false" for key in doc["data"] if key.endswith("_DEV_MODE")), name
    assert resources()[("ConfigMap", "session")]["data"]["SESSION_DEV_MODE"] == "false"


def test_chain_services_answer_only_the_session_service() -> None:
    found = resources()
    for name in ("chain-base", "chain-near"):
        prefix = name.replace("-", "_").upper()
        assert found[("ConfigMap", name)]["data"][f"{prefix}_TLS_CLIENTS"] == "session", name
    for name in ("session", "quote"):
        prefix = name.replace("-", "_").upper()
        allowed = set(found[("ConfigMap", name)]["data"][f"{prefix}_TLS_CLIENTS"].split(","))
        assert {"gateway", "envoy"} <= allowed, name


def test_chain_services_keep_their_send_journal_in_redis() -> None:
    found = resources()
    for name in ("chain-base", "chain-near"):
        prefix = name.replace("-", "_").upper()
        assert found[("ConfigMap", name)]["data"][f"{prefix}_REDIS_URL"] == "redis://redis:6379/0", name


def test_cert_manager_issues_the_secrets_the_workloads_mount() -> None:
    """Optional cert-manager resources: a private CA, and for each identity a Certificate whose Secret has the
    name the workloads mount, the identity as its common name (what <PREFIX>TLS_CLIENTS lists), the Service's
    names for the peers and Envoy's name checks, and localhost's for the probes."""
    docs = documents(CERT_MANAGER)
    assert {doc["apiVersion"] for doc in docs} == {"cert-manager.io/v1"}
    assert all(doc["metadata"]["namespace"] == "swap" for doc in docs)
    issuers = {doc["metadata"]["name"]: doc["spec"] for doc in docs if doc["kind"] == "Issuer"}
    certificates = {doc["metadata"]["name"]: doc["spec"] for doc in docs if doc["kind"] == "Certificate"}
    ca = certificates.pop("swap-ca")
    assert ca["isCA"] is True
    assert issuers[ca["issuerRef"]["name"]] == {"selfSigned": {}}
    assert issuers["swap-ca"] == {"ca": {"secretName": ca["secretName"]}}
    assert set(certificates) == {f"swap-tls-{name}" for name in IDENTITIES}
    for name in IDENTITIES:
        spec = certificates[f"swap-tls-{name}"]
        assert spec["secretName"] == f"swap-tls-{name}"
        assert spec["commonName"] == name
        assert spec["issuerRef"]["name"] == "swap-ca"
        assert {name, f"{name}.swap.svc", "localhost"} <= set(spec["dnsNames"])
        assert ipaddress.ip_address("127.0.0.1") in {ipaddress.ip_address(a) for a in spec["ipAddresses"]}
        assert {"server auth", "client auth"} <= set(spec["usages"])
    mounted = set()
    for workload in WORKLOADS:
        pod = resources()[("Deployment", workload)]["spec"]["template"]["spec"]
        mounted |= {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert {secret for secret in mounted if secret.startswith("swap-tls-")} == {
        f"swap-tls-{name}" for name in IDENTITIES - {"operator"}
    }


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
            if "secret" in volume and not volume["secret"]["secretName"].startswith("swap-tls-"):
                files[name] = volume["secret"]["secretName"]
    assert refs == {
        "SESSION_SECRET_KEY": "swap-session",
        "SESSION_QUOTE_PUBLIC_KEYS": "swap-session",
        "QUOTE_SIGNING_KEY": "swap-quote",
        "GATEWAY_API_KEY_HASHES": "swap-gateway",
    }
    assert files == {"chain-base": "swap-chain-base", "chain-near": "swap-chain-near"}
    for name in ("chain-base", "chain-near"):
        prefix = name.replace("-", "_").upper()
        assert found[("ConfigMap", name)]["data"][f"{prefix}_RESOLVER_KEY_FILE"].startswith(f"/run/secrets/{name}/")
