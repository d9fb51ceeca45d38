"""WatchSession's caps and its own Redis pool: the session service as built by session.main on real Redis,
with no chain behind it (watching a stored session needs none)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from google.rpc import error_details_pb2
from session.config import SessionSettings
from session.main import build
from session.model import Leg, SessionRecord, Step
from session.states import State
from session.store import SessionStore
from session.views import snapshot
from session.watchers import Watchers
from swap.session.v1 import session_pb2, session_pb2_grpc
from swap_runtime.errors import ResourceExhausted

from tests.fixtures.quote import PUBLIC_KEY
from tests.integration.rich_status import error_info

pytestmark = pytest.mark.integration

MAX_STREAMS = 5
MAX_PER_CLIENT = 2

Open = Callable[..., Awaitable[Any]]


async def store_session(redis_url: str, prefix: str, state: State) -> str:
    store = SessionStore(aioredis.Redis.from_url(redis_url), prefix)
    now = time.time()
    record = SessionRecord(
        session_id=uuid.uuid4().hex,
        state=state,
        src=Leg(chain="base", token="0x" + "11" * 20, amount="1"),
        dst=Leg(chain="near", token="tusd.test.near"),
        maker="0x" + "22" * 20,
        receiver="receiver.test.near",
        hashlock="33" * 32,
        sealed_secret="",
        quote="",
        steps=[Step(state=state, at=now)],
        created_at=now,
        updated_at=now,
    )
    try:
        await store.create(record, snapshot(record))
    finally:
        await store.close()
    return record.session_id


@pytest.fixture
async def service(redis_url: str, redis_prefix: str) -> AsyncIterator[session_pb2_grpc.SessionServiceStub]:
    settings = SessionSettings(
        redis_url=redis_url,
        key_prefix=redis_prefix,
        dev_mode=True,
        plaintext=True,
        shutdown_grace_s=0.5,
        watch_max_streams=MAX_STREAMS,
        watch_max_per_client=MAX_PER_CLIENT,
        watch_redis_max_connections=MAX_STREAMS,
        quote_public_keys=[PUBLIC_KEY],
    )
    service, _ = await build(settings)
    port = await service.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield session_pb2_grpc.SessionServiceStub(channel)
    finally:
        await service.stop()


@pytest.fixture
async def open_stream(
    service: session_pb2_grpc.SessionServiceStub, redis_url: str, redis_prefix: str
) -> AsyncIterator[Open]:
    """Opens a stream on one open session and waits for its first update (or its error); cancels all at the end."""
    session_id = await store_session(redis_url, redis_prefix, State.BOTH_LOCKED)
    calls: list[Any] = []

    async def open_(tenant: str | None = None) -> Any:
        # The stored session has no tenant: only an operator tenant (or an internal caller) sees it.
        metadata = (("x-tenant", tenant), ("x-tenant-role", "operator")) if tenant else None
        call = service.WatchSession(session_pb2.WatchSessionRequest(session_id=session_id), metadata=metadata)
        calls.append(call)
        first = await asyncio.wait_for(call.read(), 5)
        assert first.session.session_id == session_id
        return call

    yield open_
    for call in calls:
        call.cancel()


async def refused(open_: Open, tenant: str | None = None) -> error_details_pb2.ErrorInfo:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await open_(tenant)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, err.value
    info = error_info(err.value)
    assert info.reason == "TOO_MANY_WATCHERS"
    return info


async def opens_again(open_: Open, tenant: str | None = None) -> Any:
    """A cancelled stream's slot comes back once the server has seen the cancel, a moment later."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return await open_(tenant)
        except grpc.aio.AioRpcError as err:
            if err.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_past_the_per_client_cap_only_that_client_is_refused(open_stream: Open) -> None:
    first = [await open_stream("maker") for _ in range(MAX_PER_CLIENT)]
    info = await refused(open_stream, "maker")
    assert info.metadata["cap"] == "client"
    # Another tenant, and the peer without a tenant, still watch.
    await open_stream("someone-else")
    await open_stream()

    first[0].cancel()
    await opens_again(open_stream, "maker")


async def test_past_the_replica_cap_everyone_is_refused_until_streams_end(open_stream: Open) -> None:
    held = [await open_stream(f"tenant-{i}") for i in range(MAX_STREAMS)]
    for tenant in ("tenant-0", "a-new-tenant", None):
        info = await refused(open_stream, tenant)
        assert info.metadata["cap"] == "replica"

    for call in held:
        call.cancel()
    # Every slot comes back: the whole cap can be taken again.
    for i in range(MAX_STREAMS):
        await opens_again(open_stream, f"again-{i}")
    await refused(open_stream, "one-more")


async def test_a_stream_that_ends_with_its_session_gives_its_slot_back(
    service: session_pb2_grpc.SessionServiceStub, redis_url: str, redis_prefix: str
) -> None:
    ended = await store_session(redis_url, redis_prefix, State.COMPLETED)
    # More streams, one after another, than the caps allow at once: each closes after the last update.
    for _ in range(MAX_STREAMS + 1):
        updates = [u async for u in service.WatchSession(session_pb2.WatchSessionRequest(session_id=ended))]
        assert [u.session.state for u in updates] == [session_pb2.SESSION_STATE_COMPLETED]


async def test_refused_and_failed_streams_give_their_slot_back(
    service: session_pb2_grpc.SessionServiceStub, open_stream: Open
) -> None:
    for _ in range(MAX_PER_CLIENT + 1):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await service.WatchSession(session_pb2.WatchSessionRequest(session_id="nosuch")).read()
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    for _ in range(MAX_PER_CLIENT):
        await open_stream()


async def test_a_stream_waits_for_a_watch_connection_no_longer_than_the_pool_timeout(
    redis_url: str, redis_prefix: str
) -> None:
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=1, timeout=0.3)
    client = aioredis.Redis(connection_pool=pool)
    watchers = Watchers(client, redis_prefix, max_streams=10, max_per_client=10)
    # The pool's one connection, held by a command that blocks for a second.

    async def hold() -> None:
        await client.blpop([f"{redis_prefix}nothing"], timeout=1)

    holding = asyncio.create_task(hold())
    await asyncio.sleep(0.1)
    started = time.monotonic()
    with pytest.raises(ResourceExhausted) as err:
        await watchers.get("any")
    assert err.value.reason == "TOO_MANY_WATCHERS"
    assert err.value.metadata == {"cap": "pool"}
    assert time.monotonic() - started < 0.9
    await holding
    assert await watchers.get("any") is None
    await watchers.close()
