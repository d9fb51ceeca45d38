"""Whole swaps driven through the gateway only: REST to create, the maker's step made as swapctl --sign makes
it, the WebSocket to watch (dropped mid-swap and resumed from its cursor), balances on both chains."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import httpx
import pytest
from swap_devnet.procs import GatewayProcess
from swap_devnet.stack import LocalStack
from websockets.asyncio.client import ClientConnection, connect

from tests.fixtures.gateway import API_KEY, HASHED_KEY, Balances
from tests.integration.swaps import maker_step

pytestmark = pytest.mark.integration

AMOUNT = 10_000_000  # 10 TUSD
TERMINAL = {"completed", "refunded", "cancelled", "failed", "timeout"}


async def next_event(ws: ClientConnection, timeout: float = 60) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    assert event["channel"] == "session" and isinstance(event["timestamp"], int)
    return event


async def subscribe(ws: ClientConnection, arg: str | dict[str, str]) -> None:
    await ws.send(json.dumps({"op": "subscribe", "channel": "session", "args": [arg]}))
    event = await next_event(ws)
    session_id = arg if isinstance(arg, str) else arg["session_id"]
    assert event["event"] == "subscribed" and event["args"] == [session_id], event


async def updates_until(ws: ClientConnection, done: set[str], seen: list[dict[str, Any]]) -> dict[str, Any]:
    """Appends each update ({cursor, session}) to `seen` until a session state in `done`."""
    while True:
        event = await next_event(ws)
        assert event["event"] == "update", event
        [update] = event["args"]
        assert isinstance(update, dict) and set(update) == {"cursor", "session"}
        seen.append(update)
        if update["session"]["state"] in done:
            return update


async def gauges_settle(api: httpx.AsyncClient, expected: dict[str, int]) -> None:
    """The server notices a closed WebSocket a moment after the client: poll /metrics for the gauges."""
    for _ in range(50):
        text = (await api.get("/metrics")).text
        values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if line[:1] not in ("#", "")}
        if all(values.get(name) == value for name, value in expected.items()):
            return
        await asyncio.sleep(0.1)
    raise AssertionError({name: values.get(name) for name in expected})


async def test_base_to_near_swap_watched_over_a_dropped_and_resumed_websocket(
    api: httpx.AsyncClient, gateway: GatewayProcess, stack: LocalStack
) -> None:
    assert stack.evm is not None and stack.near is not None
    balances = Balances(stack)
    before = {
        "base_maker": balances.base(stack.evm.maker.address),
        "base_resolver": balances.base(stack.evm.resolver.address),
        "near_resolver": balances.near_tusd(stack.near.resolver.account_id),
        "near_receiver": balances.near_tusd(stack.near.receiver.account_id),
    }
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
    session_id = created.json()["session_id"]
    seen: list[dict[str, Any]] = []

    async with connect(gateway.ws_url, additional_headers={"X-API-Key": API_KEY}) as first:
        await subscribe(first, session_id)
        await updates_until(first, {"initialized"}, seen)
        executed = await maker_step(api, stack, created.json())
        assert executed.status_code == 200, executed.text
        # Execute records the maker's go; the swap moves on from there.
        assert executed.json()["state"] not in TERMINAL
        await updates_until(first, {"executing"}, seen)
        # The client drops mid-swap, without unsubscribing.
    assert seen[-1]["session"]["state"] not in TERMINAL
    await asyncio.sleep(1.0)

    async with connect(f"{gateway.ws_url}?api_key={HASHED_KEY}") as second:
        await subscribe(second, {"session_id": session_id, "cursor": seen[-1]["cursor"]})
        last = await updates_until(second, TERMINAL, seen)
        ended = await next_event(second)
        assert ended["event"] == "unsubscribed" and ended["args"] == [session_id]

    done = last["session"]
    assert done["state"] == "completed", (done["error"], [u["session"]["state"] for u in seen])
    versions = [u["session"]["version"] for u in seen]
    assert versions == list(range(versions[0], done["version"] + 1)), versions
    states = [u["session"]["state"] for u in seen]
    for state in ("source_locked", "both_locked", "revealing_secret"):
        assert state in states
    assert done["secret"] is not None and hashlib.sha256(bytes.fromhex(done["secret"])).hexdigest() == done["hashlock"]
    assert done == (await api.get(f"/api/v1/sessions/{session_id}")).json()

    dst_amount = int(done["dst_amount"])
    assert dst_amount >= int(done["quote"]["min_received"]) > 0
    assert balances.base(stack.evm.maker.address) == before["base_maker"] - AMOUNT
    assert balances.base(stack.evm.resolver.address) == before["base_resolver"] + AMOUNT
    assert balances.near_tusd(stack.near.receiver.account_id) == before["near_receiver"] + dst_amount
    assert balances.near_tusd(stack.near.resolver.account_id) == before["near_resolver"] - dst_amount


async def test_near_to_base_swap_through_the_gateway(
    api: httpx.AsyncClient, gateway: GatewayProcess, stack: LocalStack
) -> None:
    assert stack.evm is not None and stack.near is not None
    balances = Balances(stack)
    maker = stack.near.maker.account_id
    before = {
        "near_maker": balances.near_tusd(maker),
        "near_resolver": balances.near_tusd(stack.near.resolver.account_id),
        "base_receiver": balances.base(stack.evm.receiver.address),
        "base_resolver": balances.base(stack.evm.resolver.address),
    }
    created = await api.post(
        "/api/v1/sessions",
        json={
            "src": {"chain": "near", "token": stack.near.token.account_id},
            "dst": {"chain": "base", "token": stack.evm.token},
            "src_amount": str(AMOUNT),
            "maker": maker,
            "receiver": stack.evm.receiver.address,
        },
    )
    assert created.status_code == 201, created.text
    session = created.json()
    call = session["maker_action"]["near_call"]
    assert call["method"] == "ft_transfer_call" and call["contract"] == stack.near.token.account_id
    assert isinstance(call["args"], dict) and call["args"]["amount"] == str(AMOUNT)
    # A NEP-141 lock's storage fee is NEAR prepaid on the HTLC: the top-up the maker makes first.
    prepay = session["maker_action"]["near_prepay"]
    assert (prepay["contract"], prepay["method"], prepay["args"]) == (stack.near.htlc.account_id, "deposit_native", {})

    seen: list[dict[str, Any]] = []
    async with connect(gateway.ws_url, additional_headers={"X-API-Key": API_KEY}) as ws:
        await subscribe(ws, session["session_id"])
        await updates_until(ws, {"initialized"}, seen)
        acted = await maker_step(api, stack, session)
        assert acted.status_code == 200, acted.text
        last = await updates_until(ws, TERMINAL, seen)
    await gauges_settle(api, {"gateway_ws_connections": 0, "gateway_ws_subscriptions": 0})

    done = last["session"]
    assert done["state"] == "completed", (done["error"], [u["session"]["state"] for u in seen])
    versions = [u["session"]["version"] for u in seen]
    assert versions == list(range(versions[0], done["version"] + 1)), versions
    dst_amount = int(done["dst_amount"])
    assert dst_amount >= int(done["quote"]["min_received"]) > 0
    assert balances.near_tusd(maker) == before["near_maker"] - AMOUNT
    assert balances.near_tusd(stack.near.resolver.account_id) == before["near_resolver"] + AMOUNT
    assert balances.base(stack.evm.receiver.address) == before["base_receiver"] + dst_amount
    assert balances.base(stack.evm.resolver.address) == before["base_resolver"] - dst_amount


async def test_watch_survives_a_session_service_restart(
    api: httpx.AsyncClient, gateway: GatewayProcess, stack: LocalStack
) -> None:
    """The gateway reopens a dropped WatchSession from its last cursor: the client sees every version once."""
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
    session_id = created.json()["session_id"]
    seen: list[dict[str, Any]] = []
    async with connect(gateway.ws_url, additional_headers={"X-API-Key": API_KEY}) as ws:
        await subscribe(ws, session_id)
        await updates_until(ws, {"initialized"}, seen)
        assert (await maker_step(api, stack, created.json())).status_code == 200
        await updates_until(ws, {"source_locking", "source_locked"}, seen)
        session_service = stack.services["session"]
        session_service.kill()
        await asyncio.to_thread(session_service.start)
        last = await updates_until(ws, TERMINAL, seen)
    assert last["session"]["state"] == "completed", [u["session"]["state"] for u in seen]
    versions = [u["session"]["version"] for u in seen]
    assert versions == list(range(versions[0], last["session"]["version"] + 1)), versions
