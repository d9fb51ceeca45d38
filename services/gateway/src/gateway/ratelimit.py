"""Requests per API key in Redis (moving window, the `limits` library); shared by every gateway replica."""

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


class RateLimiter:
    def __init__(self, limit: str, redis_url: str, redis: aioredis.Redis, key_prefix: str) -> None:
        self._items: list[RateLimitItem] = parse_many(limit) if limit else []
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

    async def retry_after(self, identity: str) -> int | None:
        """Counts one request of `identity`; None when allowed, else the seconds until it would be.

        When Redis does not answer the request is let through: an outage of the limiter's store must not
        take the API down with it (the health check reports it)."""
        for item in self._items:
            try:
                if await self._limiter.hit(item, identity):
                    continue
                stats = await self._limiter.get_window_stats(item, identity)
            except StorageError as err:
                log.warning("rate limiter unavailable; request allowed", extra={"error": repr(err.storage_error)})
                return None
            return max(1, math.ceil(stats.reset_time - time.time()))
        return None
