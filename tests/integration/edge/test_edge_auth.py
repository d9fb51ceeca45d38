"""The edge's one authentication and the session service's tenancy, probed as an outside client meets them:
every protocol Envoy serves (REST, WebSocket, gRPC, gRPC-Web, transcoded JSON) without a key, with a wrong
one and with the right one; one tenant's session out of another's sight (REST and gRPC alike); a client's
x-tenant ignored; the operator seeing all; a client's X-Request-ID kept."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import httpx
import pytest
import websockets
from swap.common.v1 import common_pb2
from swap.quote.v1 import quote_pb2, quote_pb2_grpc
from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_devnet.stack import LocalStack
from swap_runtime.quote_token import QuoteVerifier, open_quote, public_key
from websockets.exceptions import InvalidStatus

from tests.integration.edge.conftest import KEY, KEY_A, KEY_B, KEY_OPS, WRONG_KEY
from tests.integration.grpc_web import GRPC_WEB, grpc_web_frame, grpc_web_frames

pytestmark = pytest.mark.integration

UNKNOWN = "0" * 32
ERROR_FIELDS = {"code", "reason", "message", "field"}


def edge_url(stack: LocalStack) -> str:
    assert stack.envoy is not None
    return stack.envoy.url


def rest_body(stack: LocalStack, **changes: Any) -> dict[str, Any]:
    assert stack.evm is not None and stack.near is not None
    body: dict[str, Any] = {
        "src": {"chain": "base", "token": stack.evm.token},
        "dst": {"chain": "near", "token": stack.near.token.account_id},
        "src_amount": "10000000",
        "maker": stack.evm.maker.address,
        "receiver": stack.near.receiver.account_id,
    }
    body.update(changes)
    return body


def grpc_create(stack: LocalStack) -> session_pb2.CreateSessionRequest:
    assert stack.evm is not None and stack.near is not None
    return session_pb2.CreateSessionRequest(
        src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
        dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
        src_amount="10000000",
        maker=stack.evm.maker.address,
        receiver=stack.near.receiver.account_id,
    )


def quote_request(stack: LocalStack) -> quote_pb2.GetQuoteRequest:
    assert stack.evm is not None and stack.near is not None
    return quote_pb2.GetQuoteRequest(
        src=quote_pb2.Asset(chain=common_pb2.CHAIN_BASE, token=stack.evm.token),
        dst=quote_pb2.Asset(chain=common_pb2.CHAIN_NEAR, token=stack.near.token.account_id),
        src_amount="10000000",
    )


def assert_error(reply: httpx.Response, status: int, code: str, reason: str) -> None:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/json"
    error = reply.json()["error"]
    assert set(error) == ERROR_FIELDS and (error["code"], error["reason"]) == (code, reason), error


Metadata = tuple[tuple[str, str], ...]


def keyed(key: str | None, *extra: tuple[str, str]) -> Metadata:
    return ((("x-api-key", key),) if key else ()) + extra


@pytest.fixture(scope="module")
async def channel(stack: LocalStack) -> AsyncIterator[grpc.aio.Channel]:
    assert stack.envoy is not None
    async with grpc.aio.insecure_channel(stack.envoy.address) as chan:
        yield chan


async def grpc_code(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


async def watch_code(stub: session_pb2_grpc.SessionServiceStub, session_id: str, key: str | None, *extra: Any) -> Any:
    call = stub.WatchSession(
        session_pb2.WatchSessionRequest(session_id=session_id), metadata=keyed(key, *extra), timeout=10
    )
    try:
        await call.read()
    except grpc.aio.AioRpcError as err:
        return err.code()
    finally:
        call.cancel()
    return grpc.StatusCode.OK


async def test_every_protocol_refuses_a_missing_or_wrong_key_and_serves_the_right_one(
    stack: LocalStack, channel: grpc.aio.Channel
) -> None:
    url = edge_url(stack)
    sessions = session_pb2_grpc.SessionServiceStub(channel)
    quotes = quote_pb2_grpc.QuoteServiceStub(channel)
    # gRPC: each session and quote method. With the key, an unknown session is NOT_FOUND and a create
    # without a body INVALID_ARGUMENT: the call reached the service.
    calls: dict[str, Callable[[Metadata], Any]] = {
        "CreateSession": (lambda md: sessions.CreateSession(session_pb2.CreateSessionRequest(), metadata=md)),
        "GetSession": (lambda md: sessions.GetSession(session_pb2.GetSessionRequest(session_id=UNKNOWN), metadata=md)),
        "ListSessions": (lambda md: sessions.ListSessions(session_pb2.ListSessionsRequest(), metadata=md)),
        "ExecuteSession": (
            lambda md: sessions.ExecuteSession(session_pb2.ExecuteSessionRequest(session_id=UNKNOWN), metadata=md)
        ),
        "CancelSession": (
            lambda md: sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=UNKNOWN), metadata=md)
        ),
        "RevealSecret": (
            lambda md: sessions.RevealSecret(
                session_pb2.RevealSecretRequest(session_id=UNKNOWN, secret="44" * 32), metadata=md
            )
        ),
        "GetQuote": (lambda md: quotes.GetQuote(quote_request(stack), metadata=md)),
    }
    served = {
        "CreateSession": grpc.StatusCode.INVALID_ARGUMENT,
        "GetSession": grpc.StatusCode.NOT_FOUND,
        "ListSessions": grpc.StatusCode.OK,
        "ExecuteSession": grpc.StatusCode.NOT_FOUND,
        "CancelSession": grpc.StatusCode.NOT_FOUND,
        "RevealSecret": grpc.StatusCode.NOT_FOUND,
        "GetQuote": grpc.StatusCode.OK,
    }
    for name, call in calls.items():
        for key in (None, WRONG_KEY):
            assert await grpc_code(call(keyed(key))) == grpc.StatusCode.UNAUTHENTICATED, (name, key)
        assert await grpc_code(call(keyed(KEY))) == served[name], name
    for key in (None, WRONG_KEY):
        assert await watch_code(sessions, UNKNOWN, key) == grpc.StatusCode.UNAUTHENTICATED
    assert await watch_code(sessions, UNKNOWN, KEY) == grpc.StatusCode.NOT_FOUND

    async with httpx.AsyncClient(base_url=url, timeout=15) as http:
        # REST: the gateway's own check, behind Envoy.
        for method, path, body in (
            ("GET", "/api/v1/sessions", None),
            ("GET", f"/api/v1/sessions/{UNKNOWN}", None),
            ("POST", f"/api/v1/sessions/{UNKNOWN}/cancel", {}),
            ("POST", f"/api/v1/sessions/{UNKNOWN}/secret", {"secret": "44" * 32}),
            ("POST", "/api/v1/quotes", {}),
        ):
            assert_error(await http.request(method, path, json=body), 401, "UNAUTHENTICATED", "API_KEY_MISSING")
            wrong = await http.request(method, path, json=body, headers={"X-API-Key": WRONG_KEY})
            assert_error(wrong, 401, "UNAUTHENTICATED", "API_KEY_INVALID")
            right = await http.request(method, path, json=body, headers={"X-API-Key": KEY})
            assert right.status_code in {200, 400, 404}, right.text
            assert right.status_code != 404 or right.json()["error"]["reason"] == "SESSION_NOT_FOUND"

        # gRPC-Web, as a browser sends it.
        frame = grpc_web_frame(session_pb2.GetSessionRequest(session_id=UNKNOWN).SerializeToString())
        web_headers = {"Content-Type": GRPC_WEB, "X-Grpc-Web": "1"}
        for key in (None, WRONG_KEY):
            reply = await http.post(
                "/swap.session.v1.SessionService/GetSession", content=frame, headers={**web_headers, **dict(keyed(key))}
            )
            assert reply.headers["grpc-status"] == "16", reply.headers
            assert json.loads(reply.headers["grpc-message"])["error"]["reason"].startswith("API_KEY_")
        reply = await http.post(
            "/swap.session.v1.SessionService/GetSession", content=frame, headers={**web_headers, "X-API-Key": KEY}
        )
        _, trailers = grpc_web_frames(reply.content)
        assert trailers.get("grpc-status", reply.headers.get("grpc-status")) == "5"

        # The transcoded quote: the gateway's JSON error relayed by Envoy, then a quote.
        assert stack.evm is not None and stack.near is not None
        quote_json = {
            "src": {"chain": "CHAIN_BASE", "token": stack.evm.token},
            "dst": {"chain": "CHAIN_NEAR", "token": stack.near.token.account_id},
            "src_amount": "10000000",
        }
        path = "/swap.quote.v1.QuoteService/GetQuote"
        assert_error(await http.post(path, json=quote_json), 401, "UNAUTHENTICATED", "API_KEY_MISSING")
        wrong = await http.post(path, json=quote_json, headers={"X-API-Key": WRONG_KEY})
        assert_error(wrong, 401, "UNAUTHENTICATED", "API_KEY_INVALID")
        quoted = await http.post(path, json=quote_json, headers={"X-API-Key": KEY})
        assert quoted.status_code == 200, quoted.text
        signed = open_quote(QuoteVerifier([public_key(stack.quote_public_key)]), quoted.json()["quote"]["quote_id"])
        assert signed.src_amount == "10000000"

        # A client's X-Request-ID is kept by Envoy and echoed by the gateway.
        echoed = await http.get("/api/v1/sessions", headers={"X-API-Key": KEY, "X-Request-ID": "edge-probe-rid-1"})
        assert echoed.headers["x-request-id"] == "edge-probe-rid-1"

    # WebSocket: refused at the handshake without a valid key, served with one.
    ws_url = url.replace("http://", "ws://") + "/ws"
    for target, headers in ((ws_url, {}), (ws_url, {"X-API-Key": WRONG_KEY}), (f"{ws_url}?api_key={WRONG_KEY}", {})):
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(target, additional_headers=headers):
                pass
        assert refused.value.response.status_code == 401
        assert json.loads(refused.value.response.body or b"{}")["error"]["code"] == "UNAUTHENTICATED"
    async with websockets.connect(f"{ws_url}?api_key={KEY}") as ws:
        await ws.send(json.dumps({"op": "ping", "channel": "session", "args": ["x"]}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["event"] == "pong"


async def test_a_tenant_never_sees_or_touches_another_tenants_session(
    stack: LocalStack, channel: grpc.aio.Channel
) -> None:
    url = edge_url(stack)
    sessions = session_pb2_grpc.SessionServiceStub(channel)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        created = await http.post("/api/v1/sessions", json=rest_body(stack), headers={"X-API-Key": KEY_A})
        assert created.status_code == 201, created.text
        sid = created.json()["session_id"]
        # Bob over the gateway's REST: the session does not exist for him.
        bob = {"X-API-Key": KEY_B}
        for method, path, body in (
            ("GET", f"/api/v1/sessions/{sid}", None),
            ("POST", f"/api/v1/sessions/{sid}/cancel", {}),
            ("POST", f"/api/v1/sessions/{sid}/execute", {"signature": "0x" + "11" * 65}),
            ("POST", f"/api/v1/sessions/{sid}/secret", {"secret": "44" * 32}),
        ):
            reply = await http.request(method, path, json=body, headers=bob)
            assert_error(reply, 404, "NOT_FOUND", "SESSION_NOT_FOUND")
        listed = await http.get("/api/v1/sessions", params={"page_size": 100}, headers=bob)
        assert sid not in {s["session_id"] for s in listed.json()["sessions"]}
        maker_listed = await http.get(
            "/api/v1/sessions", params={"maker": rest_body(stack)["maker"], "page_size": 100}, headers=bob
        )
        assert sid not in {s["session_id"] for s in maker_listed.json()["sessions"]}
        # Alice and the operator see it.
        mine = await http.get("/api/v1/sessions", params={"page_size": 100}, headers={"X-API-Key": KEY_A})
        assert sid in {s["session_id"] for s in mine.json()["sessions"]}
        assert (await http.get(f"/api/v1/sessions/{sid}", headers={"X-API-Key": KEY_OPS})).status_code == 200
        ops_listed = await http.get("/api/v1/sessions", params={"page_size": 100}, headers={"X-API-Key": KEY_OPS})
        assert sid in {s["session_id"] for s in ops_listed.json()["sessions"]}

    # Bob over the WebSocket.
    ws_url = url.replace("http://", "ws://") + f"/ws?api_key={KEY_B}"
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"op": "subscribe", "channel": "session", "args": [sid]}))
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["event"] == "error" and message["args"][0]["reason"] == "SESSION_NOT_FOUND"

    # Bob over Envoy's gRPC, also when he names Alice (or the operator role) himself: Envoy replaces both.
    for extra in ((), (("x-tenant", "alice"),), (("x-tenant", "alice"), ("x-tenant-role", "operator"))):
        md = keyed(KEY_B, *extra)
        get = sessions.GetSession(session_pb2.GetSessionRequest(session_id=sid), metadata=md)
        assert await grpc_code(get) == grpc.StatusCode.NOT_FOUND, extra
        cancel = sessions.CancelSession(session_pb2.CancelSessionRequest(session_id=sid), metadata=md)
        assert await grpc_code(cancel) == grpc.StatusCode.NOT_FOUND, extra
        execute = sessions.ExecuteSession(session_pb2.ExecuteSessionRequest(session_id=sid), metadata=md)
        assert await grpc_code(execute) == grpc.StatusCode.NOT_FOUND, extra
        reveal = sessions.RevealSecret(session_pb2.RevealSecretRequest(session_id=sid, secret="44" * 32), metadata=md)
        assert await grpc_code(reveal) == grpc.StatusCode.NOT_FOUND, extra
        assert await watch_code(sessions, sid, KEY_B, *extra) == grpc.StatusCode.NOT_FOUND, extra
        listed_pb = await sessions.ListSessions(session_pb2.ListSessionsRequest(page_size=100), metadata=md)
        assert sid not in {s.session_id for s in listed_pb.sessions}
    # Without a key, naming a tenant gets nothing at all.
    unkeyed = sessions.GetSession(session_pb2.GetSessionRequest(session_id=sid), metadata=(("x-tenant", "alice"),))
    assert await grpc_code(unkeyed) == grpc.StatusCode.UNAUTHENTICATED
    # Alice over gRPC: her session, the same tenant as over REST.
    got = await sessions.GetSession(session_pb2.GetSessionRequest(session_id=sid), metadata=keyed(KEY_A))
    assert got.session.session_id == sid
    assert await watch_code(sessions, sid, KEY_A) == grpc.StatusCode.OK

    # A session Bob creates over gRPC is Bob's over REST, and not Alice's.
    bobs = (await sessions.CreateSession(grpc_create(stack), metadata=keyed(KEY_B))).session.session_id
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        assert (await http.get(f"/api/v1/sessions/{bobs}", headers={"X-API-Key": KEY_B})).status_code == 200
        alice_reads = await http.get(f"/api/v1/sessions/{bobs}", headers={"X-API-Key": KEY_A})
        assert_error(alice_reads, 404, "NOT_FOUND", "SESSION_NOT_FOUND")
        for owner, session_id in ((KEY_A, sid), (KEY_B, bobs)):
            done = await http.post(f"/api/v1/sessions/{session_id}/cancel", json={}, headers={"X-API-Key": owner})
            assert done.status_code == 200, done.text


async def test_request_ids_are_per_tenant_and_a_changed_body_conflicts(stack: LocalStack) -> None:
    request_id = f"edge-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(base_url=edge_url(stack), timeout=30) as http:
        first = await http.post(
            "/api/v1/sessions", json=rest_body(stack, request_id=request_id), headers={"X-API-Key": KEY_A}
        )
        assert first.status_code == 201, first.text
        # The same id from another tenant is another request.
        other = await http.post(
            "/api/v1/sessions", json=rest_body(stack, request_id=request_id), headers={"X-API-Key": KEY_B}
        )
        assert other.status_code == 201, other.text
        assert other.json()["session_id"] != first.json()["session_id"]
        changed = await http.post(
            "/api/v1/sessions",
            json=rest_body(stack, request_id=request_id, src_amount="20000000"),
            headers={"X-API-Key": KEY_A},
        )
        assert_error(changed, 409, "ALREADY_EXISTS", "IDEMPOTENCY_CONFLICT")
        assert changed.json()["error"]["field"] == "request_id"
        for reply, key in ((first, KEY_A), (other, KEY_B)):
            path = f"/api/v1/sessions/{reply.json()['session_id']}/cancel"
            await http.post(path, json={}, headers={"X-API-Key": key})
