"""Stand-ins the deploy tests put behind Envoy and under the images' health checks: a test CA with a
certificate per identity, gRPC servers that only answer health (for every service name), in plaintext or
mutual TLS, and an HTTP app in the gateway's place (REST, a WebSocket echo, /health and /metrics)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from aiohttp import WSMsgType, web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from swap_devnet.pki import IDENTITIES, Authority, issue_all
from swap_devnet.procs import free_port

from tests.integration.deploy.common import (
    DEPLOY_KEY,
    GRPC_CLUSTER_NAMES,
    FakeGateway,
    HealthServer,
    HealthStub,
    Pki,
)

SERVICE_NAMES = ("swap.session.v1.SessionService", "swap.quote.v1.QuoteService", "swap.chain.v1.ChainService")


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA with a certificate for every identity (what `make certs` writes), one for a stand-in upstream named
    after all four gRPC clusters, and a certificate from another CA."""
    base = tmp_path_factory.mktemp("pki")
    authority = Authority.create()
    authority.save(base / "certs" / "ca")
    for identity in IDENTITIES:
        authority.issue(identity, base / "certs" / identity)
    upstream = authority.issue("session", base / "upstream", hosts=GRPC_CLUSTER_NAMES).directory
    stranger = issue_all(base / "stranger", identities=["session"])["session"].directory
    return Pki(base / "certs", upstream, stranger)


@asynccontextmanager
async def serve_health(tls_dir: Path | None) -> AsyncIterator[HealthStub]:
    """A grpc.aio server on a free port reporting SERVING for "" and every swap service name: plaintext, or
    with the certificate in `tls_dir`, asking every caller for one its CA signed (as the services do)."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if tls_dir is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        credentials = grpc.ssl_server_credentials(
            [((tls_dir / "tls.key").read_bytes(), (tls_dir / "tls.crt").read_bytes())],
            root_certificates=(tls_dir / "ca.crt").read_bytes(),
            require_client_auth=True,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    try:
        yield HealthStub(server, servicer, port, tls_dir)
    finally:
        await server.stop(0)


@pytest.fixture(scope="session")
def health_server() -> HealthServer:
    """serve_health, for a test that needs a stand-in of its own."""
    return serve_health


@pytest.fixture(scope="session")
async def health_stub() -> AsyncIterator[HealthStub]:
    """A plaintext health-only server."""
    async with serve_health(None) as stub:
        yield stub


@pytest.fixture(scope="session")
async def tls_health_stub(pki: Pki) -> AsyncIterator[HealthStub]:
    """A health-only server on mutual TLS, with the certificate named after every gRPC cluster."""
    async with serve_health(pki.upstream) as stub:
        yield stub


@pytest.fixture(scope="session")
async def fake_gateway() -> AsyncIterator[FakeGateway]:
    """GET /api/v1/echo answers what it received, /ws echoes text frames, /health and /metrics answer 200."""
    gateway = FakeGateway(free_port())

    async def echo(request: web.Request) -> web.Response:
        gateway.requests.append(request.path_qs)
        return web.json_response(
            {
                "path": request.path_qs,
                "forwarded_for": request.headers.get("x-forwarded-for"),
                "request_id": request.headers.get("x-request-id"),
            }
        )

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        gateway.requests.append(request.path_qs)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                await ws.send_str(f"echo:{message.data}")
        return ws

    async def authz(request: web.Request) -> web.Response:
        """The gateway's ext_authz endpoint: DEPLOY_KEY is tenant "deploy", anything else 401."""
        gateway.requests.append(request.path_qs)
        gateway.authz_headers.append(dict(request.headers))
        if request.headers.get("x-api-key") == DEPLOY_KEY:
            return web.Response(status=200, headers={"x-tenant": "deploy", "x-tenant-role": "tenant"})
        body = {"error": {"code": "UNAUTHENTICATED", "reason": "API_KEY_INVALID", "message": "no", "field": None}}
        return web.json_response(body, status=401)

    async def ok(request: web.Request) -> web.Response:
        gateway.requests.append(request.path_qs)
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/api/v1/echo", echo)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/health", ok)
    app.router.add_get("/metrics", ok)
    app.router.add_route("*", "/internal/authz/check{original:.*}", authz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", gateway.port).start()
    try:
        yield gateway
    finally:
        await runner.cleanup()
