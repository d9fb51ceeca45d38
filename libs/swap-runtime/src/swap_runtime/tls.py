"""Mutual TLS between the services.

Each service holds one certificate whose common name is its identity (`session`, `quote`, `chain-base`,
`chain-near`, `gateway`, `envoy`, `operator`) and the CA that signed every one of them, in one directory laid
out as a Kubernetes TLS Secret (what cert-manager writes):

    <dir>/tls.crt   the service's certificate (chain)
    <dir>/tls.key   its private key
    <dir>/ca.crt    the CA that signs the services' certificates

A server asks every caller for a certificate signed by that CA (a caller without one fails the handshake) and
may also restrict its methods to some identities: the chain services, which spend the resolver's funds, answer
only the session service. Health checks and reflection stay open to any certificate, so probes and Envoy can
use their own. Plaintext is a development flag (`<PREFIX>_PLAINTEXT=true`); without it and without a
certificate directory a service refuses to start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from swap_runtime.errors import PermissionDenied

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
CA_FILE = "ca.crt"
# Open to any certificate the CA signed, whatever the server's allowed identities.
OPEN_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class TransportConfigError(RuntimeError):
    """Neither certificates nor the plaintext development flag were given."""


class CallerNotAllowed(PermissionDenied):
    """The caller's certificate is valid but names an identity this service does not answer."""


@dataclass(frozen=True)
class Tls:
    """One service's certificate, key and CA, read once at start."""

    cert: bytes
    key: bytes
    ca: bytes

    @classmethod
    def load(cls, directory: Path) -> Tls:
        try:
            return cls(
                cert=(directory / CERT_FILE).read_bytes(),
                key=(directory / KEY_FILE).read_bytes(),
                ca=(directory / CA_FILE).read_bytes(),
            )
        except OSError as exc:
            raise TransportConfigError(
                f"TLS directory {directory} must hold {CERT_FILE}, {KEY_FILE} and {CA_FILE}: {exc}"
            ) from exc

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )


def transport(prefix: str, tls_dir: Path | None, plaintext: bool) -> Tls | None:
    """The service's TLS material, None for plaintext; an error when neither is configured.

    `prefix` is the settings' environment prefix (e.g. "SESSION_"), for the message only.
    """
    if tls_dir is not None:
        return Tls.load(tls_dir)
    if plaintext:
        return None
    raise TransportConfigError(
        f"{prefix}TLS_DIR is required (a directory with {CERT_FILE}, {KEY_FILE} and {CA_FILE}); "
        f"{prefix}PLAINTEXT=true runs without TLS, for development only"
    )


# Every channel between the services pings its connection when it has been quiet for 10 s and drops it when
# no answer comes within 5 s, then reconnects with at most 5 s between attempts: a connection that died
# without a word (a peer gone, a middlebox that forgot it) is replaced within ~15 s, instead of calls timing
# out on it until the operating system gives up on the socket, and a service back after a restart is used
# again within seconds, not after gRPC's default backoff of up to two minutes.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    # gRPC core waits for a ping's ack this long (its keepalive timeout alone is not enforced; default 60 s).
    ("grpc.http2.ping_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)
# What a server lets those pings through with (gRPC servers close a connection that pings more often than
# every 5 minutes by default).
SERVER_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
)


def channel(
    address: str,
    tls: Tls | None,
    *,
    options: Sequence[tuple[str, Any]] = (),
    interceptors: Iterable[grpc.aio.ClientInterceptor] | None = None,
) -> grpc.aio.Channel:
    """A grpc.aio channel to another service: mutual TLS with our certificate, or plaintext in development;
    keepalive and reconnect as CHANNEL_OPTIONS, which `options` override."""
    merged = list({**dict(CHANNEL_OPTIONS), **dict(options)}.items())
    if tls is None:
        return grpc.aio.insecure_channel(address, options=merged, interceptors=interceptors)
    return grpc.aio.secure_channel(address, tls.channel_credentials(), options=merged, interceptors=interceptors)


def parse_identities(value: str) -> frozenset[str]:
    """`"session, operator"` -> {"session", "operator"}; empty means any certificate the CA signed."""
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def peer_identity(ctx: grpc.aio.ServicerContext) -> str | None:
    """The common name of the caller's verified certificate; None on a plaintext connection."""
    auth = ctx.auth_context()
    names = auth.get("x509_common_name") or []
    if not names:
        return None
    first = names[0]
    return first.decode() if isinstance(first, bytes) else str(first)


def check_caller(ctx: grpc.aio.ServicerContext, method: str, allowed: frozenset[str]) -> None:
    """Raises CallerNotAllowed unless the method is open, no identities are configured, or the caller's
    certificate names one of them."""
    if not allowed or method.startswith(OPEN_METHOD_PREFIXES):
        return
    identity = peer_identity(ctx)
    if identity not in allowed:
        raise CallerNotAllowed(
            f"caller {identity or 'without a certificate name'} may not call {method}; "
            f"this service answers {', '.join(sorted(allowed))}",
            reason="CALLER_NOT_ALLOWED",
            metadata={"caller": identity or ""},
        )
