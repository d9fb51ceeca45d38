"""The app in-process with nothing behind it: what the gateway answers by itself, and how it degrades."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from gateway.app import create_app
from gateway.config import GatewaySettings

KEY = "unit-key"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    settings = GatewaySettings(
        session_addr="127.0.0.1:1",
        quote_addr="127.0.0.1:1",
        redis_url="redis://127.0.0.1:1/0",
        rate_limit="",
        api_keys=[KEY],
        max_body_bytes=1024,
        rpc_timeout_s=5,
        # The probe reads this test process's memory, which is the whole test run's: far from any limit.
        memory_limit_mb=64 * 1024,
    )
    with TestClient(create_app(settings), headers={"X-API-Key": KEY}) as test_client:
        yield test_client


def test_health_reports_down_when_the_session_service_is(client: TestClient) -> None:
    reply = client.get("/health")
    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "down"
    assert {name: check["state"] for name, check in body["checks"].items()} == {
        "session": "down",
        "quote": "down",
        "redis": "down",
        "memory": "ok",
    }


def test_unreachable_service_is_503_without_its_address(client: TestClient) -> None:
    reply = client.get("/api/v1/sessions/" + "a" * 32)
    assert reply.status_code == 503
    error = reply.json()["error"]
    assert error["code"] == "UNAVAILABLE" and "127.0.0.1" not in error["message"]


def test_the_gateway_own_answers(client: TestClient) -> None:
    assert client.get("/api/v1/sessions", headers={"X-API-Key": "nope"}).status_code == 401
    assert client.post("/api/v1/quotes", content=b"x" * 2000).status_code == 413
    put = client.put("/api/v1/sessions")
    assert put.status_code == 405 and put.headers["Allow"] == "GET, POST"
    assert put.json()["error"]["reason"] == "METHOD_NOT_ALLOWED"
    # Without dev mode the maker-action route does not exist at all.
    dev = client.post("/api/v1/dev/sessions/" + "a" * 32 + "/maker-action", json={})
    assert dev.status_code == 404 and dev.json()["error"]["reason"] == "ROUTE_NOT_FOUND"


def test_openapi_documents_the_error_format(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert "/api/v1/dev/sessions/{session_id}/maker-action" not in doc["paths"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        if not path.startswith("/api/"):
            continue
        for op in ops.values():
            assert op["security"] == [{"APIKeyHeader": []}]
            for status in ("400", "401", "404", "413", "429", "500", "503"):
                schema = op["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}


def test_websocket_reports_an_unreachable_service_as_an_event(client: TestClient) -> None:
    with client.websocket_connect("/ws", headers={"X-API-Key": KEY}) as ws:
        ws.send_json({"op": "subscribe", "channel": "session", "args": ["a" * 32]})
        event = ws.receive_json()
        assert event["event"] == "error" and event["args"][0]["reason"] == "UNAVAILABLE"
        ws.send_json({"op": "subscribe", "channel": "session", "args": []})
        assert ws.receive_json()["event"] == "subscribed"
