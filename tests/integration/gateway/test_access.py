"""API keys, rate limits, request ids, security headers, CORS and the unauthenticated routes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from swap_devnet.procs import GatewayProcess, free_port
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.fixtures.gateway import API_KEY, HASHED_KEY, TENANT, WRONG_KEY, GatewayFactory, gateway_env

pytestmark = pytest.mark.integration

EXPECTED_API_ROUTES = {
    ("POST", "/api/v1/quotes"),
    ("POST", "/api/v1/sessions"),
    ("GET", "/api/v1/sessions"),
    ("GET", "/api/v1/sessions/{session_id}"),
    ("POST", "/api/v1/sessions/{session_id}/execute"),
    ("GET", "/api/v1/assets"),
    ("POST", "/api/v1/sessions/{session_id}/cancel"),
    ("POST", "/api/v1/sessions/{session_id}/secret"),
}


async def api_routes(client: httpx.AsyncClient) -> set[tuple[str, str]]:
    doc = (await client.get("/openapi.json")).json()
    return {(m.upper(), p) for p, ops in doc["paths"].items() if p.startswith("/api/") for m in ops}


def assert_error(reply: httpx.Response, status: int, code: str, reason: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    error: dict[str, Any] = reply.json()["error"]
    assert set(error) == {"code", "reason", "message", "field"}
    assert (error["code"], error["reason"]) == (code, reason), error
    assert error["message"]
    return error


async def test_every_api_route_refuses_a_missing_or_wrong_key(gateway: GatewayProcess) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        routes = await api_routes(client)
        assert routes == EXPECTED_API_ROUTES
        for method, template in sorted(routes | {("GET", "/api/v1/nosuch"), ("DELETE", "/api/v1/quotes")}):
            path = template.replace("{session_id}", "0" * 32)
            # A malformed body must not get past the key check: 401 comes first.
            missing = await client.request(
                method, path, content=b"{not json", headers={"content-type": "application/json"}
            )
            assert_error(missing, 401, "UNAUTHENTICATED", "API_KEY_MISSING")
            wrong = await client.request(method, path, json={}, headers={"X-API-Key": WRONG_KEY})
            assert_error(wrong, 401, "UNAUTHENTICATED", "API_KEY_INVALID")
            # The query parameter is for the WebSocket only.
            in_query = await client.request(method, path, params={"api_key": API_KEY})
            assert in_query.status_code == 401
        for key in (API_KEY, HASHED_KEY):
            found = await client.get("/api/v1/sessions", headers={"X-API-Key": key})
            assert found.status_code == 200, found.text


async def test_websocket_refuses_a_missing_or_wrong_key(gateway: GatewayProcess) -> None:
    for url, headers in (
        (gateway.ws_url, {}),
        (gateway.ws_url, {"X-API-Key": WRONG_KEY}),
        (f"{gateway.ws_url}?api_key={WRONG_KEY}", {}),
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body or b"{}")["error"]["code"] == "UNAUTHENTICATED"
    for url, headers in ((f"{gateway.ws_url}?api_key={API_KEY}", {}), (gateway.ws_url, {"X-API-Key": HASHED_KEY})):
        async with connect(url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"op": "ping", "args": []}))
            pong = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert pong["event"] == "pong" and pong["channel"] == "session"


async def test_past_the_rate_limit_429_with_retry_after(stack: Any, gateway_factory: GatewayFactory) -> None:
    # The hashed key as another tenant's: limits are per tenant.
    other_tenant = f"gw-other:{hashlib.sha256(HASHED_KEY.encode()).hexdigest()}"
    limited = gateway_factory(
        "gateway-limited", gateway_env(stack, GATEWAY_RATE_LIMIT="5/minute", GATEWAY_API_KEY_HASHES=other_tenant)
    )
    async with httpx.AsyncClient(base_url=limited.url) as client:
        for _ in range(5):
            ok = await client.get("/api/v1/sessions/" + "0" * 32, headers={"X-API-Key": API_KEY})
            assert ok.status_code == 404, ok.text
        refused = await client.get("/api/v1/sessions", headers={"X-API-Key": API_KEY})
        error = assert_error(refused, 429, "RESOURCE_EXHAUSTED", "RATE_LIMITED")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60, refused.headers
        assert error["field"] is None
        with pytest.raises(InvalidStatus) as ws_refused:
            async with connect(limited.ws_url, additional_headers={"X-API-Key": API_KEY}):
                pass
        assert ws_refused.value.response.status_code == 429
        # Limits are per tenant (each of these keys is its own), and the unauthenticated routes have none.
        other = await client.get("/api/v1/sessions", headers={"X-API-Key": HASHED_KEY})
        assert other.status_code == 200
        assert (await client.get("/health")).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert "gateway_rate_limited_requests_total 2.0" in metrics


async def test_strangers_are_rate_limited_per_address(stack: Any, gateway_factory: GatewayFactory) -> None:
    """200 requests without a valid key from one client: 401 up to the limit of its address, then 429 with
    Retry-After, also at the ext_authz endpoint Envoy asks; a client with a valid key is not held up."""
    limited = gateway_factory("gateway-strangers", gateway_env(stack, GATEWAY_ANON_RATE_LIMIT="20/minute"))
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=limited.url) as client:
        for i in range(200):
            headers = {"X-API-Key": f"{WRONG_KEY}-{i}"} if i % 2 else {}
            reply = await client.get("/api/v1/sessions", headers=headers)
            statuses.append(reply.status_code)
            if reply.status_code == 429:
                assert 1 <= int(reply.headers["Retry-After"]) <= 60
                assert_error(reply, 429, "RESOURCE_EXHAUSTED", "RATE_LIMITED")
        assert statuses == [401] * 20 + [429] * 180
        authz = await client.get(
            "/internal/authz/check/swap.session.v1.SessionService/GetSession", headers={"X-API-Key": WRONG_KEY}
        )
        assert authz.status_code == 429 and authz.headers["Retry-After"]
        with pytest.raises(InvalidStatus) as ws_refused:
            async with connect(limited.ws_url, additional_headers={"X-API-Key": WRONG_KEY}):
                pass
        assert ws_refused.value.response.status_code == 429
        assert (await client.get("/api/v1/sessions", headers={"X-API-Key": API_KEY})).status_code == 200
        allowed = await client.post(
            "/internal/authz/check/swap.session.v1.SessionService/GetSession", headers={"X-API-Key": API_KEY}
        )
        assert allowed.status_code == 200
        assert allowed.headers["x-tenant"] == TENANT and allowed.headers["x-tenant-role"] == "tenant"


async def test_websocket_messages_count_against_the_rate_limit(stack: Any, gateway_factory: GatewayFactory) -> None:
    """The handshake and every message after it count as requests of the tenant: past the limit a message
    is answered with a RATE_LIMITED error event and dropped; the connection stays open."""
    limited = gateway_factory("gateway-ws-limit", gateway_env(stack, GATEWAY_RATE_LIMIT="6/minute"))
    async with connect(limited.ws_url, additional_headers={"X-API-Key": API_KEY}) as ws:
        answers = []
        for i in range(8):
            await ws.send(json.dumps({"op": "ping", "channel": "session", "args": [f"{i:032x}"]}))
            answers.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    assert [a["event"] for a in answers] == ["pong"] * 5 + ["error"] * 3  # the handshake took the sixth
    assert answers[-1]["args"][0]["reason"] == "RATE_LIMITED"
    assert "retry in" in answers[-1]["args"][0]["message"]


async def test_without_redis_reads_pass_and_writes_are_refused(stack: Any, gateway_factory: GatewayFactory) -> None:
    """The limiter's policy when Redis is down: fail-open for reads, fail-closed for writes (the defaults)."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    blind = gateway_factory("gateway-no-redis", gateway_env(stack, GATEWAY_REDIS_URL=dead))
    async with httpx.AsyncClient(base_url=blind.url, headers={"X-API-Key": API_KEY}, timeout=30) as client:
        assert (await client.get("/api/v1/sessions")).status_code == 200
        refused = await client.post("/api/v1/quotes", json={})
        assert_error(refused, 503, "UNAVAILABLE", "UNAVAILABLE")
        assert "rate limiter" in refused.json()["error"]["message"]


async def test_request_id_is_echoed_or_made(api: httpx.AsyncClient) -> None:
    given = await api.get("/api/v1/sessions", headers={"X-Request-ID": "trace-abc.123"})
    assert given.headers["X-Request-ID"] == "trace-abc.123"
    unsafe = await api.get("/api/v1/sessions", headers={"X-Request-ID": "bad id\twith spaces"})
    made = unsafe.headers["X-Request-ID"]
    assert made != "bad id\twith spaces" and len(made) == 32
    assert (await api.get("/health")).headers["X-Request-ID"]


async def test_security_headers_and_cors(api: httpx.AsyncClient) -> None:
    reply = await api.get("/api/v1/sessions")
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert reply.headers["Referrer-Policy"] == "no-referrer"
    assert reply.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]
    assert "server" not in reply.headers

    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key,content-type"}
    allowed = await api.options("/api/v1/sessions", headers={"Origin": "http://localhost:5173", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    foreign = await api.options("/api/v1/sessions", headers={"Origin": "https://evil.example", **preflight})
    assert "Access-Control-Allow-Origin" not in foreign.headers
    simple = await api.get("/api/v1/sessions", headers={"Origin": "http://localhost:5173"})
    assert simple.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "X-Request-ID" in simple.headers["Access-Control-Expose-Headers"]


async def test_health_metrics_docs_and_page_need_no_key(gateway: GatewayProcess) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        health = await client.get("/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "ok", body
        assert {name: check["state"] for name, check in body["checks"].items()} == dict.fromkeys(
            ("chain_base", "chain_near", "memory", "quote", "redis", "session"), "ok"
        )

        await client.get("/api/v1/sessions/" + "0" * 32, headers={"X-API-Key": API_KEY})
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        assert 'route="/api/v1/sessions/{session_id}",status="404"' in metrics.text
        assert "gateway_http_request_duration_seconds_bucket" in metrics.text

        doc = (await client.get("/openapi.json")).json()
        assert doc["openapi"].startswith("3.")
        assert doc["components"]["securitySchemes"]["APIKeyHeader"] == {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "An API key of the gateway.",
        }
        for ops in doc["paths"].values():
            for op in ops.values():
                assert "422" not in op["responses"]
        docs = await client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        # Offline: every asset the docs page loads is the gateway's own, and it is there.
        assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
        assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
        for asset in assets:
            assert (await client.get(asset)).status_code == 200, asset
        assert "https:" not in docs.headers["Content-Security-Policy"]

        page = await client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        unknown = await client.get("/nosuch")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NOT_FOUND"


async def test_server_pings_websocket_clients(gateway_factory: GatewayFactory, stack: Any) -> None:
    """Every GATEWAY_WS_PING_S the server sends a ping frame (browsers answer them without any code)."""
    quick = gateway_factory("gateway-ping", gateway_env(stack, GATEWAY_WS_PING_S="0.3"))
    reader, writer = await asyncio.open_connection("127.0.0.1", quick.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws?api_key={API_KEY} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    first, length = await asyncio.wait_for(reader.readexactly(2), 3)
    assert first == 0x89, hex(first)  # FIN + ping
    await reader.readexactly(length & 0x7F)
    writer.close()


async def test_sigterm_closes_websockets_and_exits_cleanly(gateway_factory: GatewayFactory, stack: Any) -> None:
    doomed = gateway_factory("gateway-sigterm", gateway_env(stack))
    async with connect(doomed.ws_url, additional_headers={"X-API-Key": API_KEY}) as ws:
        await ws.send(json.dumps({"op": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["event"] == "pong"
        await asyncio.to_thread(doomed.stop)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012  # service restart
    assert doomed.returncode == 0
    assert '"message": "stopped"' in doomed.tail()


async def test_requests_are_traced_from_the_callers_traceparent(
    gateway_factory: GatewayFactory, stack: Any, gateway_logs: Path
) -> None:
    spans_file = gateway_logs / "gateway-spans.jsonl"
    traced = gateway_factory("gateway-traced", gateway_env(stack, GATEWAY_TRACE_EXPORTER=f"file:{spans_file}"))
    trace_id = os.urandom(16).hex()
    async with httpx.AsyncClient(base_url=traced.url, headers={"X-API-Key": API_KEY}) as client:
        reply = await client.get(
            "/api/v1/sessions/" + "0" * 32, headers={"traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01"}
        )
        assert reply.status_code == 404
    spans = [json.loads(line) for line in spans_file.read_text().splitlines()]
    ours = {s["name"] for s in spans if s["context"]["trace_id"] == f"0x{trace_id}"}
    assert "GET /api/v1/sessions/{session_id}" in ours, ours
    assert "/swap.session.v1.SessionService/GetSession" in ours, ours
