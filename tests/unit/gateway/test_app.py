"""The app in-process with nothing behind it: what the gateway answers by itself, and how it degrades."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from gateway.app import create_app
from gateway.config import GatewaySettings

ROOT = Path(__file__).resolve().parents[3]

KEY = "unit-key"


def isolated(**overrides: object) -> GatewaySettings:
    """A gateway whose services and Redis are nowhere."""
    return GatewaySettings(
        session_addr="127.0.0.1:1",
        quote_addr="127.0.0.1:1",
        redis_url="redis://127.0.0.1:1/0",
        rate_limit="",
        api_keys=[KEY],
        plaintext=True,
        **overrides,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    # The probe reads this test process's memory, which is the whole test run's: far from any limit.
    settings = isolated(max_body_bytes=1024, rpc_timeout_s=5, memory_limit_mb=64 * 1024)
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
    # No route signs for the maker: the gateway holds no maker key.
    dev = client.post("/api/v1/dev/sessions/" + "a" * 32 + "/maker-action", json={})
    assert dev.status_code == 404 and dev.json()["error"]["reason"] == "ROUTE_NOT_FOUND"


def test_openapi_documents_the_error_format(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert not [path for path in doc["paths"] if "/dev/" in path]
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


def test_the_page_reads_only_the_chains_it_is_given(tmp_path: Path) -> None:
    chains = {"near": {"rpc_url": "http://127.0.0.1:3030/", "htlc": "htlc.test.near"}, "eth": {"rpc_url": "x"}}
    path = tmp_path / "chains.json"
    path.write_text(json.dumps(chains))
    with TestClient(create_app(isolated(page_chains_file=path))) as test_client:
        served = test_client.get("/chains.json")
        assert served.status_code == 200 and served.json() == {"near": chains["near"]}
        csp = test_client.get("/").headers["Content-Security-Policy"]
        assert "connect-src 'self' ws: wss: http://127.0.0.1:3030;" in csp
        # The API's own policy stays closed.
        assert test_client.get("/health").headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_without_chains_the_page_gets_none(client: TestClient) -> None:
    assert client.get("/chains.json").json() == {}
    assert "connect-src 'self' ws: wss:;" in client.get("/").headers["Content-Security-Policy"]


def test_the_gateway_holds_no_signing_code() -> None:
    """The gateway signs for nobody: neither its package nor its imports bring an EVM or NEAR signer."""
    deps = tomllib.loads((ROOT / "services" / "gateway" / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if d.split("==")[0] in {"eth-account", "py-near", "web3"}], deps
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, gateway.main; print(sorted(m for m in sys.modules if '.' not in m))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("'")
    assert not {"eth_account", "py_near", "web3", "eth_keys"} & set(loaded)
