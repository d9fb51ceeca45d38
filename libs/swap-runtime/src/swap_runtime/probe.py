"""The health probe of a service's container, run beside the service with the service's own settings:

    python -m swap_runtime.probe QUOTE_ swap.quote.v1.QuoteService

asks the gRPC health service on 127.0.0.1:<QUOTE_PORT> for that service name ("" or no name: the server as a
whole) and exits 0 only when it answers SERVING. It connects as the service connects to its peers: mutual
TLS with the certificate in <PREFIX>TLS_DIR (the server asks every caller for one, and health is open to any
certificate its CA signed), or plaintext when <PREFIX>PLAINTEXT is true, and refuses to run with neither.
The certificate has to name localhost's address (127.0.0.1) among its subject alternative names, as those of
swap_devnet.pki and deploy/k8s/cert-manager.yaml do.

Docker's HEALTHCHECK and the Kubernetes exec probes run it (the kubelet's own gRPC probe cannot present a
client certificate). Any failure exits 1, Docker's "unhealthy", with the reason on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from swap_runtime.tls import TransportConfigError, transport

# The spellings pydantic accepts for a bool, so that the probe reads <PREFIX>PLAINTEXT as the service does.
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no", ""})
UNHEALTHY = 1


class ProbeError(Exception):
    """The probe could not ask, or the answer was not SERVING."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse exits 2, which Docker reserves; a misused probe is an unhealthy container.
        self.print_usage(sys.stderr)
        self.exit(UNHEALTHY, f"{self.prog}: error: {message}\n")


def _flag(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ProbeError(f"{name}={value!r} is not a boolean")


def check(prefix: str, service: str, env: Mapping[str, str], timeout_s: float = 3.0) -> str:
    """The health of `service` on 127.0.0.1:<prefix>PORT, as named in `env`; raises ProbeError unless SERVING."""
    port = env.get(f"{prefix}PORT", "").strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ProbeError(f"{prefix}PORT must be the service's port (got {port!r})")
    tls_dir = env.get(f"{prefix}TLS_DIR", "").strip()
    try:
        tls = transport(
            prefix, Path(tls_dir) if tls_dir else None, _flag(f"{prefix}PLAINTEXT", env.get(f"{prefix}PLAINTEXT", ""))
        )
    except TransportConfigError as exc:
        raise ProbeError(str(exc)) from exc
    address = f"127.0.0.1:{port}"
    # A proxy from the environment has no business with a loopback call.
    options = [("grpc.enable_http_proxy", 0)]
    channel = (
        grpc.insecure_channel(address, options=options)
        if tls is None
        else grpc.secure_channel(address, tls.channel_credentials(), options=options)
    )
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError as err:
            raise ProbeError(f"{address}: {err.code().name}: {err.details()}") from err
    status: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        raise ProbeError(f"{address} {service or '(server)'}: {status}")
    return status


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = _Parser(prog="python -m swap_runtime.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("prefix", help='the service\'s settings prefix, e.g. "QUOTE_"')
    parser.add_argument("service", nargs="?", default="", help="gRPC service name; empty: the server as a whole")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer")
    args = parser.parse_args(argv)
    prefix = args.prefix if args.prefix.endswith("_") else f"{args.prefix}_"
    try:
        status = check(prefix, args.service, os.environ if env is None else env, args.timeout)
    except ProbeError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return UNHEALTHY
    print(status)
    return 0


if __name__ == "__main__":
    sys.exit(main())
