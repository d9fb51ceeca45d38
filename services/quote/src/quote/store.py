"""Issued quotes in Redis, written behind the request path.

A quote's id is a signed token (quote.issuer) that the session service opens on its own: nothing needs Redis to
bind a quote. Redis keeps the record of what was issued, by the quote's serial, so that LookupQuote finds a
quote by the serial a session shows. Each entry expires with the quote's validity window plus an hour in which
a lookup is told the quote expired rather than that it never existed (the issuer decides validity by its clock).

GetQuote only queues the entry (WriteBehind.offer: no await, no I/O); one background task writes what queued
in batches, one script call each, at most every linger_s while quotes keep coming. The queue is bounded: when
Redis is slow or down, what does not fit is dropped, counted and logged, and quotes are still served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from typing import Protocol

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from swap_runtime.errors import Unavailable

log = logging.getLogger(__name__)

QUOTES_STORED = Counter("swap_quote_store_written_total", "Issued quotes written to Redis (write-behind).")
QUOTES_NOT_STORED = Counter(
    "swap_quote_store_failed_total",
    "Issued quotes never written to Redis, by why: the write failed, or the queue was full.",
    ["why"],
)
QUOTES_PENDING = Gauge("swap_quote_store_pending", "Issued quotes queued for Redis, not yet written.")

# (serial, token, expiry in milliseconds from the moment it was queued, monotonic time queued)
Entry = tuple[str, str, int, float]


def _unavailable(err: Exception) -> Unavailable:
    return Unavailable(f"quote store unavailable: {err}", reason="QUOTE_STORE_UNAVAILABLE")


class QuoteStore(Protocol):
    def offer(self, serial: str, token: str, ttl_s: float) -> None:
        """Queues a quote to be kept for ttl_s; never waits and never fails the caller."""
        ...

    async def get(self, serial: str) -> str | None: ...

    async def close(self) -> None: ...


# One command for a whole batch: redis-py spends about 25 us of CPU packing each pipelined SET, a script's
# arguments about 1 us each (measured; docs/decisions.md).
_PUT_MANY = """
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[2 * i - 1], 'PX', ARGV[2 * i])
end
return #KEYS
"""


class RedisQuoteStore:
    """Each quote's token is one value under "<prefix>quote:<serial>" that Redis drops when its ttl ends."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._put_many = client.register_script(_PUT_MANY)

    @classmethod
    def from_url(cls, url: str, prefix: str, *, timeout_s: float = 2.0) -> RedisQuoteStore:
        return cls(aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s), prefix)

    def key(self, serial: str) -> str:
        return f"{self._prefix}quote:{serial}"

    async def put_many(self, entries: list[tuple[str, str, int]]) -> None:
        """(serial, token, ttl in ms) each, in one round trip."""
        keys = [self.key(serial) for serial, _, _ in entries]
        args: list[str | int] = []
        for _, token, ttl_ms in entries:
            args += (token, max(1, ttl_ms))
        try:
            await self._put_many(keys=keys, args=args)
        except (RedisConnectionError, RedisTimeoutError) as err:
            raise _unavailable(err) from None

    async def get(self, serial: str) -> str | None:
        try:
            raw = await self._redis.get(self.key(serial))
        except (RedisConnectionError, RedisTimeoutError) as err:
            raise _unavailable(err) from None
        if raw is None:
            return None
        return raw.decode("ascii") if isinstance(raw, bytes) else str(raw)

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisConnectionError, RedisTimeoutError) as err:
            raise _unavailable(err) from None

    async def close(self) -> None:
        await self._redis.aclose()


class WriteBehind:
    """The QuoteStore of the service: offer() queues, a background task writes batches of up to max_batch.

    At most max_pending entries wait; past that new ones are dropped (counted with why="queue_full"). A failed
    batch is dropped too (why="write_failed"), not retried: a lookup by serial of those quotes answers
    QUOTE_NOT_FOUND, while the quotes themselves stay usable (the session opens the signed token). Expiries
    count from when a quote was queued, so a late write does not keep it longer."""

    def __init__(
        self,
        store: RedisQuoteStore,
        *,
        max_pending: int = 10_000,
        max_batch: int = 500,
        linger_s: float = 0.05,
        flush_timeout_s: float = 2.0,
    ) -> None:
        self._store = store
        self._linger_s = linger_s
        self._max_pending = max_pending
        self._max_batch = max_batch
        self._flush_timeout_s = flush_timeout_s
        self._pending: deque[Entry] = deque()
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()  # flush(): write now, without lingering
        self._task: asyncio.Task[None] | None = None
        self._dropped_since_log = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="quote-store-write-behind")

    def offer(self, serial: str, token: str, ttl_s: float) -> None:
        if len(self._pending) >= self._max_pending:
            QUOTES_NOT_STORED.labels("queue_full").inc()
            self._dropped_since_log += 1
            return
        # Milliseconds, rounded up: the entry must not vanish before its valid_until second has passed.
        self._pending.append((serial, token, math.ceil(ttl_s * 1000), time.monotonic()))
        if not self._wake.is_set():
            self._wake.set()

    def pending(self) -> int:
        return len(self._pending)

    async def get(self, serial: str) -> str | None:
        for queued, token, _, _ in self._pending:  # issued a moment ago, not written yet
            if queued == serial:
                return token
        return await self._store.get(serial)

    async def ping(self) -> None:
        await self._store.ping()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            # A round trip costs the event loop far more than a command: under load, let a batch gather.
            if len(self._pending) < self._max_batch and not self._hurry.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._hurry.wait(), self._linger_s)
            self._wake.clear()
            while self._pending:
                await self._write_batch()

    async def _write_batch(self) -> None:
        count = min(len(self._pending), self._max_batch)
        batch = [self._pending[i] for i in range(count)]
        QUOTES_PENDING.set(len(self._pending))
        now = time.monotonic()
        try:
            await self._store.put_many(
                [(serial, token, ttl_ms - int((now - queued) * 1000)) for serial, token, ttl_ms, queued in batch]
            )
        except (Unavailable, RedisError, OSError) as err:
            QUOTES_NOT_STORED.labels("write_failed").inc(count)
            log.warning("issued quotes not stored", extra={"quotes": count, "error": str(err)})
        else:
            QUOTES_STORED.inc(count)
        finally:
            for _ in range(count):
                self._pending.popleft()
            QUOTES_PENDING.set(len(self._pending))
        if self._dropped_since_log:
            log.warning(
                "issued quotes not stored: the write-behind queue was full",
                extra={"quotes": self._dropped_since_log, "max_pending": self._max_pending},
            )
            self._dropped_since_log = 0

    async def flush(self) -> None:
        """Waits until everything queued so far is written (or dropped)."""
        self.start()
        self._hurry.set()
        try:
            while self._pending:
                self._wake.set()
                await asyncio.sleep(0.005)
        finally:
            self._hurry.clear()

    async def close(self) -> None:
        """Writes what is queued (for at most flush_timeout_s), then stops and closes Redis."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), self._flush_timeout_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pending:
            QUOTES_NOT_STORED.labels("write_failed").inc(len(self._pending))
            log.warning("issued quotes not stored at shutdown", extra={"quotes": len(self._pending)})
            self._pending.clear()
        await self._store.close()
