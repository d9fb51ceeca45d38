"""Requests per tenant, and per client address for requests without a valid key, in Redis (moving window,
the `limits` library); shared by every gateway replica."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import redis.asyncio as aioredis
from limits import RateLimitItem, parse_many
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

log = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "WS"})


class LimiterUnavailable(Exception):
    """Redis did not answer and the policy for this kind of request is to refuse it."""


class RateLimiter:
    def __init__(
        self,
        limit: str,
        redis_url: str,
        redis: aioredis.Redis,
        key_prefix: str,
        *,
        anon_limit: str = "",
        fail_open_reads: bool = True,
        fail_open_writes: bool = True,
    ) -> None:
        self._items: list[RateLimitItem] = parse_many(limit) if limit else []
        self._anon_items: list[RateLimitItem] = parse_many(anon_limit) if anon_limit else []
        self._fail_open_reads = fail_open_reads
        self._fail_open_writes = fail_open_writes
        # The storage shares the gateway's connection pool, so closing that client closes both.
        options: dict[str, Any] = {
            "implementation": "redispy",
            "connection_pool": redis.connection_pool,
            "key_prefix": f"{key_prefix}ratelimit",
            "wrap_exceptions": True,
        }
        storage = storage_from_string("async+" + redis_url, **options)
        self._limiter = MovingWindowRateLimiter(storage)

    @property
    def enabled(self) -> bool:
        return bool(self._items)

    async def retry_after(self, identity: str, method: str = "GET") -> int | None:
        """Counts one request of a tenant; None when allowed, else the seconds until it would be."""
        return await self._hit(self._items, f"tenant:{identity}", method)

    async def retry_after_anonymous(self, address: str, method: str = "GET") -> int | None:
        """Counts one request without a valid key from client `address`."""
        return await self._hit(self._anon_items, f"addr:{address}", method)

    async def _hit(self, items: list[RateLimitItem], identity: str, method: str) -> int | None:
        """When Redis does not answer, reads are let through (an outage of the limiter's store must not take
        the API down with it; the health check reports it) and writes refused, as the settings say."""
        for item in items:
            try:
                if await self._limiter.hit(item, identity):
                    continue
                stats = await self._limiter.get_window_stats(item, identity)
            except StorageError as err:
                fail_open = self._fail_open_reads if method.upper() in READ_METHODS else self._fail_open_writes
                log.warning(
                    "rate limiter unavailable",
                    extra={"error": repr(err.storage_error), "allowed": fail_open, "method": method},
                )
                if fail_open:
                    return None
                raise LimiterUnavailable from None
            return max(1, math.ceil(stats.reset_time - time.time()))
        return None
