"""The write-behind quote store with a stand-in for Redis: offers never wait, batches are bounded, a full queue
and a failed write drop quotes (counted and logged) without touching the caller, close() flushes."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY
from quote.store import RedisQuoteStore, WriteBehind
from swap_runtime.errors import Unavailable


class FakeRedis:
    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str, int]]] = []
        self.fail = False
        self.gate: asyncio.Event | None = None
        self.closed = False

    async def put_many(self, entries: list[tuple[str, str, int]]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise Unavailable("quote store unavailable: refused", reason="QUOTE_STORE_UNAVAILABLE")
        self.batches.append(entries)

    async def get(self, serial: str) -> str | None:
        for batch in self.batches:
            for s, token, _ in batch:
                if s == serial:
                    return token
        return None

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self.closed = True


def not_stored(why: str) -> float:
    return REGISTRY.get_sample_value("swap_quote_store_failed_total", {"why": why}) or 0.0


def make(redis: FakeRedis, **kw: Any) -> WriteBehind:
    store = WriteBehind(cast(RedisQuoteStore, redis), linger_s=0.0, **kw)
    store.start()
    return store


async def test_offers_are_written_in_batches_with_their_ttl() -> None:
    redis = FakeRedis()
    store = make(redis, max_batch=3)
    for i in range(7):
        store.offer(f"{i:032x}", f"token-{i}", 30.0001)
    assert store.pending() == 7  # nothing written before the caller yields
    await store.flush()
    assert [len(b) for b in redis.batches] == [3, 3, 1]
    serial, token, ttl_ms = redis.batches[0][0]
    assert (serial, token) == (f"{0:032x}", "token-0")
    assert 29_000 < ttl_ms <= 30_001  # rounded up, less the time it waited
    assert await store.get(f"{6:032x}") == "token-6"
    await store.close()
    assert redis.closed


async def test_a_quote_waiting_to_be_written_is_found() -> None:
    redis = FakeRedis()
    redis.gate = asyncio.Event()
    store = make(redis)
    store.offer("a" * 32, "token-a", 30)
    await asyncio.sleep(0.01)
    assert redis.batches == [] and await store.get("a" * 32) == "token-a"
    redis.gate.set()
    await store.close()


async def test_a_full_queue_drops_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    redis = FakeRedis()
    redis.gate = asyncio.Event()
    store = make(redis, max_pending=2)
    before = not_stored("queue_full")
    for i in range(5):
        store.offer(f"{i:032x}", "t", 30)  # never raises, never waits
    assert store.pending() == 2
    assert not_stored("queue_full") - before == 3
    caplog.set_level(logging.WARNING, logger="quote.store")
    redis.gate.set()
    await store.flush()
    assert any("queue was full" in r.getMessage() and getattr(r, "quotes", 0) == 3 for r in caplog.records)
    await store.close()


async def test_a_failed_write_is_counted_and_logged_and_the_writer_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="quote.store")
    redis = FakeRedis()
    redis.fail = True
    store = make(redis)
    before = not_stored("write_failed")
    store.offer("b" * 32, "t", 30)
    store.offer("c" * 32, "t", 30)
    await store.flush()
    assert not_stored("write_failed") - before == 2
    assert any(r.getMessage() == "issued quotes not stored" for r in caplog.records)
    redis.fail = False
    store.offer("d" * 32, "t", 30)
    await store.flush()
    assert await store.get("d" * 32) == "t"
    await store.close()


async def test_close_writes_what_is_queued() -> None:
    redis = FakeRedis()
    store = WriteBehind(cast(RedisQuoteStore, redis), linger_s=10.0)
    store.start()
    store.offer("e" * 32, "t", 30)
    await store.close()
    assert redis.batches == [[("e" * 32, "t", redis.batches[0][0][2])]]
