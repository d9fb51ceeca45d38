"""deploy/docker: each image pins its base images and uv, builds its venv from the workspace lock with
`uv sync --frozen --no-dev`, ships only that venv to a final stage that runs as a non-root user, and declares
a HEALTHCHECK. The health check commands themselves are run here against real servers: the gRPC images' probe
(swap_runtime.probe) over mutual TLS with the service's own certificate, and in plaintext only when asked."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2
from swap_devnet.procs import free_port

from tests.integration.deploy.common import DOCKER_DIR, ENVOY_IMAGE, REPO, FakeGateway, HealthStub, Pki

pytestmark = pytest.mark.integration

GRPC_IMAGES = {
    "chain-base": ("swap-chain-base", "chain_base.main", "CHAIN_BASE"),
    "chain-near": ("swap-chain-near", "chain_near.main", "CHAIN_NEAR"),
    "quote": ("swap-quote", "quote.main", "QUOTE"),
    "session": ("swap-session", "session.main", "SESSION"),
}
GRPC_SERVICE_NAMES = {
    "chain-base": "swap.chain.v1.ChainService",
    "chain-near": "swap.chain.v1.ChainService",
    "quote": "swap.quote.v1.QuoteService",
    "session": "swap.session.v1.SessionService",
}
PYTHON_IMAGES = {
    **GRPC_IMAGES,
    "gateway": ("swap-gateway", "gateway.main", "GATEWAY"),
    "devnet": ("swap-devnet", "", ""),
}
PINNED_TAG = re.compile(r"^[a-z0-9./-]+:v?\d+(\.\d+)+(-[a-z0-9.-]+)?$")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse(path: Path) -> list[Stage]:
    """Stages with their instructions (continuations joined, comments dropped)."""
    text = re.sub(
        r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    )
    stages: list[Stage] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None))
        else:
            assert stages, f"{path.name}: {keyword} before FROM"
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def healthcheck(path: Path) -> list[str]:
    (check,) = parse(path)[-1].all("HEALTHCHECK")
    _, _, command = check.partition("CMD ")
    argv: list[str] = json.loads(command)
    return argv


def dockerfiles() -> list[Path]:
    return sorted(DOCKER_DIR.glob("*.Dockerfile"))


def test_one_dockerfile_per_image() -> None:
    assert {p.name.removesuffix(".Dockerfile") for p in dockerfiles()} == {*PYTHON_IMAGES, "envoy"}


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_base_images_are_pinned(path: Path) -> None:
    stages = parse(path)
    names = {stage.name for stage in stages if stage.name}
    for stage in stages:
        if stage.base in names:
            continue
        assert PINNED_TAG.match(stage.base), f"{path.name}: unpinned base {stage.base}"
        if stage.base.startswith("python:"):
            assert stage.base.startswith("python:3.11.") and stage.base.endswith("-slim-bookworm"), stage.base


def test_one_python_everywhere() -> None:
    bases = {stage.base for path in dockerfiles() for stage in parse(path) if stage.base.startswith("python:")}
    assert len(bases) == 1, bases


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: p.name)
def test_runs_as_non_root_with_a_healthcheck(path: Path) -> None:
    final = parse(path)[-1]
    (user,) = final.all("USER")
    uid = user.split(":")[0]
    assert uid not in {"root", "0"}, f"{path.name}: USER {user}"
    assert uid.isdigit(), "numeric, so that Kubernetes runAsNonRoot can check it"
    assert len(final.all("HEALTHCHECK")) == 1
    assert healthcheck(path)


@pytest.mark.parametrize("image", sorted(PYTHON_IMAGES))
def test_python_images_build_from_the_lock(image: str) -> None:
    package, module, prefix = PYTHON_IMAGES[image]
    stages = parse(DOCKER_DIR / f"{image}.Dockerfile")
    build = next(stage for stage in stages if stage.name == "build")
    runs = " ".join(build.all("RUN"))
    uv_version = re.search(r"^UV_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert uv_version is not None
    assert f"pip install uv=={uv_version.group(1)}" in runs
    sync = re.search(r"uv sync (.+)$", runs)
    assert sync is not None
    flags = sync.group(1).split()
    assert {"--frozen", "--no-dev", "--no-editable"} <= set(flags)
    assert flags[flags.index("--package") + 1] == package
    locked = {p["name"] for p in tomllib.loads((REPO / "uv.lock").read_text())["package"]}
    assert package in locked, f"{package} is not in uv.lock"

    final = stages[-1]
    copies = final.all("COPY")
    assert "--from=build /opt/venv /opt/venv" in copies
    assert not any(c.startswith(". ") or c.startswith("--from=build /src") for c in copies), copies
    if module:
        (entrypoint,) = final.all("ENTRYPOINT")
        assert json.loads(entrypoint) == ["python", "-m", module]
        env = " ".join(final.all("ENV"))
        assert f"{prefix}_HOST=0.0.0.0" in env


def test_envoy_image_is_the_wheel_version() -> None:
    stages = parse(DOCKER_DIR / "envoy.Dockerfile")
    assert [stage.base for stage in stages] == [ENVOY_IMAGE]
    copies = stages[0].all("COPY")
    assert "deploy/envoy/envoy.yaml /etc/envoy/envoy.yaml" in copies
    assert "deploy/envoy/protos.pb /etc/envoy/protos.pb" in copies


def test_dockerignore_keeps_what_the_images_copy() -> None:
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"
    kept = {rule[1:] for rule in rules if rule.startswith("!")}
    members = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    for member in members:
        assert any(member == k or member.startswith(f"{k}/") for k in kept), f"workspace member {member} left out"
    for needed in ("pyproject.toml", "uv.lock", "package.json", "package-lock.json", "deploy/envoy/envoy.yaml"):
        assert needed in kept, needed


async def run(argv: list[str], env: dict[str, str], timeout: float = 20.0) -> tuple[int, str]:
    """The exit code and stderr of `argv` run with exactly `env`."""
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace")


def python_check(image: str) -> list[str]:
    argv = healthcheck(DOCKER_DIR / f"{image}.Dockerfile")
    assert argv[0] == "python"
    # The image's python is the venv's: here, this interpreter has the same packages.
    return [sys.executable, *argv[1:]]


@pytest.mark.parametrize("image", sorted(GRPC_IMAGES))
def test_grpc_healthcheck_is_the_probe_of_the_service(image: str) -> None:
    prefix = GRPC_IMAGES[image][2]
    assert healthcheck(DOCKER_DIR / f"{image}.Dockerfile") == [
        "python",
        "-m",
        "swap_runtime.probe",
        f"{prefix}_",
        GRPC_SERVICE_NAMES[image],
    ]
    assert importlib.util.find_spec("swap_runtime.probe") is not None


@pytest.mark.parametrize("image", sorted(GRPC_IMAGES))
async def test_grpc_healthcheck_over_mutual_tls(image: str, tls_health_stub: HealthStub, pki: Pki) -> None:
    """As the container runs it: the service's own certificate directory in <PREFIX>_TLS_DIR."""
    prefix = GRPC_IMAGES[image][2]
    argv = python_check(image)
    env = {f"{prefix}_PORT": str(tls_health_stub.port), f"{prefix}_TLS_DIR": str(pki.dir(image))}
    assert await run(argv, env) == (0, "")
    code, err = await run(argv, {**env, f"{prefix}_PORT": str(free_port())})
    assert code == 1
    assert "UNAVAILABLE" in err


@pytest.mark.parametrize("image", sorted(GRPC_IMAGES))
async def test_grpc_healthcheck_in_plaintext_development(image: str, health_stub: HealthStub) -> None:
    prefix = GRPC_IMAGES[image][2]
    argv = python_check(image)
    assert await run(argv, {f"{prefix}_PORT": str(health_stub.port), f"{prefix}_PLAINTEXT": "true"}) == (0, "")


async def test_grpc_healthcheck_uses_tls_when_both_are_set(tls_health_stub: HealthStub, pki: Pki) -> None:
    """The service serves TLS whenever it has a certificate directory; so does its probe."""
    env = {"QUOTE_PORT": str(tls_health_stub.port), "QUOTE_TLS_DIR": str(pki.dir("quote")), "QUOTE_PLAINTEXT": "1"}
    assert (await run(python_check("quote"), env))[0] == 0


@pytest.mark.parametrize(
    ("server", "setting", "message"),
    [
        # A plaintext probe gets no answer from a server that wants a certificate, and the other way round.
        ("tls", {"QUOTE_PLAINTEXT": "true"}, "UNAVAILABLE"),
        ("plaintext", {"QUOTE_TLS_DIR": "quote"}, "UNAVAILABLE"),
        # A certificate from another CA is refused by the server, which the probe's CA does not vouch for.
        ("tls", {"QUOTE_TLS_DIR": "stranger"}, "UNAVAILABLE"),
        # Neither a certificate nor the development flag: the probe refuses, as the service does.
        ("tls", {}, "QUOTE_TLS_DIR is required"),
        ("tls", {"QUOTE_PLAINTEXT": "false"}, "QUOTE_TLS_DIR is required"),
        ("tls", {"QUOTE_PLAINTEXT": "maybe"}, "not a boolean"),
        ("tls", {"QUOTE_TLS_DIR": "missing"}, "must hold tls.crt, tls.key and ca.crt"),
    ],
    ids=["plaintext-to-tls", "tls-to-plaintext", "other-ca", "no-transport", "plaintext-off", "bad-flag", "no-files"],
)
async def test_grpc_healthcheck_fails(
    server: str,
    setting: dict[str, str],
    message: str,
    tls_health_stub: HealthStub,
    health_stub: HealthStub,
    pki: Pki,
    tmp_path: Path,
) -> None:
    dirs = {"quote": pki.dir("quote"), "stranger": pki.stranger, "missing": tmp_path}
    env = {name: str(dirs[value]) if name.endswith("_TLS_DIR") else value for name, value in setting.items()}
    port = (tls_health_stub if server == "tls" else health_stub).port
    code, err = await run(python_check("quote"), {"QUOTE_PORT": str(port), **env})
    assert code == 1, "1 is Docker's unhealthy (2 is reserved)"
    assert message in err


async def test_grpc_healthcheck_fails_without_a_port(pki: Pki) -> None:
    code, err = await run(python_check("quote"), {"QUOTE_TLS_DIR": str(pki.dir("quote"))})
    assert code == 1
    assert "QUOTE_PORT" in err


async def test_grpc_healthcheck_fails_when_not_serving(tls_health_stub: HealthStub, pki: Pki) -> None:
    argv = python_check("quote")
    env = {"QUOTE_PORT": str(tls_health_stub.port), "QUOTE_TLS_DIR": str(pki.dir("quote"))}
    await tls_health_stub.servicer.set("swap.quote.v1.QuoteService", health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        code, err = await run(argv, env)
    finally:
        await tls_health_stub.servicer.set("swap.quote.v1.QuoteService", health_pb2.HealthCheckResponse.SERVING)
    assert code == 1
    assert "NOT_SERVING" in err


async def test_probe_of_an_unknown_service_fails(tls_health_stub: HealthStub, pki: Pki) -> None:
    env = {"QUOTE_PORT": str(tls_health_stub.port), "QUOTE_TLS_DIR": str(pki.dir("quote"))}
    argv = [sys.executable, "-m", "swap_runtime.probe", "QUOTE_"]
    assert await run(argv, env) == (0, "")
    code, err = await run([*argv, "swap.nothing.v1.Nothing"], env)
    assert code == 1
    assert "NOT_FOUND" in err
    code, _ = await run([*argv[:3]], env)
    assert code == 1, "a probe without its arguments is unhealthy, not Docker's reserved 2"


async def test_gateway_healthcheck_command_works(fake_gateway: FakeGateway) -> None:
    argv = python_check("gateway")
    assert argv[1] == "-c"
    assert (await run(argv, {"GATEWAY_PORT": str(fake_gateway.port)}))[0] == 0
    assert "/health" in fake_gateway.requests
    assert (await run(argv, {"GATEWAY_PORT": str(free_port())}))[0] != 0


@pytest.mark.parametrize("image", sorted(m for m in PYTHON_IMAGES if PYTHON_IMAGES[m][1]))
def test_entrypoint_module_exists(image: str) -> None:
    module = PYTHON_IMAGES[image][1]
    assert importlib.util.find_spec(module) is not None, module
