"""Issued quotes in Redis, each with an expiry: its validity window plus an hour in which a lookup is told the
quote expired rather than that it never existed (the quoter decides validity by its clock)."""

from __future__ import annotations

import math
from typing import Protocol

import redis.asyncio as aioredis
from pydantic import TypeAdapter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from swap_runtime.errors import Unavailable

from quote.model import Quote

_QUOTE = TypeAdapter(Quote)


class QuoteStore(Protocol):
    async def put(self, quote: Quote, ttl_s: float) -> None: ...

    async def get(self, quote_id: str) -> Quote | None: ...

    async def close(self) -> None: ...


class RedisQuoteStore:
    """Each quote is one JSON value under "<prefix>quote:<id>" that Redis drops when its ttl ends."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str, *, timeout_s: float = 2.0) -> RedisQuoteStore:
        return cls(aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s), prefix)

    def key(self, quote_id: str) -> str:
        return f"{self._prefix}quote:{quote_id}"

    async def put(self, quote: Quote, ttl_s: float) -> None:
        # Milliseconds, rounded up: the quote must not vanish before its valid_until second has passed.
        ttl_ms = max(1, math.ceil(ttl_s * 1000))
        try:
            await self._redis.set(self.key(quote.quote_id), _QUOTE.dump_json(quote), px=ttl_ms)
        except (RedisConnectionError, RedisTimeoutError) as err:
            raise Unavailable(f"quote store unavailable: {err}", reason="QUOTE_STORE_UNAVAILABLE") from None

    async def get(self, quote_id: str) -> Quote | None:
        try:
            raw = await self._redis.get(self.key(quote_id))
        except (RedisConnectionError, RedisTimeoutError) as err:
            raise Unavailable(f"quote store unavailable: {err}", reason="QUOTE_STORE_UNAVAILABLE") from None
        return None if raw is None else _QUOTE.validate_json(raw)

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisConnectionError, RedisTimeoutError) as err:
            raise Unavailable(f"quote store unavailable: {err}", reason="QUOTE_STORE_UNAVAILABLE") from None

    async def close(self) -> None:
        await self._redis.aclose()
