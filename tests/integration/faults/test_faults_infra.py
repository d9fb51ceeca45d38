"""The infrastructure under the services fails mid-swap: Redis (with its append-only file, as deployed) is
killed and restarted, or the gateway is killed under a WebSocket client. The swap still completes with
every balance accounted for, and the client misses no update."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from swap.session.v1 import session_pb2_grpc
from swap_devnet.procs import GatewayProcess, ServiceProcess, free_port
from swap_devnet.redis_server import PersistentRedis
from swap_devnet.stack import LocalStack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.fixtures.gateway import API_KEY, TENANT, gateway_env
from tests.integration.faults.test_faults import assert_whole, finish
from tests.integration.swaps import TERMINAL, Balances, St, create_base_to_near, execute_base, watch_until

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.slow]

WS_TERMINAL = {"completed", "refunded", "cancelled", "failed", "timeout"}


@pytest.fixture
def persistent_redis(tmp_path: Path, stack: LocalStack) -> Iterator[PersistentRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PersistentRedis(tmp_path / "redis-data", stack.options.work_dir).start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def session_on(persistent_redis: PersistentRedis, stack: LocalStack) -> Iterator[ServiceProcess]:
    """A second session service, the stack's settings but its state in `persistent_redis`."""
    env = {
        **stack.services["session"].env,
        "SESSION_REDIS_URL": persistent_redis.url,
        "SESSION_METRICS_PORT": str(free_port()),
    }
    proc = ServiceProcess("session-aof", "session.main", env, stack.options.work_dir, port=free_port())
    env["SESSION_PORT"] = str(proc.port)
    with proc:
        yield proc


async def test_redis_killed_and_restarted_with_its_aof_at_both_locked(
    stack: LocalStack, persistent_redis: PersistentRedis, session_on: ServiceProcess
) -> None:
    balances = Balances(stack)
    before = balances.snapshot()
    async with session_on.channel(stack.identity_dir("operator")) as channel:
        sessions = session_pb2_grpc.SessionServiceStub(channel)
        session = await create_base_to_near(sessions, stack)
        await execute_base(sessions, stack, session)
        reached, _ = await watch_until(sessions, session.session_id, {St.SESSION_STATE_BOTH_LOCKED} | TERMINAL)
        assert reached.state == St.SESSION_STATE_BOTH_LOCKED, reached
        persistent_redis.kill()
        # Long enough for the saga to hit the outage on its next step.
        await asyncio.sleep(2.0)
        persistent_redis.start()
        done, seen = await finish(sessions, stack, session.session_id)
    assert_whole(before, balances.snapshot(), done)
    assert done.state == St.SESSION_STATE_COMPLETED, (seen, done.error)
    assert session_on.returncode is None, session_on.tail()


async def next_update(ws: ClientConnection) -> dict[str, Any]:
    while True:
        event: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 90))
        if event["event"] == "update":
            [update] = event["args"]
            assert set(update) == {"cursor", "session"}, update
            return dict(update)
        assert event["event"] in {"subscribed", "unsubscribed"}, event


async def updates_until(ws: ClientConnection, states: set[str], seen: list[dict[str, Any]]) -> dict[str, Any]:
    while True:
        update = await next_update(ws)
        seen.append(update)
        if update["session"]["state"] in states:
            return update


async def subscribe(ws: ClientConnection, arg: str | dict[str, str]) -> None:
    await ws.send(json.dumps({"op": "subscribe", "channel": "session", "args": [arg]}))


async def test_gateway_killed_at_source_locked_and_the_client_resumes(
    stack: LocalStack, sessions: session_pb2_grpc.SessionServiceStub, tmp_path: Path
) -> None:
    balances = Balances(stack)
    before = balances.snapshot()
    # The session is made straight on the session service (no tenant): the gateway's tenant sees it as an
    # operator does.
    env = gateway_env(stack, GATEWAY_OPERATOR_TENANTS=TENANT)
    gateway = GatewayProcess("gateway-faults", env, tmp_path).start()
    try:
        session = await create_base_to_near(sessions, stack)
        seen: list[dict[str, Any]] = []
        async with connect(gateway.ws_url, additional_headers={"X-API-Key": API_KEY}) as first:
            await subscribe(first, session.session_id)
            await updates_until(first, {"initialized"}, seen)
            await execute_base(sessions, stack, session)
            await updates_until(first, {"source_locked", *WS_TERMINAL}, seen)
            assert seen[-1]["session"]["state"] == "source_locked", seen[-1]
            gateway.kill()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(first.recv(), 10)
        gateway.start()
        async with connect(gateway.ws_url, additional_headers={"X-API-Key": API_KEY}) as second:
            await subscribe(second, {"session_id": session.session_id, "cursor": seen[-1]["cursor"]})
            last = await updates_until(second, WS_TERMINAL, seen)
    finally:
        gateway.stop()

    versions = [update["session"]["version"] for update in seen]
    assert versions == list(range(versions[0], last["session"]["version"] + 1)), versions
    done, _ = await finish(sessions, stack, session.session_id)
    assert last["session"]["state"] == "completed", [u["session"]["state"] for u in seen]
    assert_whole(before, balances.snapshot(), done)
    assert done.state == St.SESSION_STATE_COMPLETED, done.error
