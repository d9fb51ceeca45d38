"""The send journal: entries round-trip through Redis with an expiry, and a Redis that does not answer makes
the step UNAVAILABLE (JOURNAL_UNAVAILABLE) before anything is broadcast."""

from __future__ import annotations

import socket

import pytest
import redis.asyncio as aioredis
from swap_runtime.errors import Unavailable
from swap_runtime.journal import DEFAULT_TTL_S, MemoryJournal, RedisJournal, open_journal

ENTRY = {"tx_hash": "abc", "signed": "c2lnbmVk", "nonce": 7}


async def test_an_entry_round_trips_with_an_expiry(redis_url: str, redis_prefix: str) -> None:
    journal = RedisJournal(redis_url, f"{redis_prefix}chain-near:resolver.test.near:sent")
    try:
        assert await journal.get("lock:withdraw") is None
        await journal.put("lock:withdraw", ENTRY)
        assert await journal.get("lock:withdraw") == ENTRY
        client = aioredis.Redis.from_url(redis_url)
        try:
            ttl = await client.ttl(f"{redis_prefix}chain-near:resolver.test.near:sent:lock:withdraw")
        finally:
            await client.aclose()
        assert 0 < ttl <= DEFAULT_TTL_S
        await journal.drop("lock:withdraw")
        assert await journal.get("lock:withdraw") is None
    finally:
        await journal.close()


async def test_a_redis_that_refuses_makes_the_step_unavailable() -> None:
    with socket.socket() as holder:  # a loopback port nobody listens on
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
    journal = RedisJournal(f"redis://127.0.0.1:{port}/0", "ns", timeout_s=1.0)
    try:
        for attempt in (journal.get("step"), journal.put("step", ENTRY)):
            with pytest.raises(Unavailable) as refused:
                await attempt
            assert refused.value.reason == "JOURNAL_UNAVAILABLE"
        await journal.drop("step")  # a stale entry is harmless: dropping never fails the step
    finally:
        await journal.close()


async def test_a_redis_that_never_answers_times_out_as_unavailable() -> None:
    with socket.socket() as silent:  # accepts connections, answers nothing
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        journal = RedisJournal(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", "ns", timeout_s=0.5)
        try:
            with pytest.raises(Unavailable) as silent_error:
                await journal.put("step", ENTRY)
            assert silent_error.value.reason == "JOURNAL_UNAVAILABLE"
        finally:
            await journal.close()


async def test_without_a_url_the_journal_is_in_memory() -> None:
    journal = open_journal("", "ns")
    assert isinstance(journal, MemoryJournal)
    await journal.put("step", ENTRY)
    assert await journal.get("step") == ENTRY
    await journal.drop("step")
    assert await journal.get("step") is None
