"""The quote store on a real Redis: a batch in one round trip, expiry with each entry's ttl, the write-behind
queue in front of it, and an unreachable Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from quote.store import RedisQuoteStore, WriteBehind
from swap_devnet.procs import free_port
from swap_runtime.errors import Unavailable

pytestmark = pytest.mark.integration

SERIAL = "0123456789abcdef0123456789abcdef"
TOKEN = "AQ" + "x" * 480  # the store keeps what it is given


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisQuoteStore]:
    s = RedisQuoteStore.from_url(redis_url, redis_prefix)
    try:
        yield s
    finally:
        await s.close()


async def test_round_trip(store: RedisQuoteStore, redis_client: aioredis.Redis, redis_prefix: str) -> None:
    await store.put_many([(SERIAL, TOKEN, 30_000), ("f" * 32, "other", 60_000)])
    assert await store.get(SERIAL) == TOKEN
    assert await store.get("f" * 32) == "other"
    assert store.key(SERIAL) == f"{redis_prefix}quote:{SERIAL}"
    assert 29_000 < await redis_client.pttl(store.key(SERIAL)) <= 30_000
    assert 59_000 < await redis_client.pttl(store.key("f" * 32)) <= 60_000


async def test_missing(store: RedisQuoteStore) -> None:
    assert await store.get("e" * 32) is None


async def test_expires_with_its_ttl(store: RedisQuoteStore) -> None:
    await store.put_many([(SERIAL, TOKEN, 200)])
    assert await store.get(SERIAL) == TOKEN
    await asyncio.sleep(0.3)
    assert await store.get(SERIAL) is None


async def test_written_behind_in_batches(redis_url: str, redis_prefix: str) -> None:
    behind = WriteBehind(RedisQuoteStore.from_url(redis_url, redis_prefix), max_batch=100)
    behind.start()
    try:
        for i in range(250):
            behind.offer(f"{i:032x}", f"token-{i}", 30)
        await behind.flush()
        assert behind.pending() == 0
        assert await behind.get(f"{249:032x}") == "token-249"
        assert await behind.get(f"{0:032x}") == "token-0"
    finally:
        await behind.close()


async def test_unreachable_redis_is_unavailable() -> None:
    store = RedisQuoteStore.from_url(f"redis://127.0.0.1:{free_port()}/0", "test:none:", timeout_s=0.5)
    try:
        with pytest.raises(Unavailable) as err:
            await store.put_many([(SERIAL, TOKEN, 1000)])
        assert err.value.reason == "QUOTE_STORE_UNAVAILABLE"
        with pytest.raises(Unavailable):
            await store.get(SERIAL)
        with pytest.raises(Unavailable):
            await store.ping()
    finally:
        await store.close()
