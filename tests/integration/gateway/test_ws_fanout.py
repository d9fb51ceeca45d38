"""WebSocket fan-out through the real gateway: many subscribers of one session share one upstream
WatchSession and each sees every version once; a late subscriber gets the session as it stands first.
(A client that does not read is dropped with 1013: tests/unit/gateway/test_fanout.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from swap_devnet.procs import GatewayProcess
from swap_devnet.stack import LocalStack
from websockets.asyncio.client import ClientConnection, connect

from tests.fixtures.gateway import API_KEY
from tests.integration.gateway.test_swaps import TERMINAL, gauges_settle, next_event, subscribe, updates_until
from tests.integration.swaps import maker_step

pytestmark = pytest.mark.integration

AMOUNT = 10_000_000  # 10 TUSD


async def metric(api: httpx.AsyncClient, name: str) -> float:
    text = (await api.get("/metrics")).text
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line[:1] not in ("#", "")}
    return values.get(name, 0.0)


async def create_session(api: httpx.AsyncClient, stack: LocalStack) -> dict[str, Any]:
    assert stack.evm is not None and stack.near is not None
    created = await api.post(
        "/api/v1/sessions",
        json={
            "src": {"chain": "base", "token": stack.evm.token},
            "dst": {"chain": "near", "token": stack.near.token.account_id},
            "src_amount": str(AMOUNT),
            "maker": stack.evm.maker.address,
            "receiver": stack.near.receiver.account_id,
        },
    )
    assert created.status_code == 201, created.text
    session: dict[str, Any] = created.json()
    return session


async def test_subscribers_of_one_session_share_one_upstream_stream(
    api: httpx.AsyncClient, gateway: GatewayProcess, stack: LocalStack
) -> None:
    session = await create_session(api, stack)
    session_id = session["session_id"]
    upstreams_before = await metric(api, "gateway_ws_upstreams")
    direct_before = await metric(api, 'gateway_ws_messages_sent_total{path="direct"}')
    clients: list[ClientConnection] = []
    seen: list[list[dict[str, Any]]] = [[], [], [], []]
    try:
        for _ in range(3):
            ws = await connect(gateway.ws_url, additional_headers={"X-API-Key": API_KEY})
            clients.append(ws)
            await subscribe(ws, session_id)
        for ws, got in zip(clients, seen, strict=False):
            await updates_until(ws, {"initialized"}, got)
        assert await metric(api, "gateway_ws_upstreams") == upstreams_before + 1
        assert (await maker_step(api, stack, session)).status_code == 200
        await updates_until(clients[0], {"source_locking", "source_locked"}, seen[0])
        # A fourth subscriber joins mid-swap: the session as it stands first, then the rest, on the same stream.
        late = await connect(gateway.ws_url, additional_headers={"X-API-Key": API_KEY})
        clients.append(late)
        await subscribe(late, session_id)
        assert await metric(api, "gateway_ws_upstreams") == upstreams_before + 1
        finals = await asyncio.gather(
            *(updates_until(ws, TERMINAL, got) for ws, got in zip(clients, seen, strict=True))
        )
        for ws in clients:
            ended = await next_event(ws)
            assert ended["event"] == "unsubscribed" and ended["args"] == [session_id], ended
    finally:
        await asyncio.gather(*(ws.close() for ws in clients))
    last_version = finals[0]["session"]["version"]
    assert all(final["session"]["state"] == "completed" for final in finals), [f["session"]["state"] for f in finals]
    for got in seen[:3]:  # from the start: every version, once, in order
        versions = [u["session"]["version"] for u in got]
        assert versions == list(range(versions[0], last_version + 1)), versions
    late_versions = [u["session"]["version"] for u in seen[3]]
    assert late_versions == list(range(late_versions[0], last_version + 1)), late_versions
    assert late_versions[0] > seen[0][0]["session"]["version"]  # it started from the state at joining time
    # Clients that read keep up: their messages went straight to their sockets, not through the queues.
    direct = await metric(api, 'gateway_ws_messages_sent_total{path="direct"}') - direct_before
    assert direct >= sum(len(got) for got in seen), direct
    await gauges_settle(api, {"gateway_ws_upstreams": int(upstreams_before), "gateway_ws_subscriptions": 0})
