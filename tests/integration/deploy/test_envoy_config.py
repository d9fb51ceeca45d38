"""The Envoy configurations: both pass `envoy --mode validate` (the real binary of the version compose runs),
the loopback template keeps the same routes, filters, health checks and upstream TLS as the compose one,
Envoy speaks mutual TLS to every gRPC service and accepts only a certificate named after it, and the
transcoder's descriptor set is what scripts/build_descriptors.sh builds from protos/."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from swap_devnet.envoy import Envoy, EnvoyError, envoy_binary

from tests.integration.deploy.common import DESCRIPTOR, ENVOY_DIR, GRPC_CLUSTER_NAMES, K8S_DIR, REPO, Pki, render_local

pytestmark = pytest.mark.integration

GRPC_CLUSTERS = {
    "session": "swap.session.v1.SessionService",
    "quote": "swap.quote.v1.QuoteService",
    "chain-base": "swap.chain.v1.ChainService",
    "chain-near": "swap.chain.v1.ChainService",
}
assert tuple(GRPC_CLUSTERS) == GRPC_CLUSTER_NAMES
# Where compose and Kubernetes mount Envoy's certificate, its key and the CA.
MOUNTED_TLS_DIR = "/etc/envoy/tls"


def validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def compose_config(tmp_path: Path, pki: Pki) -> Path:
    """deploy/envoy/envoy.yaml with the descriptor at its path in this checkout and the certificate files in a
    test CA's envoy directory instead of /etc/envoy: validate mode opens both, and nothing else in the file
    depends on where it runs."""
    text = (ENVOY_DIR / "envoy.yaml").read_text()
    assert text.count("/etc/envoy/protos.pb") == 1
    assert text.count(f"{MOUNTED_TLS_DIR}/") == 3 * len(GRPC_CLUSTERS)
    path = tmp_path / "envoy.yaml"
    path.write_text(
        text.replace("/etc/envoy/protos.pb", str(DESCRIPTOR)).replace(f"{MOUNTED_TLS_DIR}/", f"{pki.dir('envoy')}/")
    )
    return path


def hcm(config: dict[str, Any]) -> dict[str, Any]:
    (listener,) = config["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (manager,) = chain["filters"]
    typed: dict[str, Any] = manager["typed_config"]
    return typed


def test_compose_config_validates(tmp_path: Path, pki: Pki) -> None:
    result = validate(compose_config(tmp_path, pki))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


def test_compose_config_needs_its_certificate(tmp_path: Path) -> None:
    """Validation reads the certificate files: without them (as here, where nothing is mounted) it fails."""
    config = tmp_path / "envoy.yaml"
    config.write_text((ENVOY_DIR / "envoy.yaml").read_text().replace("/etc/envoy/protos.pb", str(DESCRIPTOR)))
    result = validate(config)
    assert result.returncode != 0
    assert f"{MOUNTED_TLS_DIR}/" in result.stdout + result.stderr


def test_local_template_validates(tmp_path: Path, pki: Pki) -> None:
    config = tmp_path / "envoy.local.yaml"
    config.write_text(render_local(tmp_path, pki.dir("envoy")))
    result = validate(config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_validation_can_fail(tmp_path: Path, pki: Pki) -> None:
    """The check above would catch a mistake: the same config with a route to a cluster that does not exist."""
    config = yaml.safe_load(compose_config(tmp_path, pki).read_text())
    hcm(config)["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["cluster"] = "no-such-cluster"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(config))
    result = validate(broken)
    assert result.returncode != 0
    assert "no-such-cluster" in result.stdout + result.stderr


def test_template_placeholders_are_all_filled(tmp_path: Path) -> None:
    rendered = render_local(tmp_path, tmp_path / "tls")
    assert "${" not in rendered
    assert str(DESCRIPTOR) in rendered
    assert rendered.count(f"{tmp_path / 'tls'}/") == 3 * len(GRPC_CLUSTERS)


def test_launcher_rejects_missing_ports(tmp_path: Path) -> None:
    with pytest.raises(EnvoyError, match="chain-near"):
        Envoy(tmp_path, {"gateway": 1, "session": 2, "quote": 3, "chain-base": 4}, tls_dir=tmp_path).render()


def upstream_tls(cluster: dict[str, Any]) -> dict[str, Any] | None:
    """A cluster's UpstreamTlsContext, None without a transport socket."""
    socket = cluster.get("transport_socket")
    if socket is None:
        return None
    assert socket["name"] == "envoy.transport_sockets.tls"
    context: dict[str, Any] = socket["typed_config"]
    assert context["@type"] == "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
    return context


def test_local_template_matches_compose_config(tmp_path: Path) -> None:
    """Same routes, filters, CORS, upstream protocols and TLS; only addresses, the certificate directory and
    health-check pacing differ."""
    compose = yaml.safe_load((ENVOY_DIR / "envoy.yaml").read_text())
    local = yaml.safe_load(render_local(tmp_path, tmp_path / "tls").replace(str(tmp_path / "tls"), MOUNTED_TLS_DIR))
    compose_hcm, local_hcm = hcm(compose), hcm(local)
    assert compose_hcm["route_config"] == local_hcm["route_config"]
    filters = [copy.deepcopy(hcm["http_filters"]) for hcm in (compose_hcm, local_hcm)]
    for chain in filters:
        for item in chain:
            item["typed_config"].pop("proto_descriptor", None)
    assert filters[0] == filters[1]
    assert {k: v for k, v in compose_hcm.items() if k != "http_filters"} == {
        k: v for k, v in local_hcm.items() if k != "http_filters"
    }

    def shape(cluster: dict[str, Any]) -> dict[str, Any]:
        (check,) = cluster["health_checks"]
        kind = {k: v for k, v in check.items() if k.endswith("_health_check")}
        return {
            "protocol": cluster.get("typed_extension_protocol_options"),
            "lb": cluster["common_lb_config"],
            "check": kind,
            "tls": upstream_tls(cluster),
            "port": cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"],
        }

    compose_clusters = {c["name"]: shape(c) for c in compose["static_resources"]["clusters"]}
    local_clusters = {c["name"]: shape(c) for c in local["static_resources"]["clusters"]}
    assert compose_clusters.keys() == local_clusters.keys() == {"gateway", *GRPC_CLUSTERS}
    for name, compose_cluster in compose_clusters.items():
        local_cluster = local_clusters[name]
        assert compose_cluster.pop("port") != local_cluster.pop("port")
        assert compose_cluster == local_cluster, name


@pytest.mark.parametrize("source", ["compose", "local"])
def test_grpc_clusters_speak_mutual_tls(source: str, tmp_path: Path) -> None:
    """Each gRPC cluster shows Envoy's certificate, trusts only the CA and accepts only an upstream whose
    certificate names the cluster (the service's compose and Kubernetes name); the gateway speaks plain HTTP
    inside the network."""
    tls_dir = MOUNTED_TLS_DIR if source == "compose" else str(tmp_path / "tls")
    text = (ENVOY_DIR / "envoy.yaml").read_text() if source == "compose" else render_local(tmp_path, Path(tls_dir))
    clusters = {c["name"]: c for c in yaml.safe_load(text)["static_resources"]["clusters"]}
    for name in GRPC_CLUSTERS:
        context = upstream_tls(clusters[name])
        assert context is not None, name
        assert context["sni"] == name
        common = context["common_tls_context"]
        assert common["tls_certificates"] == [
            {"certificate_chain": {"filename": f"{tls_dir}/tls.crt"}, "private_key": {"filename": f"{tls_dir}/tls.key"}}
        ]
        validation = common["validation_context"]
        assert validation["trusted_ca"] == {"filename": f"{tls_dir}/ca.crt"}
        assert validation["match_typed_subject_alt_names"] == [{"san_type": "DNS", "matcher": {"exact": name}}]
    assert upstream_tls(clusters["gateway"]) is None


def test_kubernetes_mounts_envoys_certificate_where_the_config_reads_it() -> None:
    (deployment,) = [
        doc for doc in yaml.safe_load_all((K8S_DIR / "envoy.yaml").read_text()) if doc["kind"] == "Deployment"
    ]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert mounts["tls"] == MOUNTED_TLS_DIR
    assert volumes["tls"]["secret"]["secretName"] == "swap-tls-envoy"


@pytest.mark.parametrize("source", ["compose", "local"])
def test_edge_policy(source: str, tmp_path: Path) -> None:
    """What the edge promises: gRPC clusters over HTTP/2 with active gRPC health checks and no panic routing,
    the chain services never routed, WatchSession without a deadline, /ws upgraded, the transcoder on quote."""
    text = (ENVOY_DIR / "envoy.yaml").read_text() if source == "compose" else render_local(tmp_path, tmp_path)
    config = yaml.safe_load(text)
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    for name, service in GRPC_CLUSTERS.items():
        cluster = clusters[name]
        options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert "http2_protocol_options" in options["explicit_http_config"], name
        (check,) = cluster["health_checks"]
        assert check["grpc_health_check"]["service_name"] == service, name
    for cluster in clusters.values():
        assert cluster["common_lb_config"]["healthy_panic_threshold"]["value"] == 0

    manager = hcm(config)
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    routed = {route["route"]["cluster"] for route in routes if "route" in route}
    assert routed == {"gateway", "session", "quote"}

    def first_match(path: str) -> dict[str, Any]:
        for route in routes:
            match = route["match"]
            if ("path" in match and match["path"] == path) or ("prefix" in match and path.startswith(match["prefix"])):
                return dict(route)
        raise AssertionError(f"no route for {path}")

    assert first_match("/swap.chain.v1.ChainService/CreateLock")["direct_response"]["status"] == 404
    assert first_match("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")["direct_response"]
    watch = first_match("/swap.session.v1.SessionService/WatchSession")["route"]
    assert watch["cluster"] == "session" and watch["timeout"] == "0s" and "idle_timeout" in watch
    assert first_match("/swap.session.v1.SessionService/GetSession")["route"]["timeout"] != "0s"
    assert first_match("/swap.quote.v1.QuoteService/GetQuote")["route"]["cluster"] == "quote"
    ws = first_match("/ws")["route"]
    assert ws["cluster"] == "gateway" and ws["upgrade_configs"] == [{"upgrade_type": "websocket"}]
    assert first_match("/api/v1/quotes")["route"]["cluster"] == "gateway"
    assert first_match("/metrics")["direct_response"]["status"] == 404

    filters = [f["name"] for f in manager["http_filters"]]
    assert filters == [
        "envoy.filters.http.health_check",
        "envoy.filters.http.cors",
        "envoy.filters.http.grpc_web",
        "envoy.filters.http.ext_authz",
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.router",
    ]
    transcoder = manager["http_filters"][4]["typed_config"]
    assert transcoder["services"] == ["swap.quote.v1.QuoteService"]

    # The API key: every session and quote route (gRPC, gRPC-Web, transcoded) goes through ext_authz, which
    # asks the gateway and never lets a request through when the gateway does not answer.
    authz = manager["http_filters"][3]["typed_config"]
    assert authz["failure_mode_allow"] is False
    assert authz["http_service"]["server_uri"]["cluster"] == "gateway"
    assert authz["http_service"]["path_prefix"] == "/internal/authz/check"
    upstream = authz["http_service"]["authorization_response"]["allowed_upstream_headers"]["patterns"]
    assert {p["exact"] for p in upstream} == {"x-tenant", "x-tenant-role"}
    for route in routes:
        disabled = route.get("typed_per_filter_config", {}).get("envoy.filters.http.ext_authz", {}).get("disabled")
        guarded = route.get("route", {}).get("cluster") in {"session", "quote"} and "Health" not in str(route["match"])
        assert bool(disabled) is not guarded, route["match"]
    assert first_match("/internal/authz/check/x")["direct_response"]["status"] == 404
    assert manager["preserve_external_request_id"] is True
    assert manager["local_reply_config"]["mappers"]


def test_descriptor_set_is_current() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "build_descriptors.sh"), "--check"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
