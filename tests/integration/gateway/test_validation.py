"""Bad input never gets past the gateway as a 5xx: 400 naming the field, 413 for bodies over the limit,
and on the WebSocket error events that leave the connection open."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from swap_devnet.procs import GatewayProcess
from websockets.asyncio.client import connect

from tests.fixtures.gateway import API_KEY

pytestmark = pytest.mark.integration

SESSION = "/api/v1/sessions/" + "0" * 32
GOOD_QUOTE: dict[str, Any] = {
    "src": {"chain": "base", "token": "native"},
    "dst": {"chain": "near", "token": "native"},
    "src_amount": "1000000000000000",
}


def invalid(reply: httpx.Response, field: str | None, *words: str) -> None:
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["reason"], error["field"]) == ("INVALID_ARGUMENT", "INVALID_REQUEST", field), error
    for word in words:
        assert word.lower() in error["message"].lower(), error


def with_(**changes: Any) -> dict[str, Any]:
    return {**GOOD_QUOTE, **changes}


async def test_malformed_or_misdeclared_bodies(api: httpx.AsyncClient) -> None:
    json_type = {"content-type": "application/json"}
    invalid(await api.post("/api/v1/quotes", content=b'{"src": ', headers=json_type), None, "malformed JSON")
    invalid(await api.post("/api/v1/quotes", content=b"\xff\xfe", headers=json_type), None, "malformed JSON")
    invalid(await api.post("/api/v1/quotes", content=b"[1, 2]", headers=json_type), None, "JSON object")
    invalid(await api.post("/api/v1/quotes", content=b'"text"', headers=json_type), None, "JSON object")
    invalid(await api.post("/api/v1/quotes", headers=json_type), None, "body is required")
    invalid(
        await api.post("/api/v1/quotes", content=json.dumps(GOOD_QUOTE), headers={"content-type": "text/plain"}),
        None,
        "application/json",
    )
    invalid(await api.post(f"{SESSION}/cancel", content=b"{,}", headers=json_type), None, "malformed JSON")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (with_(surprise=1), "surprise", ["unknown field"]),
        (with_(src={"chain": "base", "token": "native", "extra": True}), "src.extra", ["unknown field"]),
        (with_(src_amount=1000), "src_amount", ["string"]),
        (with_(src_amount=None), "src_amount", ["string"]),
        (with_(slippage_bps="50"), "slippage_bps", ["integer"]),
        (with_(slippage_bps=1.0), "slippage_bps", ["integer"]),
        (with_(slippage_bps=True), "slippage_bps", ["integer"]),
        (with_(slippage_bps=5001), "slippage_bps", ["5000"]),
        (with_(slippage_bps=2**40), "slippage_bps", ["5000"]),
        (with_(urgency="fast"), "urgency", ["number"]),
        (with_(urgency=1e308 * 10), "urgency", []),
        (with_(src={"chain": "solana", "token": "native"}), "src.chain", ["base", "near"]),
        (with_(src="base"), "src", ["dictionary"]),
        (with_(dst={"chain": "near", "token": "x" * 1000}), "dst.token", ["256"]),
        (with_(dst={"chain": "near", "token": "\ud800"}), "dst.token", []),
        ({"dst": GOOD_QUOTE["dst"], "src_amount": "1"}, "src", ["required"]),
    ],
)
async def test_wrong_types_unknown_and_missing_fields_are_named(
    api: httpx.AsyncClient, body: dict[str, Any], field: str, words: list[str]
) -> None:
    # json.dumps writes a lone surrogate as \\ud800 and an overflowing float as Infinity: both reach the server.
    reply = await api.post("/api/v1/quotes", content=json.dumps(body), headers={"content-type": "application/json"})
    invalid(reply, field, *words)


async def test_session_bodies_params_and_queries(api: httpx.AsyncClient) -> None:
    invalid(await api.post(f"{SESSION}/execute", json={"signature": "0x1234"}), "signature", "pattern")
    invalid(await api.post(f"{SESSION}/execute", json={"signature": 7}), "signature", "string")
    invalid(await api.post(f"{SESSION}/execute", json={"sig": "0x"}), "sig", "unknown field")
    invalid(await api.post(f"{SESSION}/cancel", json={"reason": "bored"}), "reason", "unknown field")
    invalid(await api.get("/api/v1/sessions/has%20space"), "session_id", "pattern")
    invalid(await api.get("/api/v1/sessions/" + "a" * 65), "session_id")
    invalid(await api.get("/api/v1/sessions", params={"page_size": "many"}), "page_size", "integer")
    invalid(await api.get("/api/v1/sessions", params={"page_size": 0}), "page_size", "greater than or equal to 1")
    invalid(await api.get("/api/v1/sessions", params={"page_size": 101}), "page_size", "100")
    invalid(await api.get("/api/v1/sessions", params={"page_token": "a.b"}), "page_token", "pattern")
    # Well-formed but not one of ours: the session service names the field.
    forged = await api.get("/api/v1/sessions", params={"page_token": "abc"})
    assert forged.status_code == 400 and forged.json()["error"]["field"] == "page_token", forged.text
    invalid(await api.get("/api/v1/sessions", params={"colour": "red"}), "colour", "unknown field")
    create = {**GOOD_QUOTE, "maker": "0x" + "11" * 20}
    invalid(await api.post("/api/v1/sessions", json=create), "receiver", "required")
    invalid(await api.post("/api/v1/sessions", json={**create, "receiver": "r.near", "request_id": 5}), "request_id")


async def test_bodies_over_the_limit_are_413(api: httpx.AsyncClient) -> None:
    big = json.dumps(with_(pad="x" * 70_000))
    declared = await api.post("/api/v1/quotes", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413, declared.text
    assert declared.json()["error"]["reason"] == "BODY_TOO_LARGE"

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b" " * 4096  # no Content-Length: counted as it arrives

    streamed = await api.post("/api/v1/quotes", content=stream(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413, streamed.text
    assert streamed.json()["error"]["code"] == "INVALID_ARGUMENT"
    # Just under the limit is parsed (and then refused for what it says, not for its size).
    padded = json.dumps(GOOD_QUOTE).encode()[:-1] + b" " * (65_536 - len(json.dumps(GOOD_QUOTE))) + b"}"
    assert len(padded) == 65_536
    fits = await api.post("/api/v1/quotes", content=padded, headers={"content-type": "application/json"})
    assert fits.status_code != 413, fits.text


async def recv(ws: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 15))
    assert set(event) == {"event", "channel", "args", "timestamp"}
    return event


async def test_websocket_errors_are_events_and_the_connection_stays(gateway: GatewayProcess) -> None:
    async with connect(gateway.ws_url, additional_headers={"X-API-Key": API_KEY}) as ws:
        cases: list[tuple[str | bytes, str]] = [
            ("{nope", "INVALID_REQUEST"),
            (b"\xff\xfe", "INVALID_REQUEST"),
            (json.dumps({"op": "dance", "channel": "session", "args": []}), "UNKNOWN_OP"),
            (json.dumps({"op": "subscribe", "channel": "prices", "args": []}), "UNKNOWN_CHANNEL"),
            (json.dumps({"op": "subscribe", "channel": "session", "args": [7]}), "INVALID_REQUEST"),
            (json.dumps({"op": "subscribe", "channel": "session", "args": ["bad id"]}), "INVALID_REQUEST"),
            (json.dumps({"op": "subscribe", "args": [{"session_id": "a" * 32, "cursor": "x"}]}), "INVALID_REQUEST"),
            (json.dumps({"op": "subscribe", "args": [], "extra": 1}), "INVALID_REQUEST"),
            (json.dumps([1, 2]), "INVALID_REQUEST"),
            (json.dumps({"op": "subscribe", "channel": "session", "args": ["0" * 32]}), "SESSION_NOT_FOUND"),
        ]
        for message, reason in cases:
            await ws.send(message)
            event = await recv(ws)
            assert event["event"] == "error", (message, event)
            assert event["channel"] == "session"
            assert len(event["args"]) == 1 and set(event["args"][0]) == {"reason", "message"}
            assert event["args"][0]["reason"] == reason, (message, event)
        await ws.send(json.dumps({"op": "ping", "channel": "session", "args": ["t1"]}))
        pong = await recv(ws)
        assert pong["event"] == "pong" and pong["args"] == ["t1"]
        assert isinstance(pong["timestamp"], int) and pong["timestamp"] > 1_600_000_000_000
        await ws.send(json.dumps({"op": "unsubscribe", "channel": "session", "args": ["0" * 32]}))
        assert (await recv(ws))["event"] == "unsubscribed"
