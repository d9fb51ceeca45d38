"""Secret mode "maker" through the gateway: the maker's client draws the secret, checks the destination lock
on the destination chain itself (swapctl's own checker, reading the chain's RPC) and only then releases it,
over REST or the WebSocket. The service never holds the secret before that: not in Redis, not in any log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from swap_devnet.evm import increase_time
from swap_devnet.procs import GatewayProcess
from swap_devnet.stack import LocalStack
from swapctl.secrets import Held
from swapctl.verify import ChainReader, DestinationLock, load_chains, problems
from websockets.asyncio.client import connect

from tests.fixtures.gateway import API_KEY, Balances
from tests.integration.swaps import maker_step

pytestmark = pytest.mark.integration

AMOUNT = 7_000_000  # 7 TUSD


def draw() -> tuple[str, str]:
    secret = os.urandom(32)
    return secret.hex(), hashlib.sha256(secret).hexdigest()


def trade(stack: LocalStack, *, near_source: bool = False) -> dict[str, Any]:
    """A create request between the devnet's maker and receiver."""
    assert stack.evm is not None and stack.near is not None
    base = {"chain": "base", "token": stack.evm.token}
    near = {"chain": "near", "token": stack.near.token.account_id}
    return {
        "src": near if near_source else base,
        "dst": base if near_source else near,
        "src_amount": str(AMOUNT),
        "maker": stack.near.maker.account_id if near_source else stack.evm.maker.address,
        "receiver": stack.evm.receiver.address if near_source else stack.near.receiver.account_id,
    }


async def create(api: httpx.AsyncClient, stack: LocalStack, hashlock: str, *, near_source: bool = False) -> Any:
    body = {**trade(stack, near_source=near_source), "secret_mode": "maker", "hashlock": hashlock}
    created = await api.post("/api/v1/sessions", json=body)
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["secret_mode"] == "maker" and session["hashlock"] == hashlock
    assert session["secret"] is None and session["secret_deadline"] is None
    return session


async def state_reached(api: httpx.AsyncClient, session_id: str, states: set[str], timeout: float = 90) -> Any:
    async def poll() -> Any:
        while True:
            session = (await api.get(f"/api/v1/sessions/{session_id}")).json()
            if session["state"] in states:
                return session
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), timeout)


async def stored_record(stack: LocalStack, session_id: str) -> dict[str, Any]:
    client = aioredis.Redis.from_url(stack.redis_url)
    try:
        raw = await client.get(f"{stack.options.key_prefix}session:{session_id}")
    finally:
        await client.aclose()
    assert raw is not None
    record: dict[str, Any] = json.loads(raw)
    return record


def logs_mention(stack: LocalStack, secret: str) -> list[str]:
    found = []
    for path in Path(stack.options.work_dir).glob("*.log"):
        text = path.read_text(errors="replace").lower()
        if secret.lower() in text:
            found.append(path.name)
    return found


async def destination_lock(stack: LocalStack, session: Any) -> DestinationLock:
    """What the maker's client reads of the destination lock, from the destination chain's own RPC."""
    chain = session["dst"]["chain"]
    access = load_chains(stack.chains_file)[chain]
    async with httpx.AsyncClient(timeout=10) as client:
        return await ChainReader(client).read(chain, access, session["dst_lock_id"])


def held_for(session: Any, secret: str, hashlock: str) -> Held:
    return Held(
        secret=secret,
        hashlock=hashlock,
        receiver=session["receiver"],
        dst_chain=session["dst"]["chain"],
        dst_token=session["dst"]["token"],
        session_id=session["session_id"],
    )


async def test_base_to_near_the_maker_checks_the_lock_then_releases_over_rest(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    assert stack.evm is not None and stack.near is not None
    balances = Balances(stack)
    before = balances.snapshot()
    secret, hashlock = draw()
    session = await create(api, stack, hashlock)
    sid = session["session_id"]
    early = await api.post(f"/api/v1/sessions/{sid}/secret", json={"secret": secret})
    assert early.status_code == 400 and early.json()["error"]["reason"] == "SECRET_NOT_EXPECTED", early.text

    assert (await maker_step(api, stack, session)).status_code == 200
    waiting = await state_reached(api, sid, {"awaiting_secret", "refunding", "refunded", "failed"})
    assert waiting["state"] == "awaiting_secret", waiting["error"]
    assert waiting["secret"] is None and waiting["secret_deadline"] > 0
    # Nothing the service keeps holds the secret: it was never sent.
    assert (await stored_record(stack, sid))["sealed_secret"] == ""
    assert logs_mention(stack, secret) == []

    lock = await destination_lock(stack, waiting)
    assert problems(lock, waiting, held_for(waiting, secret, hashlock)) == []
    assert lock.chain_now < waiting["secret_deadline"] < lock.cancellation_at
    # When each refund window opens, as the chains have it.
    assert waiting["dst_cancellation_at"] == lock.cancellation_at
    assert waiting["src_cancellation_at"] > 0

    wrong = await api.post(f"/api/v1/sessions/{sid}/secret", json={"secret": "11" * 32})
    assert wrong.status_code == 400, wrong.text
    assert wrong.json()["error"]["field"] == "secret" and "11" * 32 not in wrong.text
    released = await api.post(f"/api/v1/sessions/{sid}/secret", json={"secret": "0x" + secret.upper()})
    assert released.status_code == 200, released.text
    assert released.json()["secret"] is None  # not public before it is on chain
    again = await api.post(f"/api/v1/sessions/{sid}/secret", json={"secret": secret})
    assert again.status_code == 200, again.text

    done = await state_reached(api, sid, {"completed", "refunded", "failed"})
    assert done["state"] == "completed", done["error"]
    assert done["secret"] == secret
    dst_amount = int(done["dst_amount"])
    after = balances.snapshot()
    assert after["base_maker"] == before["base_maker"] - AMOUNT
    assert after["base_resolver"] == before["base_resolver"] + AMOUNT
    assert after["near_receiver"] == before["near_receiver"] + dst_amount
    assert after["near_resolver"] == before["near_resolver"] - dst_amount
    # The session ended: nothing to release any more.
    ended = await api.post(f"/api/v1/sessions/{sid}/secret", json={"secret": secret})
    assert ended.status_code == 400 and ended.json()["error"]["reason"] == "SESSION_ENDED", ended.text


async def test_near_to_base_released_over_the_websocket(
    api: httpx.AsyncClient, gateway: GatewayProcess, stack: LocalStack
) -> None:
    """The NEAR maker locks on the HTLC with the hashlock they chose; the secret goes over the WebSocket."""
    assert stack.evm is not None and stack.near is not None and stack.near_devnet is not None
    balances = Balances(stack)
    maker_before = stack.near_devnet.token_balance(stack.near.maker.account_id)
    receiver_before = balances.base(stack.evm.receiver.address)
    secret, hashlock = draw()
    session = await create(api, stack, hashlock, near_source=True)
    sid = session["session_id"]
    assert hashlock in json.dumps(session["maker_action"])  # the maker's own hashlock is what they lock with
    async with connect(gateway.ws_url, additional_headers={"X-API-Key": API_KEY}) as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": [sid]}))
        assert (await maker_step(api, stack, session)).status_code == 200
        waiting = await state_reached(api, sid, {"awaiting_secret", "refunding", "refunded", "failed"})
        assert waiting["state"] == "awaiting_secret", waiting["error"]
        lock = await destination_lock(stack, waiting)
        assert problems(lock, waiting, held_for(waiting, secret, hashlock)) == []

        await ws.send(json.dumps({"op": "reveal", "args": [{"session_id": sid, "secret": "22" * 32}]}))
        await ws.send(json.dumps({"op": "reveal", "args": [{"session_id": sid, "secret": secret}]}))
        replies: list[dict[str, Any]] = []
        while len(replies) < 2:
            event = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if event["event"] in ("error", "revealed"):
                replies.append(event)
        assert replies[0]["event"] == "error" and replies[0]["args"][0]["reason"] == "INVALID_ARGUMENT"
        assert "22" * 32 not in json.dumps(replies[0])
        assert replies[1]["event"] == "revealed" and replies[1]["args"][0]["session_id"] == sid
        # Mixing a secret into another op is refused (and never echoed).
        await ws.send(json.dumps({"op": "ping", "args": [{"session_id": sid, "secret": secret}]}))
        refused = json.loads(await asyncio.wait_for(ws.recv(), 30))
        while refused["event"] == "update":
            refused = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert refused["event"] == "error" and secret not in json.dumps(refused)

    done = await state_reached(api, sid, {"completed", "refunded", "failed"})
    assert done["state"] == "completed", done["error"]
    assert stack.near_devnet.token_balance(stack.near.maker.account_id) == maker_before - AMOUNT
    assert balances.base(stack.evm.receiver.address) == receiver_before + int(done["dst_amount"])


def like(session: Any, **extra: str) -> dict[str, Any]:
    """A create request for the same trade as `session`."""
    keys = ("src", "dst", "maker", "receiver")
    return {**{k: session[k] for k in keys}, "src_amount": str(AMOUNT), **extra}


async def test_a_hashlock_serves_one_session_only(api: httpx.AsyncClient, stack: LocalStack) -> None:
    _, hashlock = draw()
    first = await create(api, stack, hashlock)
    second = await api.post("/api/v1/sessions", json=like(first, secret_mode="maker", hashlock=hashlock))
    assert second.status_code == 400 and second.json()["error"]["field"] == "hashlock", second.text
    missing = await api.post("/api/v1/sessions", json=like(first, secret_mode="maker"))
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "hashlock", missing.text
    service_with_hashlock = await api.post("/api/v1/sessions", json=like(first, hashlock=draw()[1]))
    assert service_with_hashlock.status_code == 400, service_with_hashlock.text
    assert service_with_hashlock.json()["error"]["field"] == "hashlock"
    assert (await api.post(f"/api/v1/sessions/{first['session_id']}/cancel", json={})).status_code == 200


async def test_a_service_mode_session_takes_no_secret(api: httpx.AsyncClient, stack: LocalStack) -> None:
    created = await api.post("/api/v1/sessions", json=trade(stack))
    assert created.status_code == 201 and created.json()["secret_mode"] == "service"
    sid = created.json()["session_id"]
    refused = await api.post(f"/api/v1/sessions/{sid}/secret", json={"secret": "33" * 32})
    assert refused.status_code == 400 and refused.json()["error"]["reason"] == "SECRET_HELD_BY_SERVICE"
    assert (await api.post(f"/api/v1/sessions/{sid}/cancel", json={})).status_code == 200


async def test_never_released_released_late_or_refused_by_the_client_all_refund_whole(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    """Three makers, side by side: one never releases, one releases after the deadline, one whose client
    finds the lock is not what it asked for (here: another receiver) keeps the secret. Every source goes
    back to its maker, every destination to the resolver; no secret ever reaches a chain or a log."""
    assert stack.evm is not None and stack.near is not None and stack.near_devnet is not None
    balances = Balances(stack)
    before = balances.snapshot()
    drawn = [draw() for _ in range(3)]
    sessions = [await create(api, stack, hashlock) for _, hashlock in drawn]
    for session in sessions:
        assert (await maker_step(api, stack, session)).status_code == 200
    waiting = [
        await state_reached(api, s["session_id"], {"awaiting_secret", "refunding", "refunded", "failed"})
        for s in sessions
    ]
    assert [w["state"] for w in waiting] == ["awaiting_secret"] * 3, [w["error"] for w in waiting]

    # The third maker's client: the lock pays the session's receiver, but this maker asked for another one.
    secret, hashlock = drawn[2]
    asked = held_for(waiting[2], secret, hashlock)
    asked.receiver = "someone-else.test.near"
    refused = problems(await destination_lock(stack, waiting[2]), waiting[2], asked)
    assert refused and "not your receiver" in refused[0]

    # Past every secret deadline on the destination chain's clock.
    lock = await destination_lock(stack, waiting[0])
    latest = max(w["secret_deadline"] for w in waiting)
    await stack.near_devnet.afast_forward(delta_seconds=latest - lock.chain_now + 2)
    late = await api.post(f"/api/v1/sessions/{sessions[1]['session_id']}/secret", json={"secret": drawn[1][0]})
    assert late.status_code == 400, late.text
    assert late.json()["error"]["reason"] in {"SECRET_TOO_LATE", "SECRET_NOT_EXPECTED"}
    for session in sessions:
        refunding = await state_reached(api, session["session_id"], {"refunding", "refunded", "completed"})
        assert refunding["state"] == "refunding", refunding["state"]
        assert refunding["error"]["reason"] == "SECRET_NOT_RELEASED"

    # Past both cancellation windows: both legs of all three go back.
    await asyncio.to_thread(increase_time, balances.w3, 200)
    await stack.near_devnet.afast_forward(delta_seconds=200)
    for session, (secret, _) in zip(sessions, drawn, strict=True):
        done = await state_reached(api, session["session_id"], {"refunded", "completed", "failed"})
        assert done["state"] == "refunded", done["error"]
        assert done["secret"] is None
        assert logs_mention(stack, secret) == []
    assert balances.snapshot() == before
