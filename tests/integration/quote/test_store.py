"""The quote store on a real Redis: round trip, expiry with the validity window, and an unreachable Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from quote.model import NATIVE, Asset, Auction, Chain, Quote, TimelockPlan, Timelocks
from quote.store import RedisQuoteStore
from swap_devnet.procs import free_port
from swap_runtime.errors import Unavailable

pytestmark = pytest.mark.integration

QUOTE = Quote(
    quote_id="0123456789abcdef0123456789abcdef",
    src=Asset(Chain.BASE, "0x1111111111111111111111111111111111111111"),
    dst=Asset(Chain.NEAR, NATIVE),
    src_amount=2**255,  # amounts beyond 64 bits survive the JSON round trip
    market_rate=10**36 // 3,
    auction=Auction(3 * 10**24, 2 * 10**24, 1_700_000_000, 60, 3 * 10**24),
    protocol_fee=1,
    network_fee=2,
    slippage_bps=50,
    min_received=10**24,
    issued_at=1_700_000_000,
    valid_until=1_700_000_030,
    timelocks=TimelockPlan(Timelocks(2, 60, 120, 180), Timelocks(1, 40, 80, 100), 10),
    refund_guaranteed_by=1_700_000_240,
    src_safety_deposit=10**15,
    dst_safety_deposit=10**22,
)


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisQuoteStore]:
    s = RedisQuoteStore.from_url(redis_url, redis_prefix)
    try:
        yield s
    finally:
        await s.close()


async def test_round_trip(store: RedisQuoteStore, redis_client: aioredis.Redis, redis_prefix: str) -> None:
    await store.put(QUOTE, 30)
    assert await store.get(QUOTE.quote_id) == QUOTE
    assert store.key(QUOTE.quote_id) == f"{redis_prefix}quote:{QUOTE.quote_id}"
    assert 29_000 < await redis_client.pttl(store.key(QUOTE.quote_id)) <= 30_000


async def test_missing(store: RedisQuoteStore) -> None:
    assert await store.get("f" * 32) is None


async def test_expires_with_its_ttl(store: RedisQuoteStore) -> None:
    await store.put(QUOTE, 0.2)
    assert await store.get(QUOTE.quote_id) == QUOTE
    await asyncio.sleep(0.3)
    assert await store.get(QUOTE.quote_id) is None


async def test_unreachable_redis_is_unavailable() -> None:
    store = RedisQuoteStore.from_url(f"redis://127.0.0.1:{free_port()}/0", "test:none:", timeout_s=0.5)
    try:
        with pytest.raises(Unavailable) as err:
            await store.put(QUOTE, 1)
        assert err.value.reason == "QUOTE_STORE_UNAVAILABLE"
        with pytest.raises(Unavailable):
            await store.get(QUOTE.quote_id)
        with pytest.raises(Unavailable):
            await store.ping()
    finally:
        await store.close()
