"""Service processes for the local stack and the tests: start one on a free port, wait until its
gRPC health says SERVING, stop it gracefully (SIGTERM) or kill it (SIGKILL) and start it again.

A service given a TLS directory (swap_devnet.pki) serves mutual TLS; one without runs in plaintext, the
development flag."""

from __future__ import annotations

import logging
import os
import random
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from swap_runtime.tls import Tls, channel

from swap_devnet.child import Child, StartStop

log = logging.getLogger(__name__)


_LOWEST_PORT = 10_000
_handed_out: set[int] = set()


def _ephemeral_floor() -> int:
    """The first port the kernel hands to outgoing connections (Linux: ip_local_port_range)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A loopback port nothing listens on, for a service to bind a moment later. It is taken below the
    ephemeral range: a port the kernel hands out for listening (bind to 0) may meanwhile become the source
    port of some outgoing connection, and the service then fails with "Address already in use"."""
    floor = _ephemeral_floor()
    for _ in range(200):
        port = random.randrange(_LOWEST_PORT, floor) if floor > _LOWEST_PORT + 1000 else 0  # noqa: S311 - not a secret
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen: int = sock.getsockname()[1]
        _handed_out.add(chosen)
        return chosen
    raise RuntimeError("no free loopback port below the ephemeral range")


class ServiceProcess(StartStop):
    """`python -m <module>` with `env` on top of ours, its output in `<log_dir>/<name>.log`.

    `tls_dir` sets the service's <PREFIX>_TLS_DIR; without it (and without one already in `env`) the service
    runs in plaintext."""

    def __init__(
        self,
        name: str,
        module: str,
        env: dict[str, str],
        log_dir: Path,
        port: int | None = None,
        startup_timeout: float = 30.0,
        tls_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.module = module
        self.port = port or free_port()
        self.env = env
        self.prefix = module.split(".", 1)[0].upper() + "_"
        if tls_dir is not None:
            self.env[f"{self.prefix}TLS_DIR"] = str(tls_dir)
            self.env.pop(f"{self.prefix}PLAINTEXT", None)
        elif f"{self.prefix}TLS_DIR" not in self.env:
            self.env[f"{self.prefix}PLAINTEXT"] = "true"
        self.log_path = log_dir / f"{name}.log"
        self.startup_timeout = startup_timeout
        self.child = Child(name, self.log_path)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def tls_dir(self) -> Path | None:
        value = self.env.get(f"{self.prefix}TLS_DIR")
        return Path(value) if value else None

    def channel(self, identity_dir: Path | None = None) -> grpc.aio.Channel:
        """A grpc.aio channel to this service: plaintext, or mutual TLS as the identity in `identity_dir`
        (default: the service's own certificate, which its health check and reflection accept)."""
        own = self.tls_dir
        return channel(self.address, Tls.load(identity_dir or own) if own else None)

    def start(self) -> Self:
        self.child.spawn([sys.executable, "-m", self.module], env={**os.environ, **self.env})
        self._await_serving()
        return self

    def _await_serving(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        tls = self.tls_dir
        opened = (
            grpc.secure_channel(self.address, Tls.load(tls).channel_credentials())
            if tls
            else grpc.insecure_channel(self.address)
        )
        with opened as probe:
            stub = health_pb2_grpc.HealthStub(probe)
            while time.monotonic() < deadline:
                if self.child.exited:
                    raise RuntimeError(f"{self.name} exited at start:\n{self.tail()}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"{self.name} not serving after {self.startup_timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        return self.child.tail(lines)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (graceful shutdown), then SIGKILL if it does not exit in time."""
        self.child.stop(timeout)

    def kill(self) -> None:
        self.child.kill()

    def pause(self) -> None:
        self.child.pause()

    def resume(self) -> None:
        self.child.resume()

    @property
    def returncode(self) -> int | None:
        return self.child.returncode

    @property
    def pid(self) -> int | None:
        return self.child.pid


class GatewayProcess(ServiceProcess):
    """The gateway (`python -m gateway.main`, uvicorn): HTTP, so ready is /health answering."""

    def __init__(
        self,
        name: str,
        env: dict[str, str],
        log_dir: Path,
        startup_timeout: float = 30.0,
        tls_dir: Path | None = None,
    ) -> None:
        super().__init__(name, "gateway.main", env, log_dir, startup_timeout=startup_timeout, tls_dir=tls_dir)
        self.env = {**self.env, "GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(self.port)}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def _await_serving(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.child.exited:
                raise RuntimeError(f"{self.name} exited at start:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):  # noqa: S310 - our own http URL
                    return
            except urllib.error.HTTPError:
                return  # answering (503 while a dependency is down) is up
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise TimeoutError(f"{self.name} not answering after {self.startup_timeout}s:\n{self.tail()}")
